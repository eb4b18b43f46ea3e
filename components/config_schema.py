"""The stack config as a declarative schema: one pydantic field per key of the ``ack-rdma`` namespace.

To add a key: add one field to ``StackConfigModel`` with its type, ``key(default, description)`` and, if
needed, its checks: ``Annotated[str, matching(PATTERN, "<what is wrong; the fix>")]``,
``one_of(CHOICES, ...)``, one of the ``Annotated`` types below, or a ``field_validator``. The field's
camelCase alias is the key's name; Pulumi.yaml declares it (``components.config_keys`` derives the
declaration from the field and a test keeps both in step); ``components.config`` maps validation errors
to the key and builds the typed component args from the validated model.

Validators raise ``problem(text)``: ``text`` follows the key name in the message users see, so it says what
is wrong and the fix. A check that needs another key is a field validator of the later of the two fields
(``info.data`` holds the earlier fields that passed); it is skipped when the other key failed on its own.
Every value echoed back is shortened (``shown``): the error text never grows with the input.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from components import defaults
from components.cluster import version_numbers
from components.erdma import DRIVER_MODES, cluster_addon_problems
from components.images import ENTERPRISE, PERSONAL, REGISTRY_EDITIONS
from components.instance_catalogue import (
    CHECK_SHARE_OF_BASELINE,
    ceiling_gbits,
    purchase_problem,
    required_driver,
)
from components.node_pool import TAINT_EFFECTS, Taint
from components.plugin_config import ConfigError, validate_plugin_config
from components.registry_access import CREDENTIAL_HELPER_ADDON, vpc_registry_host

PROJECT = "ack-rdma"
CLUSTER_SPECS = ("ack.pro.small", "ack.standard")
MIN_TEST_NODES = 2
MAX_POOL_SIZE = 1000
SHOWN_CHARS = 60
"""Longest echo of a user's value in an error (longer ones are cut, with their length)."""

_NAME_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
_POOL_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SYSTEM_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_ACR_NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,29}$")
_REGISTRY_HOST = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+(:\d+)?$")
_INSTANCE_ID = re.compile(r"^i-[a-z0-9]+$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]{0,127}$")
# As `make image` accepts for the source label: a URL someone elsewhere can fetch from, not a local path.
_SOURCE_URL = re.compile(r"^(https?://|ssh://|git@)\S+$")
# ACK's version names, e.g. 1.33.3-aliyun.1 (ACK release notes, "Kubernetes versions supported by ACK",
# https://www.alibabacloud.com/help/en/ack/product-overview/support-for-kubernetes-versions); whether a
# version is offered is only known to ACK at deploy time.
_ACK_VERSION = re.compile(r"^1\.\d{1,2}\.\d{1,3}-aliyun\.\d{1,3}$")
_PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


def cut(text: str) -> str:
    """``text`` cut to SHOWN_CHARS with the full length said, for echoing a name or value in an error."""
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[: SHOWN_CHARS - 10]}... ({len(text)} characters)"


def shown(value: object) -> str:
    """``repr(value)``, cut."""
    return cut(repr(value))


