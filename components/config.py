"""The stack config, read and validated as a whole before any resource is declared.

Every problem is collected, each naming its key and the fix, and reported together as one StackConfigError
(a ``pulumi.RunError``: the CLI prints its message, not a traceback).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components import defaults
from components.cluster import AckClusterArgs, AddonSpec
from components.config_keys import KEYS, KEYS_BY_NAME, NODE_POOL_FIELDS, PROJECT
from components.device_plugin import RdmaDevicePluginArgs
from components.images import (
    ENTERPRISE,
    PERSONAL,
    REGISTRY_EDITIONS,
    PluginImagesArgs,
    personal_registry_host,
)
from components.k8s_objects import DevicePluginSpec, TestPodSpec
from components.k8s_resources import PullSecretSource
from components.network import NetworkArgs
from components.node_pool import TAINT_EFFECTS, NodeLogin, RdmaNodePoolArgs, Taint
from components.plugin_config import ConfigError, validate_plugin_config
from components.security import ClusterSecurityGroupArgs

CLUSTER_SPECS = ("ack.pro.small", "ack.standard")
MIN_TEST_NODES = 2
MAX_POOL_SIZE = 1000
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
_PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


class StackConfigError(pulumi.RunError):
    """Invalid stack config; the message lists every problem, each with its key and fix, in one paragraph."""

    def __init__(self, stack: str, problems: list[str]) -> None:
        self.stack = stack
        self.problems = tuple(problems)
        count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
        listed = " ".join(f"({index}) {problem}" for index, problem in enumerate(problems, start=1))
        super().__init__(
            f"Stack config of stack '{stack}' is invalid, nothing was declared ({count}): {listed} "
            f"Fix the keys in stacks/Pulumi.{stack}.yaml or with `pulumi config set`."
        )


@dataclass(frozen=True)
class StackConfig:
    """The validated stack config: one typed argument set per component."""

    stack: str
    region: str
    name_prefix: str
    tags: Mapping[str, str]
    network: NetworkArgs
    security: ClusterSecurityGroupArgs
    cluster: AckClusterArgs
    node_pools: tuple[RdmaNodePoolArgs, ...]
    login: NodeLogin
    images: PluginImagesArgs | None
    """``None`` when a prebuilt plugin image is used."""
    device_plugin: RdmaDevicePluginArgs
    test_pods: TestPodSpec
    test_pods_enabled: bool
    test_pods_use_built_image: bool
    """``test_pods.image`` is the tools image this program builds (pin it by the build's digest)."""
    check_min_gbits: int
    """The bandwidth ``ack-rdma-check`` expects between the test pods."""

    @property
    def node_count(self) -> int:
        return sum(pool.node_count for pool in self.node_pools)


def read_stack_config() -> StackConfig:
    """Read this stack's config through ``pulumi.Config`` and validate it; raises StackConfigError."""
    config = pulumi.Config(PROJECT)
    plain = {
        key.name: value for key in KEYS if not key.secret and (value := config.get(key.name)) is not None
    }
    secrets = {
        key.name: secret for key in KEYS if key.secret and (secret := config.get_secret(key.name)) is not None
    }
    region = pulumi.Config("alicloud").get("region")
    return parse_stack_config(plain, secrets, stack=pulumi.get_stack(), region=region)


def parse_stack_config(
    plain: Mapping[str, str],
    secrets: Mapping[str, pulumi.Output[str]],
    *,
    stack: str,
    region: str | None,
) -> StackConfig:
    """Validate raw config values (strings, structured ones as JSON, as Pulumi hands them over)."""
    return _Parser(plain, secrets, stack).parse(region)


def _network(text: str) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(text, strict=True) if "/" in text else None
    except ValueError:
        return None


class _Parser:
    def __init__(
        self, plain: Mapping[str, str], secrets: Mapping[str, pulumi.Output[str]], stack: str
    ) -> None:
        self.plain = plain
        self.secrets = secrets
        self.stack = stack
        self.problems: list[str] = []
        self.vpc_network: ipaddress.IPv4Network | None = None

    # -- reporting and typed reading --------------------------------------------------------------------
    def problem(self, key: str, text: str) -> None:
        self.problems.append(f"{PROJECT}:{key} {text}")

    def value(self, name: str) -> Any:
        """The key's value decoded by its declared type; its default (or None) when unset or malformed."""
        key = KEYS_BY_NAME[name]
        raw = self.plain.get(name)
        if raw is None:
            return key.default
        decoded = self._decode(name, key.type, raw)
        if decoded is None:
            return key.default
        if key.type == "array" and key.items is not None:
            wanted = str if key.items == "string" else dict
            if not all(isinstance(item, wanted) for item in decoded):
                self.problem(name, f"must be a list of {key.items}s; fix its items.")
                return key.default
        return decoded

    def _decode(self, name: str, type_: str, raw: str) -> Any:
        if type_ in ("string", "boolean", "integer"):
            return self._decode_scalar(name, type_, raw)
        try:
            decoded = json.loads(raw)
        except json.JSONDecodeError:
            decoded = None
        expected = list if type_ == "array" else dict
        if not isinstance(decoded, expected):
            shape = "a YAML list" if type_ == "array" else "a YAML mapping"
            self.problem(name, f"must be {shape} in the stack file, not {raw!r}.")
            return None
        return decoded

    def _decode_scalar(self, name: str, type_: str, raw: str) -> Any:
        if type_ == "string":
            return raw
        if type_ == "boolean":
            if raw.lower() in ("true", "false"):
                return raw.lower() == "true"
            self.problem(name, f"must be true or false, not {raw!r}.")
            return None
        if type_ == "integer":
            try:
                return int(raw)
            except ValueError:
                self.problem(name, f"must be a whole number, not {raw!r}.")
                return None
        raise ValueError(f"no scalar config type {type_}")

    # -- the whole config -------------------------------------------------------------------------------
    def parse(self, region: str | None) -> StackConfig:
        if not region:
            self.problems.append(
                "alicloud:region is not set; set it with `pulumi config set alicloud:region cn-shanghai` "
                "(or the region of your SCC capacity)."
            )
        name_prefix = self.value("namePrefix")
        if not _NAME_PREFIX.match(name_prefix):
            self.problem(
                "namePrefix",
                f"{name_prefix!r} is not usable in cloud names; use 2-40 lower-case letters, digits and "
                "hyphens, starting with a letter.",
            )
        tags = {"project": PROJECT, "stack": self.stack}
        node_pools = self.node_pools()
        network = self.network(name_prefix, tags, node_pools)
        security = ClusterSecurityGroupArgs(
            name_prefix=name_prefix,
            ssh_cidrs=self.ingress_cidrs("sshIngressCidrs"),
            api_server_cidrs=self.ingress_cidrs("apiServerIngressCidrs"),
            tags=tags,
        )
        cluster = self.cluster(name_prefix, tags)
        login = self.login()
        plugin_json, resource_names = self.plugin_config()
        images, plugin_image, tools_image, pull_secret = self.images(region or "")
        tolerations = tuple(
            dict.fromkeys(
                tuple(sorted(pool.taint.toleration().items()))
                for pool in node_pools
                if pool.taint is not None
            )
        )
        toleration_maps = tuple(dict(toleration) for toleration in tolerations)
        test_namespace = self.value("testPodNamespace")
        if not _DNS_LABEL.match(test_namespace):
            self.problem("testPodNamespace", f"{test_namespace!r} is not a namespace name; use a DNS label.")
        elif test_namespace in _SYSTEM_NAMESPACES:
            self.problem(
                "testPodNamespace",
                f"{test_namespace!r} is one of Kubernetes' own namespaces; the program creates (and on "
                "destroy deletes) the test namespace, so give it a name of its own such as "
                f"{defaults.TEST_POD_NAMESPACE!r}.",
            )
        test_pods_enabled = bool(self.value("testPods"))
        test_host_network = bool(self.value("testPodHostNetwork"))
        node_count = sum(pool.node_count for pool in node_pools)
        if test_pods_enabled and node_pools and node_count < MIN_TEST_NODES:
            self.problem(
                "testPods",
                f"needs at least {MIN_TEST_NODES} RDMA nodes (the two pods must land on different nodes), "
                f"but the node pools hold {node_count}; raise ack-rdma:desiredSize or turn testPods off.",
            )
        metrics_port = self.value("pluginMetricsPort")
        if not 1024 <= metrics_port <= 65535 or metrics_port in (10248, 10249, 10250, 10255, 10256):
            self.problem(
                "pluginMetricsPort",
                f"{metrics_port} cannot be used on the node; pick a free port in 1024-65535 that is not one "
                "of kubelet's or kube-proxy's (10248-10256).",
            )
        check_min_gbits = self.value("checkMinGbits")
        if check_min_gbits <= 0:
            self.problem(
                "checkMinGbits",
                f"{check_min_gbits} is not a bandwidth ack-rdma-check can expect; give a positive number of "
                f"Gbit/s, e.g. {defaults.CHECK_MIN_GBITS} for SCC ecs.scch5 RoCE (about 46 Gbit/s).",
            )
        if self.problems:
            raise StackConfigError(self.stack, self.problems)
        pull_secrets = (pull_secret.secret_name,) if pull_secret else ()
        device_plugin = RdmaDevicePluginArgs(
            spec=DevicePluginSpec(
                namespace=defaults.PLUGIN_NAMESPACE,
                config_json=plugin_json,
                image=plugin_image,
                tolerations=toleration_maps,
                metrics_port=metrics_port,
                image_pull_secrets=pull_secrets,
            ),
            resource_names=resource_names,
            pull_secret=pull_secret,
            pull_secret_namespaces=(test_namespace,),
        )
        test_pods = TestPodSpec(
            namespace=test_namespace,
            image=tools_image,
            resource_name=resource_names[0],
            host_network=test_host_network,
            tolerations=toleration_maps,
            image_pull_secrets=pull_secrets,
        )
        return StackConfig(
            stack=self.stack,
            region=region or "",
            name_prefix=name_prefix,
            tags=tags,
            network=network,
            security=security,
            cluster=cluster,
            node_pools=tuple(node_pools),
            login=login,
            images=images,
            device_plugin=device_plugin,
            test_pods=test_pods,
            test_pods_enabled=test_pods_enabled,
            test_pods_use_built_image=images is not None and self.plain.get("testPodImage") is None,
            check_min_gbits=check_min_gbits,
        )

    # -- network and cluster ----------------------------------------------------------------------------
    def cidr(self, name: str) -> ipaddress.IPv4Network | None:
        text = self.value(name)
        network = _network(text)
        if network is None:
            self.problem(
                name, f"{text!r} is not a CIDR block; write it as network/prefix with no host bits set."
            )
        return network

    def network(
        self, name_prefix: str, tags: Mapping[str, str], node_pools: list[RdmaNodePoolArgs]
    ) -> NetworkArgs:
        vpc = self.cidr("vpcCidr")
        vswitch = self.cidr("vswitchCidr")
        if vpc is not None and not any(vpc.subnet_of(private) for private in _PRIVATE_RANGES):
            self.problem(
                "vpcCidr", f"{vpc} is not inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16; pick one."
            )
        if vpc is not None and vswitch is not None and not vswitch.subnet_of(vpc):
            self.problem(
                "vswitchCidr", f"{vswitch} lies outside the VPC ({vpc}); pick a range inside vpcCidr."
            )
        zone_id = self.value("zoneId") or None
        first_types = node_pools[0].instance_types if node_pools else ()
        self.vpc_network = vpc
        return NetworkArgs(
            name_prefix=name_prefix,
            vpc_cidr=str(vpc or defaults.VPC_CIDR),
            vswitch_cidr=str(vswitch or defaults.VSWITCH_CIDR),
            zone_id=zone_id,
            zone_instance_type=first_types[0] if first_types else defaults.INSTANCE_TYPES[0],
            tags=tags,
        )

    def cluster(self, name_prefix: str, tags: Mapping[str, str]) -> AckClusterArgs:
        ranges = {"vpcCidr": self.vpc_network}
        for name in ("podCidr", "serviceCidr"):
            ranges[name] = self.cidr(name)
        names = list(ranges)
        for index, first in enumerate(names):
            for second in names[index + 1 :]:
                a, b = ranges[first], ranges[second]
                if a is not None and b is not None and a.overlaps(b):
                    self.problem(
                        second,
                        f"{b} overlaps {PROJECT}:{first} ({a}); the VPC, pod and service ranges must not "
                        "overlap, so pick a disjoint range.",
                    )
        cluster_spec = self.value("clusterSpec")
        if cluster_spec not in CLUSTER_SPECS:
            self.problem(
                "clusterSpec", f"{cluster_spec!r} is not an ACK edition; use one of {list(CLUSTER_SPECS)}."
            )
        minutes = self.value("kubeconfigDurationMinutes")
        low, high = defaults.KUBECONFIG_DURATION_RANGE
        if not low <= minutes <= high:
            self.problem(
                "kubeconfigDurationMinutes", f"{minutes} is outside {low}-{high}; ACK accepts that range."
            )
        return AckClusterArgs(
            name_prefix=name_prefix,
            cluster_spec=cluster_spec,
            kubernetes_version=self.value("kubernetesVersion") or None,
            pod_cidr=str(ranges["podCidr"] or defaults.POD_CIDR),
            service_cidr=str(ranges["serviceCidr"] or defaults.SERVICE_CIDR),
            new_nat_gateway=self.value("newNatGateway"),
            api_server_internet=self.value("apiServerInternet"),
            deletion_protection=self.value("deletionProtection"),
            addons=self.addons(),
            kubeconfig_duration_minutes=minutes,
            tags=tags,
        )

    def addons(self) -> tuple[AddonSpec, ...]:
        addons: list[AddonSpec] = []
        for index, entry in enumerate(self.value("addons")):
            where = f"addons[{index}]"
            unknown = sorted(set(entry) - {"name", "config", "version", "disabled"})
            if unknown:
                self.problem(
                    where, f"has unknown fields {unknown}; an addon takes name, config, version, disabled."
                )
            name, config, version = entry.get("name"), entry.get("config"), entry.get("version")
            if not isinstance(name, str) or not name:
                self.problem(f"{where}.name", "is missing; give the ACK addon name, e.g. flannel.")
                continue
            if isinstance(config, dict):
                config = json.dumps(config, sort_keys=True)
            if config is not None and not isinstance(config, str):
                self.problem(f"{where}.config", "must be a JSON string or a mapping.")
                continue
            addons.append(
                AddonSpec(
                    name,
                    config,
                    None if version is None else str(version),
                    bool(entry.get("disabled", False)),
                )
            )
        return tuple(addons)

    def ingress_cidrs(self, name: str) -> tuple[str, ...]:
        cidrs: list[str] = []
        for index, text in enumerate(self.value(name)):
            network = _network(text)
            if network is None:
                self.problem(
                    f"{name}[{index}]",
                    f"{text!r} is not a CIDR block; write network/prefix, e.g. 203.0.113.7/32 for one "
                    "address.",
                )
            else:
                cidrs.append(str(network))
        return tuple(cidrs)

    # -- node pools and login ---------------------------------------------------------------------------
    def node_pools(self) -> list[RdmaNodePoolArgs]:
        entries = self.value("nodePools")
        if not entries:
            return [self.node_pool("", {})]
        pools = [self.node_pool(f"nodePools[{index}].", entry) for index, entry in enumerate(entries)]
        seen: set[str] = set()
        for index, pool in enumerate(pools):
            if pool.name in seen:
                self.problem(
                    f"nodePools[{index}].name", f"{pool.name!r} is used twice; pool names must be unique."
                )
            seen.add(pool.name)
        return pools

    def node_pool(self, where: str, entry: Mapping[str, Any]) -> RdmaNodePoolArgs:
        """One pool from a nodePools entry (``where`` = ``nodePools[i].``) or from the single-pool keys."""
        for unknown in sorted(set(entry) - set(NODE_POOL_FIELDS)):
            close = difflib.get_close_matches(unknown, NODE_POOL_FIELDS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"use one of {list(NODE_POOL_FIELDS)}."
            self.problem(f"{where}{unknown}", f"is not a node pool field; {hint}")
        pool = _PoolReader(self, where, entry)
        name = pool.get("name", str)
        if not _POOL_NAME.match(name):
            self.problem(pool.key("name"), f"{name!r} is not a node pool name; use letters, digits, - and _.")
        instance_types = pool.get("instanceTypes", list)
        if not instance_types or not all(
            isinstance(item, str) and item.startswith("ecs.") for item in instance_types
        ):
            self.problem(
                pool.key("instanceTypes"),
                f"must list at least one ECS instance type such as {defaults.INSTANCE_TYPES[0]!r}, in "
                f"purchase priority; got {instance_types!r}.",
            )
        desired_size = pool.get("desiredSize", int)
        if not 0 <= desired_size <= MAX_POOL_SIZE:
            self.problem(
                pool.key("desiredSize"), f"{desired_size} is outside 0-{MAX_POOL_SIZE}; pick a size in it."
            )
        existing = pool.get("existingInstances", list)
        if not all(isinstance(item, str) and _INSTANCE_ID.match(item) for item in existing):
            self.problem(
                pool.key("existingInstances"),
                f"must list ECS instance ids like 'i-uf6...'; got {existing!r}.",
            )
        if where and existing and "desiredSize" in entry:
            self.problem(
                pool.key("desiredSize"),
                "cannot be combined with existingInstances in one pool (the pool attaches those instances); "
                "drop one of them.",
            )
        labels = pool.get("labels", dict)
        self.check_labels(pool.key("labels"), labels)
        taint_text = pool.get("taint", str)
        disk_size = pool.get("systemDiskSize", int)
        if not 40 <= disk_size <= 2048:
            self.problem(
                pool.key("systemDiskSize"), f"{disk_size} GiB is outside 40-2048; pick a size in it."
            )
        return RdmaNodePoolArgs(
            name=name,
            instance_types=tuple(str(item) for item in instance_types),
            desired_size=desired_size,
            labels={str(k): str(v) for k, v in labels.items()},
            taint=self.taint(pool.key("taint"), taint_text) if taint_text else None,
            deployment_set=bool(pool.get("deploymentSet", bool)),
            existing_instances=tuple(str(item) for item in existing),
            system_disk_category=pool.get("systemDiskCategory", str),
            system_disk_size=disk_size,
        )

    def check_labels(self, key: str, labels: Mapping[str, object]) -> None:
        for name, value in labels.items():
            prefix, _, short = name.rpartition("/")
            if not _LABEL_NAME.match(short) or (prefix and not _DNS_SUBDOMAIN.match(prefix)):
                self.problem(key, f"label key {name!r} is not a Kubernetes label key; use [prefix/]name.")
            if not isinstance(value, str) or not _LABEL_VALUE.match(value):
                self.problem(
                    key, f"label {name!r} has value {value!r}; use a string of at most 63 label characters."
                )

    def taint(self, key: str, text: str) -> Taint | None:
        body, _, effect = text.rpartition(":")
        taint_key, _, value = body.partition("=")
        if effect not in TAINT_EFFECTS or not taint_key or not _LABEL_VALUE.match(value):
            self.problem(
                key,
                f"{text!r} is not a taint; write key=value:Effect or key:Effect with Effect one of "
                f"{list(TAINT_EFFECTS)}.",
            )
            return None
        return Taint(taint_key, effect, value)

    def login(self) -> NodeLogin:
        key_name = self.value("keyName") or None
        password = self.secrets.get("nodePassword")
        if (key_name is None) == (password is None):
            self.problem(
                "keyName",
                "and ack-rdma:nodePassword: set exactly one, the name of an ECS key pair in the region "
                "(`pulumi config set ack-rdma:keyName <pair>`) or a password "
                "(`pulumi config set --secret ack-rdma:nodePassword`).",
            )
        return NodeLogin(key_name=key_name, password=password)

    # -- device plugin and images -----------------------------------------------------------------------
    def plugin_config(self) -> tuple[str, tuple[str, ...]]:
        try:
            validated = validate_plugin_config(self.value("pluginConfig"))
        except ConfigError as error:
            self.problem("pluginConfig", f"is rejected by the device plugin: {error}")
            return "", (defaults.PLUGIN_RESOURCE_NAME,)
        return validated.json_text, validated.resource_names

    def image_ref(self, name: str) -> str | None:
        ref = self.value(name)
        if ref is None:
            return None
        first, _, rest = ref.partition("/")
        if not rest or not ("." in first or ":" in first or first == "localhost"):
            self.problem(
                name,
                f"{ref!r} lacks a registry host; write the full reference, e.g. "
                "registry.cn-shanghai.aliyuncs.com/<namespace>/<repository>@sha256:<digest>.",
            )
        return str(ref)

    def image_labels(self) -> tuple[str | None, str | None]:
        """The revision and source for the OCI labels of the images the program builds, if configured."""
        revision = self.value("imageRevision") or None
        if revision is not None and not _REVISION.match(revision):
            self.problem(
                "imageRevision",
                f"{revision!r} is not a source revision; give a commit id or tag (letters, digits, '.', '_', "
                "'/', '+', '-').",
            )
        source = self.value("imageSource") or None
        if source is not None and not _SOURCE_URL.match(source):
            self.problem(
                "imageSource",
                f"{source!r} is not a repository URL; give one that starts with https://, ssh:// or git@.",
            )
        return revision, source

    def images(self, region: str) -> tuple[PluginImagesArgs | None, str, str, PullSecretSource | None]:
        """What to build (if anything), the plugin and test-pod image references, and a pull secret."""
        prebuilt = self.image_ref("pluginImage")
        test_image = self.image_ref("testPodImage")
        if prebuilt is not None:
            if test_image is None:
                self.problem(
                    "testPodImage",
                    "is required when ack-rdma:pluginImage is set (nothing is built, so there is no tools "
                    "image); set it to an image with perftest.",
                )
            return None, prebuilt, test_image or "", None
        edition = self.value("registryEdition")
        if edition not in REGISTRY_EDITIONS:
            self.problem(
                "registryEdition", f"{edition!r} is not an ACR edition; use one of {list(REGISTRY_EDITIONS)}."
            )
        host = self.value("registryHost")
        instance_id = self.value("registryInstanceId")
        username = self.value("registryUsername")
        password = self.secrets.get("registryPassword")
        if edition == ENTERPRISE:
            if not instance_id:
                self.problem(
                    "registryInstanceId", "is required for registryEdition enterprise; give the cri-... id."
                )
            if not host:
                self.problem(
                    "registryHost",
                    "is required for registryEdition enterprise; give the instance's domain, e.g. "
                    "myreg-registry.cn-shanghai.cr.aliyuncs.com.",
                )
        if edition == PERSONAL:
            host = host or personal_registry_host(region)
            if not username or password is None:
                self.problem(
                    "registryUsername",
                    "and ack-rdma:registryPassword are required for registryEdition personal; set the login "
                    "and "
                    "`pulumi config set --secret ack-rdma:registryPassword`.",
                )
        if host and not _REGISTRY_HOST.match(host):
            self.problem(
                "registryHost", f"{host!r} is not a registry host name; give a host such as the above."
            )
        namespace = self.value("registryNamespace")
        if not _ACR_NAMESPACE.match(namespace):
            self.problem(
                "registryNamespace", f"{namespace!r} is not an ACR namespace; use 2-30 lower-case characters."
            )
        version = self.value("imageVersion")
        if not _IMAGE_TAG.match(version):
            self.problem(
                "imageVersion", f"{version!r} is not an image tag; use letters, digits, '.', '_', '-'."
            )
        revision, source = self.image_labels()
        args = PluginImagesArgs(
            edition=edition,
            host=host or "",
            namespace=namespace,
            instance_id=instance_id,
            username=username,
            password=password,
            version=version,
            revision=revision,
            source=source,
        )
        pull_secret = None
        if edition == PERSONAL and username and password is not None:
            # Personal Edition instances created after 2024-09-08 serve ACK pulls only with credentials.
            pull_secret = PullSecretSource(host=args.host, username=username, password=password)
        tools_image = test_image or args.tag(args.tools_repository)
        return args, args.tag(args.plugin_repository), tools_image, pull_secret


# A nodePools entry field -> the single-pool key that is its default.
_POOL_DEFAULT_KEYS = {
    "name": "nodePoolName",
    "instanceTypes": "instanceTypes",
    "desiredSize": "desiredSize",
    "labels": "nodeLabels",
    "taint": "nodeTaint",
    "deploymentSet": "deploymentSet",
    "existingInstances": "existingInstances",
    "systemDiskCategory": "systemDiskCategory",
    "systemDiskSize": "systemDiskSize",
}


class _PoolReader:
    """Fields of one pool: from its nodePools entry if given there, else from the single-pool key."""

    def __init__(self, parser: _Parser, where: str, entry: Mapping[str, Any]) -> None:
        self.parser = parser
        self.where = where
        self.entry = entry

    def key(self, field: str) -> str:
        return f"{self.where}{field}" if self.where else _POOL_DEFAULT_KEYS[field]

    def get(self, field: str, kind: type) -> Any:
        if field in self.entry:
            value = self.entry[field]
            # bool is an int in Python, but not a size.
            if isinstance(value, kind) and not (isinstance(value, bool) and kind is int):
                return value
            self.parser.problem(
                self.key(field), f"has the wrong type; give it like {PROJECT}:{_POOL_DEFAULT_KEYS[field]}."
            )
        return self.parser.value(_POOL_DEFAULT_KEYS[field])