def printable(text: str) -> str:
    """``text`` with control characters (a newline in a key name, say) escaped: an error stays one line."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def problem(text: str, *, key: str | None = None) -> PydanticCustomError:
    """An error whose message is ``text`` after the key's name; ``key`` names another key than the field's."""
    return PydanticCustomError("stack_config", "{problem}", {"problem": text, "key": key})


def did_you_mean(name: str, known: Sequence[str], hints: Mapping[str, str] | None = None) -> str:
    """The closest known name; ``hints`` maps other names people use for a thing to the known name."""
    hints = hints or {}
    close = difflib.get_close_matches(name, [*known, *hints], n=1)
    if not close:
        return f"use one of {list(known)[:12]}."
    return f"did you mean {hints.get(close[0], close[0])!r}?"


def key(
    default: Any, description: str, *, secret: bool = False, hints: tuple[str, ...] = (), **extra: Any
) -> Any:
    """A config key: its default (what Pulumi.yaml declares) and description; ``secret`` keys must be set
    with ``pulumi config set --secret``; ``hints``: other names users may reach for (for "did you mean")."""
    return Field(
        default=default,
        description=description,
        json_schema_extra={"secret": secret, "hints": list(hints)},
        **extra,
    )


# -- reusable value types ----------------------------------------------------------------------------
def _network(text: str) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(text, strict=True) if "/" in text else None
    except ValueError:
        return None


def _cidr(text: str) -> str:
    network = _network(text)
    if network is None:
        raise problem(f"{shown(text)} is not a CIDR block; write it as network/prefix with no host bits set.")
    return str(network)


def _ingress_cidrs(cidrs: list[str]) -> list[str]:
    for index, text in enumerate(cidrs):
        if _network(text) is None:
            raise problem(
                f"{shown(text)} is not a CIDR block; write network/prefix, e.g. 203.0.113.7/32 for one "
                "address.",
                key=f"{{key}}[{index}]",
            )
    return [str(_network(text)) for text in cidrs]


def _pool_name(name: str) -> str:
    if not _POOL_NAME.match(name):
        raise problem(f"{shown(name)} is not a node pool name; use letters, digits, - and _.")
    return name


def _instance_types(types: list[str]) -> list[str]:
    if not types or not all(item.startswith("ecs.") for item in types):
        raise problem(
            f"must list at least one ECS instance type such as {defaults.INSTANCE_TYPES[0]!r}, in purchase "
            f"priority; got {shown(types)}."
        )
    return types


def _pool_size(size: int) -> int:
    if not 0 <= size <= MAX_POOL_SIZE:
        raise problem(f"{size} is outside 0-{MAX_POOL_SIZE}; pick a size in it.")
    return size


def _instance_ids(ids: list[str]) -> list[str]:
    if not all(_INSTANCE_ID.match(item) for item in ids):
        raise problem(f"must list ECS instance ids like 'i-uf6...'; got {shown(ids)}.")
    return ids


def _labels(labels: dict[str, str]) -> dict[str, str]:
    for name, value in labels.items():
        prefix, _, short = name.rpartition("/")
        if not _LABEL_NAME.match(short) or (prefix and not _DNS_SUBDOMAIN.match(prefix)):
            raise problem(f"label key {shown(name)} is not a Kubernetes label key; use [prefix/]name.")
        if not _LABEL_VALUE.match(value):
            raise problem(
                f"label {shown(name)} has value {shown(value)}; use a string of at most 63 label characters."
            )
    return labels


def parse_taint(text: str) -> Taint | None:
    """``key=value:Effect`` or ``key:Effect``; None when malformed."""
    body, _, effect = text.rpartition(":")
    taint_key, _, value = body.partition("=")
    if effect not in TAINT_EFFECTS or not taint_key or not _LABEL_VALUE.match(value):
        return None
    return Taint(taint_key, effect, value)


def _taint(text: str) -> str:
    if text and parse_taint(text) is None:
        raise problem(
            f"{shown(text)} is not a taint; write key=value:Effect or key:Effect with Effect one of "
            f"{list(TAINT_EFFECTS)}."
        )
    return text


def _disk_size(size: int) -> int:
    if not 40 <= size <= 2048:
        raise problem(f"{size} GiB is outside 40-2048; pick a size in it.")
    return size


def _image_ref(ref: str) -> str:
    first, _, rest = ref.partition("/")
    if ref and (not rest or not ("." in first or ":" in first or first == "localhost")):
        raise problem(
            f"{shown(ref)} lacks a registry host; write the full reference, e.g. "
            "registry.cn-shanghai.aliyuncs.com/<namespace>/<repository>@sha256:<digest>."
        )
    return ref


def _not_empty(value: str) -> str:
    if not value:
        raise problem("is empty; give a value or leave the key out to take its default.")
    return value


def matching(pattern: re.Pattern[str], fix: str, *, empty_ok: bool = False) -> AfterValidator:
    """A string key that must match ``pattern``: ``'<value>' <fix>`` otherwise (``empty_ok``: "" is unset)."""

    def check(value: str) -> str:
        if not (empty_ok and not value) and not pattern.match(value):
            raise problem(f"{shown(value)} {fix}")
        return value

    return AfterValidator(check)


def one_of(choices: Sequence[str], what: str) -> AfterValidator:
    """A string key that must be one of ``choices``."""

    def check(value: str) -> str:
        if value not in choices:
            raise problem(f"{shown(value)} is not {what}; use one of {list(choices)}.")
        return value

    return AfterValidator(check)


Cidr = Annotated[str, AfterValidator(_cidr)]
IngressCidrs = Annotated[list[str], AfterValidator(_ingress_cidrs)]
PoolName = Annotated[str, AfterValidator(_pool_name)]
InstanceTypes = Annotated[list[str], AfterValidator(_instance_types)]
PoolSize = Annotated[int, AfterValidator(_pool_size)]
InstanceIds = Annotated[list[str], AfterValidator(_instance_ids)]
Labels = Annotated[dict[str, str], AfterValidator(_labels)]
TaintText = Annotated[str, AfterValidator(_taint)]
DiskSize = Annotated[int, AfterValidator(_disk_size)]
DiskCategory = Annotated[str, AfterValidator(_not_empty)]
ImageRef = Annotated[str, AfterValidator(_image_ref)]
SecretText = Annotated[Any, Field(json_schema_extra={"secret": True})]
"""A secret's value as the program holds it: a ``pulumi.Output[str]`` marked secret, never its text."""


class _Strict(BaseModel):
    # Strict: the stack file's `yes`, 2.5 or "2" are not booleans or whole numbers; camelCase keys only.
    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=False,
        arbitrary_types_allowed=True,
    )


class NodePoolEntry(_Strict):
    """One entry of ``nodePools``; a field left out takes the single-pool key of the same meaning."""

    name: PoolName | None = None
    instance_types: InstanceTypes | None = None
    existing_instances: InstanceIds | None = None
    desired_size: PoolSize | None = None
    labels: Labels | None = None
    taint: TaintText | None = None
    deployment_set: bool | None = None
    system_disk_category: DiskCategory | None = None
    system_disk_size: DiskSize | None = None

    @field_validator("desired_size")
    @classmethod
    def _size_or_attached(cls, size: int | None, info: ValidationInfo) -> int | None:
        if size is not None and info.data.get("existing_instances"):
            raise problem(
                "cannot be combined with existingInstances in one pool (the pool attaches those instances); "
                "drop one of them."
            )
        return size


class AddonEntry(_Strict):
    """One entry of ``addons``: an ACK addon installed at cluster creation."""

    name: str = Field(default="", validate_default=True)
    config: str | dict[str, Any] | None = None
    version: str | None = None
    disabled: bool = False

    @field_validator("name")
    @classmethod
    def _named(cls, name: str) -> str:
        if not name:
            raise problem("is missing; give the ACK addon name, e.g. flannel.")
        return name


# The single-pool key that is the default of each nodePools entry field (same names).
POOL_FIELD_DEFAULT_KEYS: Mapping[str, str] = {
    "name": "nodePoolName",
    "instance_types": "instanceTypes",
    "existing_instances": "existingInstances",
    "desired_size": "desiredSize",
    "labels": "nodeLabels",
    "taint": "nodeTaint",
    "deployment_set": "deploymentSet",
    "system_disk_category": "systemDiskCategory",
    "system_disk_size": "systemDiskSize",
}


def pool_node_counts(data: Mapping[str, Any]) -> list[int] | None:
    """Nodes per pool from validated fields (``info.data``); None when a field they need failed."""
    if any(data.get(field) is None for field in ("desired_size", "existing_instances", "node_pools")):
        return None
    entries: list[NodePoolEntry] = data["node_pools"] or [NodePoolEntry()]
    counts: list[int] = []
    for entry in entries:
        existing = (
            entry.existing_instances if entry.existing_instances is not None else data["existing_instances"]
        )
        size = entry.desired_size if entry.desired_size is not None else data["desired_size"]
        counts.append(len(existing) if existing else int(size))
    return counts


@dataclass(frozen=True)
class PoolView:
    """A node pool as the validated fields make it: its ``nodePools`` entry, or the single-pool keys."""

    index: int | None
    """Position in ``nodePools``; ``None`` for the single pool of the single-pool keys."""
    entry: NodePoolEntry | None
    instance_types: list[str]
    existing_instances: list[str]
    system_disk_category: str

    def key(self, field: str) -> str:
        """The key that set ``field`` for this pool: the entry's own, else the single-pool key."""
        if self.entry is not None and getattr(self.entry, field) is not None:
            return f"nodePools[{self.index}].{to_camel(field)}"
        return POOL_FIELD_DEFAULT_KEYS[field]

    @property
    def buys(self) -> bool:
        return not self.existing_instances


def pool_views(data: Mapping[str, Any]) -> list[PoolView] | None:
    """Every node pool from validated fields (``info.data``); None when a field they need failed."""
    fields = ("instance_types", "existing_instances", "system_disk_category", "node_pools")
    if any(data.get(field) is None for field in fields):
        return None
    entries: list[NodePoolEntry] = data["node_pools"]
    indexed: list[tuple[int | None, NodePoolEntry | None]] = list(enumerate(entries)) or [(None, None)]
    views = []
    for index, entry in indexed:

        def pick(field: str, entry: NodePoolEntry | None = entry) -> Any:
            value = getattr(entry, field) if entry is not None else None
            return value if value is not None else data[field]

        views.append(
            PoolView(
                index,
                entry,
                pick("instance_types"),
                pick("existing_instances"),
                pick("system_disk_category"),
            )
        )
    return views


def bought_types(data: Mapping[str, Any]) -> list[str] | None:
    """Instance types the RDMA pools buy (not the attached ones), in order; None when a field failed."""
    views = pool_views(data)
    if views is None:
        return None
    return list(dict.fromkeys(name for view in views if view.buys for name in view.instance_types))


class StackConfigModel(_Strict):
    """Every key of the ``ack-rdma`` namespace, in the order Pulumi.yaml lists them."""

    name_prefix: Annotated[
        str,
        matching(
            _NAME_PREFIX,
            "is not usable in cloud names; use 2-40 lower-case letters, digits and hyphens, starting with a "
            "letter.",
        ),
    ] = key(defaults.NAME_PREFIX, "Prefix of every cloud-side resource name.")
    vpc_cidr: Cidr = key(defaults.VPC_CIDR, "Address range of the VPC.")
    vswitch_cidr: Cidr = key(defaults.VSWITCH_CIDR, "Address range of the vSwitch; inside vpcCidr.")
    zone_id: str = key(
        "",
        "Zone of the vSwitch. Empty: the first zone of the region that sells every instance type the node "
        "pools buy, with their system disk.",
    )
    ssh_ingress_cidrs: IngressCidrs = key(
        [], "CIDRs allowed to SSH (tcp/22) into the nodes. Empty: none; 0.0.0.0/0 only if you list it."
    )
    api_server_ingress_cidrs: IngressCidrs = key(
        [],
        "CIDRs outside the VPC allowed to reach the API server (whitelisted on its CLB's 6443 listener). "
        "Empty: the API server gets no public endpoint, and `pulumi up` must run inside the VPC. Chosen at "
        "cluster creation.",
    )
    cluster_spec: Annotated[str, one_of(CLUSTER_SPECS, "an ACK edition")] = key(
        defaults.CLUSTER_SPEC, "ACK edition: ack.pro.small or ack.standard."
    )
    kubernetes_version: Annotated[
        str,
        matching(
            _ACK_VERSION,
            "is not an ACK Kubernetes version; write it as ACK names them, e.g. 1.33.3-aliyun.1, or leave it "
            "empty for the newest ACK offers.",
            empty_ok=True,
        ),
    ] = key(
        "",
        "Kubernetes version of the cluster, e.g. 1.33.3-aliyun.1. Empty: the newest ACK offers at creation "
        "(later releases do not upgrade the cluster; set this key to upgrade).",
    )
    kube_proxy_mode: str = key(
        defaults.KUBE_PROXY_MODE,
        "kube-proxy mode, iptables or ipvs (ACK deprecates ipvs from Kubernetes 1.35). Chosen at cluster "
        "creation: a change replaces the cluster.",
    )
    network_plugin: str = key(
        defaults.NETWORK_PLUGIN,
        "CNI of the cluster, chosen at creation: flannel (pods from podCidr) or terway (shared ENI, pods "
        "from podVswitchCidrs; the only one with which ACK enforces NetworkPolicy, so only then the test "
        "pods get one).",
    )
    pod_cidr: Cidr = key(defaults.POD_CIDR, "Flannel pod range; outside the VPC and serviceCidr.")
    service_cidr: Cidr = key(defaults.SERVICE_CIDR, "Service range; outside the VPC and podCidr.")
    new_nat_gateway: bool = key(defaults.NEW_NAT_GATEWAY, "Create a NAT gateway for outbound traffic.")
    deletion_protection: bool = key(
        defaults.DELETION_PROTECTION, "Protect the cluster from deletion (ACK API and Pulumi protect)."
    )
    pod_vswitch_cidrs: IngressCidrs = key(
        [],
        "Terway only: ranges inside vpcCidr, apart from vswitchCidr, for the pod vSwitches (pods take "
        "their addresses from them).",
    )
    addons: list[AddonEntry] = key(
        [],
        "Further ACK addons installed at creation: objects {name, config (string or object), version, "
        "disabled}. ACK ignores later changes to this list. The network plugin's addon comes from "
        "networkPlugin, and for registryEdition enterprise the program configures "
        "managed-aliyun-acr-credential-helper itself. ack-erdma-controller is not listed here either: the "
        "program installs it (erdmaDriver, erdmaAllocateAllDevices).",
    )
    kubeconfig_duration_minutes: int = key(
        defaults.KUBECONFIG_DURATION_MINUTES,
        "Lifetime of the kubeconfig certificate minted on each `pulumi up` (never in a preview; 15-4320 "
        "minutes).",
    )
    node_pool_name: PoolName = key(defaults.NODE_POOL_NAME, "Name of the RDMA node pool (single-pool form).")
    instance_types: InstanceTypes = key(
        list(defaults.INSTANCE_TYPES),
        "eRDMA-capable instance types in purchase priority, each listed in components/instance_catalogue.py "
        "(published bandwidth and disks; SCC cannot be bought). Also the default of every nodePools entry.",
    )
    desired_size: PoolSize = key(
        defaults.DESIRED_SIZE,
        "Number of RDMA nodes to buy (single-pool form; default of nodePools entries).",
        # cs.NodePool's deprecated node_count, and what the walkthrough calls it.
        hints=("nodeCount", "nodeNumber", "numNodes"),
    )
    node_labels: Labels = key(
        {}, "Extra node labels (string to string); aliyun.accelerator/rdma=true is always added."
    )
    node_taint: TaintText = key(
        "",
        "Taint of the RDMA nodes as key=value:Effect or key:Effect. Empty: no taint. RDMA workloads of this "
        "program tolerate it.",
    )
    deployment_set: bool = key(defaults.DEPLOYMENT_SET, "Put the RDMA nodes in a LowLatency deployment set.")
    existing_instances: InstanceIds = key(
        [],
        "ECS instance ids to attach to the pool instead of buying (disks kept, names kept). Empty: buy "
        "desiredSize instances.",
    )
    system_disk_category: DiskCategory = key(
        defaults.SYSTEM_DISK_CATEGORY, "System disk category of the RDMA nodes."
    )
    system_disk_size: DiskSize = key(
        defaults.SYSTEM_DISK_SIZE_GIB, "System disk size of the RDMA nodes in GiB."
    )
    node_pools: list[NodePoolEntry] = key(
        [],
        "Several RDMA node pools: objects with keys "
        + ", ".join(to_camel(name) for name in NodePoolEntry.model_fields)
        + " (labels an object, taint a string). Unset keys take the single-pool keys above. Empty: one pool "
        "from those keys.",
        validate_default=True,
    )
    system_pool_instance_types: InstanceTypes = key(
        list(defaults.SYSTEM_POOL_INSTANCE_TYPES),
        "Instance types of the untainted system pool that CoreDNS and the add-ons run on, in purchase "
        "priority (system disk: systemDiskCategory).",
        validate_default=True,
    )
    system_pool_size: int = key(defaults.SYSTEM_POOL_SIZE, "Nodes in the system pool (at least 1).")
    erdma_driver: str = key(
        defaults.ERDMA_DRIVER,
        "eRDMA driver mode ack-erdma-controller installs: default (iWARP-like, connections through RDMA "
        "CM), compat (RoCEv2-style GIDs, out-of-band setup) or ofed (GPU instance types, NCCL; required "
        "for them).",
        validate_default=True,
    )
    erdma_allocate_all_devices: bool = key(
        defaults.ERDMA_ALLOCATE_ALL_DEVICES,
        "Give an RDMA pod every eRDMA device of its node (false: one device by NUMA, which needs the static "
        "CPU manager policy).",
    )
    key_name: str = key(
        "", "ECS key pair for node login. Set exactly one of keyName and nodePassword. Empty: none."
    )
    node_password: SecretText | None = key(
        None,
        "Node login password (pulumi config set --secret). Set exactly one of keyName and nodePassword.",
        secret=True,
        validate_default=True,
    )
    plugin_config: dict[str, Any] = key(
        dict(defaults.PLUGIN_CONFIG),
        'The device plugin\'s config.json: {"mode": "hca"}, {"mode": "sriov", "pfNetdevices": [...]} or the '
        "pool format with configList. Checked by the plugin's own validator.",
    )
    plugin_metrics_port: int = key(
        defaults.PLUGIN_METRICS_PORT,
        "Port of the plugin's /metrics and /healthz on the node IP (the plugin uses the host network).",
    )
    plugin_image: ImageRef = key(
        "",
        "Prebuilt plugin image with its registry host (pin it by digest). Empty: build plugin_image/ and "
        "push "
        "it to ACR. When set, testPodImage is required.",
    )
    image_version: Annotated[
        str, matching(_IMAGE_TAG, "is not an image tag; use letters, digits, '.', '_', '-'.")
    ] = key(defaults.IMAGE_VERSION, "Tag of the images this program builds.")
    image_revision: Annotated[
        str,
        matching(
            _REVISION,
            "is not a source revision; give a commit id or tag (letters, digits, '.', '_', '/', '+', '-').",
            empty_ok=True,
        ),
    ] = key(
        "",
        "Source revision in the OCI revision label of the images this program builds. Empty: the last commit "
        "that changed plugin_image/ (git); outside a git checkout the label stays empty, with a warning.",
    )
    image_source: Annotated[
        str,
        matching(
            _SOURCE_URL,
            "is not a repository URL; give one that starts with https://, ssh:// or git@.",
            empty_ok=True,
        ),
    ] = key(
        "",
        "Repository URL in the OCI source label of the images this program builds. Empty: no source label.",
    )
    registry_edition: Annotated[str, one_of(REGISTRY_EDITIONS, "an ACR edition")] = key(
        defaults.REGISTRY_EDITION,
        "ACR edition the images are pushed to: enterprise (an existing instance; temporary credentials) or "
        "personal (registryUsername and the secret registryPassword; pods pull with a pull secret).",
    )
    registry_instance_id: str = key(
        "",
        "ACR Enterprise Edition instance id (cri-...); needed for enterprise.",
        validate_default=True,
    )
    registry_host: str = key(
        "",
        "Registry host in image tags, e.g. <instance>-registry.<region>.cr.aliyuncs.com. Needed for "
        "enterprise; personal defaults to registry.<region>.aliyuncs.com.",
        validate_default=True,
    )
    registry_push_cidrs: IngressCidrs = key(
        [],
        "Enterprise Edition: CIDRs allowed to push over the instance's internet endpoint (the machines that "
        "run `pulumi up`, the deploy workflow's runner included). Empty: the endpoint is left as it is.",
    )
    registry_namespace: Annotated[
        str, matching(_ACR_NAMESPACE, "is not an ACR namespace; use 2-30 lower-case characters.")
    ] = key(defaults.REGISTRY_NAMESPACE, "ACR namespace created for the images.")
    registry_username: str = key("", "ACR Personal Edition login; needed for personal.")
    registry_password: SecretText | None = key(
        None,
        "ACR Personal Edition password (pulumi config set --secret); needed for personal.",
        secret=True,
        validate_default=True,
    )
    test_pods: bool = key(
        defaults.TEST_PODS,
        "Run the two RDMA test pods. The testPodManifest output holds them either way.",
        validate_default=True,
    )
    test_pod_image: ImageRef = key(
        "",
        "Image of the test pods (perftest inside). Empty: the tools image this program builds.",
        validate_default=True,
    )
    check_min_gbits: int = key(
        0,
        "Average Gbit/s that ack-rdma-check expects between the test pods (exported as the checkMinGbits "
        f"output). 0: {round(CHECK_SHARE_OF_BASELINE * 100)}% of the published baseline bandwidth of the "
        "slowest instance type the RDMA pools buy (components/instance_catalogue.py).",
        validate_default=True,
    )
    test_pod_namespace: str = key(
        defaults.TEST_POD_NAMESPACE,
        "Namespace of the test pods, created (and on destroy deleted) by the program: a name of its own.",
    )
    test_pod_host_network: bool = key(
        defaults.TEST_POD_HOST_NETWORK,
        "Run the test pods in the host network (needed for RDMA_CM, which cannot use the VPC pod IP).",
    )

    # -- one key at a time -------------------------------------------------------------------------------
    @field_validator("kube_proxy_mode")
    @classmethod
    def _kube_proxy_mode(cls, mode: str, info: ValidationInfo) -> str:
        if mode not in defaults.KUBE_PROXY_MODES:
            raise problem(
                f"{shown(mode)} is not a kube-proxy mode; use one of {list(defaults.KUBE_PROXY_MODES)}."
            )
        version = info.data.get("kubernetes_version")
        if mode == "ipvs" and version and version_numbers(version)[:2] >= list(defaults.IPVS_DEPRECATED_FROM):
            raise problem(
                f"ipvs is deprecated by ACK from Kubernetes 1.35 and ack-rdma:kubernetesVersion is "
                f"{version}; use iptables."
            )
        return mode

    @field_validator("network_plugin")
    @classmethod
    def _network_plugin(cls, plugin: str) -> str:
        if plugin not in defaults.NETWORK_PLUGINS:
            raise problem(
                f"{shown(plugin)} is not a network plugin; use one of {list(defaults.NETWORK_PLUGINS)}."
            )
        return plugin

    @field_validator("pod_vswitch_cidrs")
    @classmethod
    def _pod_vswitches(cls, cidrs: list[str], info: ValidationInfo) -> list[str]:
        plugin = info.data.get("network_plugin")
        if plugin == defaults.FLANNEL and cidrs:
            raise problem("is for networkPlugin terway only; with flannel pods take podCidr, so drop it.")
        if plugin == defaults.TERWAY and not cidrs:
            raise problem(
                "is required for networkPlugin terway; give at least one range inside vpcCidr, e.g. "
                "192.168.16.0/20."
            )
        vpc, vswitch = info.data.get("vpc_cidr"), info.data.get("vswitch_cidr")
        networks: list[ipaddress.IPv4Network] = []
        for index, cidr in enumerate(cidrs):
            network = ipaddress.IPv4Network(cidr)
            where = f"{{key}}[{index}]"
            if vpc is not None and not network.subnet_of(ipaddress.IPv4Network(vpc)):
                raise problem(f"{cidr} lies outside the VPC ({vpc}); pick a range inside vpcCidr.", key=where)
            taken = [str(other) for other in networks]
            if vswitch is not None:
                taken.append(vswitch)
            if any(network.overlaps(ipaddress.IPv4Network(other)) for other in taken):
                raise problem(
                    f"{cidr} overlaps vswitchCidr or another pod vSwitch; pick a disjoint range.", key=where
                )
            networks.append(network)
        return cidrs

    @field_validator("addons")
    @classmethod
    def _addons(cls, addons: list[AddonEntry]) -> list[AddonEntry]:
        for index, addon in enumerate(addons):
            if addon.name in _PROGRAM_ADDONS:
                raise problem(
                    f"{addon.name!r} is installed by the program ({_PROGRAM_ADDONS[addon.name]}); drop it "
                    "from the list.",
                    key=f"{{key}}[{index}].name",
                )
        return addons

    @field_validator("kubeconfig_duration_minutes")
    @classmethod
    def _kubeconfig_minutes(cls, minutes: int) -> int:
        low, high = defaults.KUBECONFIG_DURATION_RANGE
        if not low <= minutes <= high:
            raise problem(f"{minutes} is outside {low}-{high}; ACK accepts that range.")
        return minutes

    @field_validator("plugin_config")
    @classmethod
    def _plugin_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        try:
            validate_plugin_config(config)
        except ConfigError as error:
            raise problem(f"is rejected by the device plugin: {error}") from None
        return config

    @field_validator("plugin_metrics_port")
    @classmethod
    def _metrics_port(cls, port: int) -> int:
        if not 1024 <= port <= 65535 or port in (10248, 10249, 10250, 10255, 10256):
            raise problem(
                f"{port} cannot be used on the node; pick a free port in 1024-65535 that is not one of "
                "kubelet's or kube-proxy's (10248-10256)."
            )
        return port

    @field_validator("check_min_gbits")
    @classmethod
    def _check_min_gbits(cls, gbits: int, info: ValidationInfo) -> int:
        if gbits < 0:
            raise problem(
                f"{gbits} is not a bandwidth ack-rdma-check can expect; give a positive number of Gbit/s, or "
                "0 for the share of the instance types' published bandwidth."
            )
        types = bought_types(info.data)
        if types is None:
            return gbits
        if not types:
            if gbits == 0:
                raise problem(
                    "must be set when the RDMA pools only attach existing instances: the catalogue knows no "
                    "bandwidth for them; give the Gbit/s their RDMA NICs reach."
                )
            return gbits
        ceiling = ceiling_gbits(types)
        if gbits > ceiling:
            raise problem(
                f"{gbits} is more than {ceiling:g} Gbit/s, the most the slowest instance type the pools buy "
                "can reach (its published burst, else baseline); the check could never pass. Lower it or "
                "set it to 0."
            )
        return gbits

    @field_validator("test_pod_namespace")
    @classmethod
    def _test_pod_namespace(cls, namespace: str) -> str:
        if not _DNS_LABEL.match(namespace):
            raise problem(f"{shown(namespace)} is not a namespace name; use a DNS label.")
        if namespace in _SYSTEM_NAMESPACES:
            raise problem(
                f"{namespace!r} is one of Kubernetes' own namespaces; the program creates (and on destroy "
                "deletes) the test namespace, so give it a name of its own such as "
                f"{defaults.TEST_POD_NAMESPACE!r}."
            )
        return namespace

    # -- keys that depend on earlier keys ----------------------------------------------------------------
    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_private(cls, cidr: str) -> str:
        network = ipaddress.IPv4Network(cidr)
        if not any(network.subnet_of(private) for private in _PRIVATE_RANGES):
            raise problem(f"{cidr} is not inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16; pick one.")
        return cidr

    @field_validator("vswitch_cidr")
    @classmethod
    def _vswitch_in_vpc(cls, cidr: str, info: ValidationInfo) -> str:
        vpc = info.data.get("vpc_cidr")
        if vpc is not None and not ipaddress.IPv4Network(cidr).subnet_of(ipaddress.IPv4Network(vpc)):
            raise problem(f"{cidr} lies outside the VPC ({vpc}); pick a range inside vpcCidr.")
        return cidr

    @field_validator("pod_cidr", "service_cidr")
    @classmethod
    def _disjoint_ranges(cls, cidr: str, info: ValidationInfo) -> str:
        earlier = {"vpc_cidr": "vpcCidr", "pod_cidr": "podCidr"}
        network = ipaddress.IPv4Network(cidr)
        overlapping = [
            f"{PROJECT}:{name} ({other})"
            for field, name in earlier.items()
            if field != info.field_name
            and (other := info.data.get(field)) is not None
            and network.overlaps(ipaddress.IPv4Network(other))
        ]
        if overlapping:
            raise problem(
                f"{cidr} overlaps {' and '.join(overlapping)}; the VPC, pod and service ranges must not "
                "overlap, so pick a disjoint range."
            )
        return cidr

    @field_validator("addons")
    @classmethod
    def _addons_beside_erdma(cls, addons: list[AddonEntry]) -> list[AddonEntry]:
        for index, text in cluster_addon_problems([(a.name, a.config) for a in addons]):
            raise problem(text, key=f"{{key}}[{index}]")
        return addons

    @field_validator("system_pool_instance_types")
    @classmethod
    def _system_pool_for_sale(cls, types: list[str], info: ValidationInfo) -> list[str]:
        disk = info.data.get("system_disk_category")
        text = purchase_problem(types, disk) if disk is not None else None
        if text is not None:
            raise problem(text)
        return types

    @field_validator("system_pool_size")
    @classmethod
    def _system_pool_size(cls, size: int) -> int:
        if not 1 <= size <= MAX_POOL_SIZE:
            raise problem(
                f"{size} is outside 1-{MAX_POOL_SIZE}; the add-ons need at least one untainted node."
            )
        return size

    @field_validator("erdma_driver")
    @classmethod
    def _erdma_driver(cls, driver: str, info: ValidationInfo) -> str:
        if driver not in DRIVER_MODES:
            raise problem(f"{shown(driver)} is not an eRDMA driver mode; use one of {list(DRIVER_MODES)}.")
        types = bought_types(info.data)
        if types and driver != "ofed":
            needed = [view for view in pool_views(info.data) or [] if view.buys]
            if any(required_driver(view.instance_types) == "ofed" for view in needed):
                raise problem(
                    f"is {driver!r}, but the RDMA pools buy GPU eRDMA types, which need ofed (ACK: the ofed "
                    "driver is the one for GPU-accelerated instance types); set it to ofed."
                )
        return driver

    @field_validator("node_pools")
    @classmethod
    def _pools_for_sale(cls, entries: list[NodePoolEntry], info: ValidationInfo) -> list[NodePoolEntry]:
        views = pool_views({**info.data, "node_pools": entries})
        for view in views or []:
            text = purchase_problem(view.instance_types, view.system_disk_category) if view.buys else None
            if text is not None:
                raise problem(text, key=view.key("instance_types"))
        return entries

    @field_validator("node_pools")
    @classmethod
    def _unique_pool_names(cls, entries: list[NodePoolEntry], info: ValidationInfo) -> list[NodePoolEntry]:
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            name = entry.name if entry.name is not None else info.data.get("node_pool_name")
            if name in seen:
                raise problem(
                    f"{shown(name)} is used twice; pool names must be unique.", key=f"{{key}}[{index}].name"
                )
            if name is not None:
                seen.add(name)
        return entries

    @field_validator("node_password")
    @classmethod
    def _one_login(cls, password: object, info: ValidationInfo) -> object:
        if "key_name" in info.data and bool(info.data["key_name"]) == (password is not None):
            raise problem(
                "and ack-rdma:nodePassword: set exactly one, the name of an ECS key pair in the region "
                "(`pulumi config set ack-rdma:keyName <pair>`) or a password "
                "(`pulumi config set --secret ack-rdma:nodePassword`).",
                key="keyName",
            )
        return password

    @field_validator("registry_instance_id")
    @classmethod
    def _enterprise_instance(cls, instance_id: str, info: ValidationInfo) -> str:
        if _builds_for(info, ENTERPRISE) and not instance_id:
            raise problem("is required for registryEdition enterprise; give the cri-... id.")
        return instance_id

    @field_validator("registry_host")
    @classmethod
    def _registry_host(cls, host: str, info: ValidationInfo) -> str:
        if _builds_for(info, ENTERPRISE) and not host:
            raise problem(
                "is required for registryEdition enterprise; give the instance's domain, e.g. "
                "myreg-registry.cn-shanghai.cr.aliyuncs.com."
            )
        if _builds_for(info, ENTERPRISE) and vpc_registry_host(host) is None:
            raise problem(
                f"{shown(host)} is not an Enterprise Edition instance's public host; give it as "
                "<instance>-registry.<region>.cr.aliyuncs.com (the nodes pull from its VPC twin, "
                "<instance>-registry-vpc.<region>.cr.aliyuncs.com)."
            )
        if host and not _REGISTRY_HOST.match(host):
            raise problem(f"{shown(host)} is not a registry host name; give a host such as the above.")
        return host

    @field_validator("registry_password")
    @classmethod
    def _personal_login(cls, password: object, info: ValidationInfo) -> object:
        if _builds_for(info, PERSONAL) and (not info.data.get("registry_username") or password is None):
            raise problem(
                "and ack-rdma:registryPassword are required for registryEdition personal; set the login and "
                "`pulumi config set --secret ack-rdma:registryPassword`.",
                key="registryUsername",
            )
        return password

    @field_validator("test_pods")
    @classmethod
    def _enough_test_nodes(cls, enabled: bool, info: ValidationInfo) -> bool:
        counts = pool_node_counts(info.data)
        if enabled and counts is not None and sum(counts) < MIN_TEST_NODES:
            raise problem(
                f"needs at least {MIN_TEST_NODES} RDMA nodes (the two pods must land on different nodes), "
                f"but the node pools hold {sum(counts)}; raise ack-rdma:desiredSize or turn testPods off."
            )
        return enabled

    @field_validator("test_pod_image")
    @classmethod
    def _test_image_for_prebuilt(cls, image: str, info: ValidationInfo) -> str:
        if info.data.get("plugin_image") and not image:
            raise problem(
                "is required when ack-rdma:pluginImage is set (nothing is built, so there is no tools "
                "image); "
                "set it to an image with perftest."
            )
        return image


# Addons the program installs itself, and why: not for the addons key.
_PROGRAM_ADDONS = {
    "flannel": "from networkPlugin",
    "terway-eniip": "from networkPlugin",
    CREDENTIAL_HELPER_ADDON: "configured for the ACR instance when registryEdition is enterprise",
}


def _builds_for(info: ValidationInfo, edition: str) -> bool:
    """The program builds images and pushes them to this ACR edition (no prebuilt plugin image)."""
    return (
        "plugin_image" in info.data
        and not info.data["plugin_image"]
        and info.data.get("registry_edition") == edition
    )


def key_names() -> tuple[str, ...]:
    """Every key of the namespace, camelCase, in declaration order."""
    return tuple(field.alias or name for name, field in StackConfigModel.model_fields.items())


def key_hints() -> dict[str, str]:
    """Other names of keys (``hints``) -> the key."""
    hints: dict[str, str] = {}
    for name, field in StackConfigModel.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        given = extra.get("hints")
        for hint in given if isinstance(given, list) else ():
            hints[str(hint)] = field.alias or name
    return hints
