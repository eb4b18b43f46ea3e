"""The stack config, read and validated as a whole before any resource is declared.

What the keys are, their types, defaults and checks is the schema (``components.config_schema``); this module
reads the values the Pulumi CLI handed the program, turns pydantic's errors into problems that name the key
and the fix, and builds the typed argument set of every component from the validated values. Every problem is
collected and reported together as one StackConfigError (a ``pulumi.RunError``: the CLI prints its message,
not a traceback).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi.runtime.config as runtime_config
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from components import defaults
from components.api_server_access import ApiServerAccessArgs
from components.cluster import AckClusterArgs, AddonSpec
from components.config_keys import KEYS_BY_NAME, ConfigType
from components.config_schema import (
    POOL_FIELD_DEFAULT_KEYS,
    PROJECT,
    AddonEntry,
    NodePoolEntry,
    StackConfigModel,
    cut,
    did_you_mean,
    key_hints,
    key_names,
    parse_taint,
    printable,
    shown,
)
from components.device_plugin import RdmaDevicePluginArgs
from components.erdma import ErdmaControllerArgs
from components.images import PERSONAL, PluginImagesArgs, personal_registry_host
from components.instance_catalogue import default_check_min_gbits, expected_gbits
from components.k8s_objects import DevicePluginSpec, TestPodSpec
from components.k8s_resources import PullSecretSource
from components.network import NetworkArgs
from components.node_pool import NodeLogin, RdmaNodePoolArgs, SystemNodePoolArgs, zone_needs
from components.plugin_config import validate_plugin_config
from components.pod_network import PodVswitchesArgs
from components.registry_access import RegistryAccessArgs, vpc_registry_host
from components.security import ClusterSecurityGroupArgs

# Namespaces of the providers and the engine: their keys are theirs to check.
PROVIDER_NAMESPACES = frozenset({"alicloud", "pulumi", "kubernetes", "docker-build"})
MAX_LISTED_PROBLEMS = 12
"""Problems spelt out in the message; the rest are counted (the message never grows with the input)."""
_WHOLE_NUMBER = re.compile(r"^-?\d{1,18}$")
# What a nested list of entries is called in "is not a ... field".
_ENTRY_KINDS: dict[str, tuple[str, type[BaseModel]]] = {
    "nodePools": ("node pool", NodePoolEntry),
    "addons": ("addon", AddonEntry),
}


class StackConfigError(pulumi.RunError):
    """Invalid stack config; the message lists every problem, each with its key and fix, in one paragraph."""

    def __init__(self, stack: str, problems: list[str]) -> None:
        self.stack = stack
        self.problems = tuple(printable(problem) for problem in problems)
        count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
        listed = " ".join(
            f"({index}) {problem}"
            for index, problem in enumerate(self.problems[:MAX_LISTED_PROBLEMS], start=1)
        )
        if len(problems) > MAX_LISTED_PROBLEMS:
            listed += f" (and {len(problems) - MAX_LISTED_PROBLEMS} more of the same kinds)"
        name = printable(stack)
        super().__init__(
            f"Stack config of stack '{name}' is invalid, nothing was declared ({count}): {listed} "
            f"Fix the keys in stacks/Pulumi.{name}.yaml or with `pulumi config set`."
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
    pod_vswitches: PodVswitchesArgs | None
    """Terway's pod vSwitches; ``None`` with Flannel."""
    api_server: ApiServerAccessArgs | None
    """The API server's listener whitelist; ``None`` when no CIDR is listed (no public endpoint)."""
    registry_access: RegistryAccessArgs | None
    """VPC link, push endpoint and credential helper of an ACR Enterprise Edition instance the program
    pushes to; ``None`` otherwise."""
    node_pools: tuple[RdmaNodePoolArgs, ...]
    system_pool: SystemNodePoolArgs
    erdma: ErdmaControllerArgs
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
    expected_gbits: float | None
    """Published baseline bandwidth of the slowest type the RDMA pools buy; ``None`` when they buy none."""

    @property
    def node_count(self) -> int:
        return sum(pool.node_count for pool in self.node_pools)


# -- reading what the CLI handed over ---------------------------------------------------------------------
def given_config() -> dict[str, object]:
    """Every config key the program was given, qualified, with its value as handed over.

    The Python language host puts the stack's whole config map into ``PULUMI_CONFIG`` and the secret keys
    into ``PULUMI_CONFIG_SECRET_KEYS``, and its exec script loads both with ``set_all_config`` before the
    program runs (pulumi/pulumi ``sdk/python/cmd/pulumi-language-python/main.go`` line 1674,
    ``sdk/python/cmd/pulumi-language-python-exec`` lines 103-110, commit 1b59498); the mock engine's runs
    load them the same way.
    """
    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def read_stack_config() -> StackConfig:
    """Read this stack's config as the CLI handed it over and validate it; raises StackConfigError."""
    return stack_config_from(given_config(), runtime_config.is_config_secret, pulumi.get_stack())


def stack_config_from(
    given: Mapping[str, object], is_secret: Callable[[str], bool], stack: str
) -> StackConfig:
    """The stack config from every key the program was given (qualified) and which of them are secret.

    Besides the schema's checks, refuses what ``pulumi.Config`` would pass over in silence: keys of the
    ``ack-rdma`` namespace the program does not know (a misspelt key would otherwise leave its default in
    place), plaintext values for keys that must be secret, and keys without a value (``null``).
    """
    prefix = f"{PROJECT}:"
    plain: dict[str, str] = {}
    secrets: dict[str, pulumi.Output[str]] = {}
    problems: list[str] = []
    for qualified, value in sorted(given.items()):
        if not qualified.startswith(prefix):
            problems.extend(_namespace_problem(qualified))
            continue
        name = qualified[len(prefix) :]
        known = KEYS_BY_NAME.get(name)
        if known is not None and known.secret:
            if not is_secret(qualified):
                problems.append(
                    f"{qualified} is stored in plaintext but must be secret; remove it from the stack file "
                    f"and set it with `pulumi config set --secret {qualified}`."
                )
            elif value is not None:
                secrets[name] = pulumi.Output.secret(str(value))
        elif value is not None:
            plain[name] = str(value)
        else:
            plain[name] = "null"
    region = given.get("alicloud:region")
    return parse_stack_config(
        plain,
        secrets,
        stack=stack,
        region=str(region) if region is not None else None,
        problems=problems,
    )


def _namespace_problem(qualified: str) -> list[str]:
    """A key in a namespace that is a misspelling of the project's: nothing reads it, its default stays."""
    namespace, _, name = qualified.partition(":")
    if namespace in PROVIDER_NAMESPACES or not difflib.get_close_matches(namespace, [PROJECT], cutoff=0.7):
        return []
    return [
        f"{cut(qualified)} is in namespace {shown(namespace)}, which nothing in this program reads; "
        f"did you mean {PROJECT}:{cut(name)}?"
    ]


def parse_stack_config(
    plain: Mapping[str, str],
    secrets: Mapping[str, pulumi.Output[str]],
    *,
    stack: str,
    region: str | None,
    problems: list[str] | None = None,
) -> StackConfig:
    """Validate raw config values (strings, structured ones as JSON, as Pulumi hands them over) by name
    within the namespace; ``problems`` are found earlier and reported with the schema's."""
    found = list(problems or ())
    if not region:
        found.append(
            "alicloud:region is not set; set it with `pulumi config set alicloud:region cn-shanghai` "
            "(or the region of your RDMA capacity)."
        )
    data: dict[str, object] = {}
    for name, raw in plain.items():
        declared = KEYS_BY_NAME.get(name)
        if declared is not None and declared.secret:
            found.append(
                f"{PROJECT}:{name} is stored in plaintext but must be secret; set it with "
                f"`pulumi config set --secret {PROJECT}:{name}`."
            )
            continue
        decoded = _decode(declared.type if declared else "string", raw)
        if decoded is None:
            found.append(
                f"{PROJECT}:{name} has no value (null); give it one or leave the key out to take its default."
            )
            continue
        data[name] = decoded
    data.update(secrets)
    try:
        model = StackConfigModel.model_validate(data)
    except ValidationError as error:
        found.extend(_problem(detail) for detail in error.errors(include_url=False))
        raise StackConfigError(stack, found) from None
    if found:
        raise StackConfigError(stack, found)
    return _build(model, stack, region or "", test_image_given=bool(plain.get("testPodImage")))


def _decode(type_: ConfigType, raw: str) -> object:
    """A value as the CLI hands it over (a string; structured values as JSON) in its declared type.

    What does not decode stays the string it was, and the schema's strict types then name the key and what
    it must be. ``None`` for a null.
    """
    if raw == "null":
        return None
    if type_ == "boolean":
        # pulumi.Config.get_bool's spellings (pulumi/config.py ``_get_bool``).
        return {"true": True, "True": True, "false": False, "False": False}.get(raw, raw)
    if type_ == "integer":
        return int(raw) if _WHOLE_NUMBER.match(raw) else raw
    if type_ in ("array", "object"):
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            return raw
    return raw


# -- pydantic's errors as problems --------------------------------------------------------------------------
# A default that is validated reports the field's Python name, a given value its alias: both become the key.
_ALIASES = {
    name: field.alias or name
    for model in (StackConfigModel, NodePoolEntry, AddonEntry)
    for name, field in model.model_fields.items()
}


def _key_of(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        name = _ALIASES.get(part, part) if isinstance(part, str) else part
        text += f"[{name}]" if isinstance(name, int) else (f".{name}" if text else name)
    return cut(text)


def _problem(detail: ErrorDetails) -> str:
    loc = tuple(detail["loc"])
    key = _key_of(loc)
    context = detail.get("ctx") or {}
    value = detail.get("input")
    kind = detail["type"]
    if kind == "stack_config":
        target = context.get("key") or "{key}"
        return f"{PROJECT}:{str(target).replace('{key}', key)} {context['problem']}"
    text = {
        "bool_type": f"must be true or false, not {shown(value)}.",
        "int_type": f"must be a whole number, not {shown(value)}.",
        "string_type": f"must be a string, not {shown(value)}.",
        "list_type": f"must be a YAML list in the stack file, not {shown(value)}.",
        "dict_type": f"must be a YAML mapping in the stack file, not {shown(value)}.",
        "model_type": f"must be a YAML mapping in the stack file, not {shown(value)}.",
        "model_attributes_type": f"must be a YAML mapping in the stack file, not {shown(value)}.",
    }.get(kind)
    if kind == "extra_forbidden":
        text = _unknown_key(loc)
    if text is None:
        text = f"is invalid: {detail['msg']}."
    return f"{PROJECT}:{key} {text}"


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    name = str(loc[-1])
    if len(loc) == 1:
        return f"is not a config key of this program; {did_you_mean(name, key_names(), key_hints())}"
    kind, model = _ENTRY_KINDS[str(loc[0])]
    fields = [field.alias or field_name for field_name, field in model.model_fields.items()]
    return f"is not {'an' if kind[0] in 'aeiou' else 'a'} {kind} field; {did_you_mean(name, fields)}"


# -- the typed component args -------------------------------------------------------------------------------
def _pool(entry: NodePoolEntry, model: StackConfigModel) -> RdmaNodePoolArgs:
    def pick(field: str) -> Any:
        value = getattr(entry, field)
        return value if value is not None else getattr(model, _snake(POOL_FIELD_DEFAULT_KEYS[field]))

    taint_text: str = pick("taint")
    existing: list[str] = pick("existing_instances")
    return RdmaNodePoolArgs(
        name=pick("name"),
        instance_types=tuple(pick("instance_types")),
        desired_size=pick("desired_size"),
        labels=dict(pick("labels")),
        taint=parse_taint(taint_text) if taint_text else None,
        deployment_set=pick("deployment_set"),
        existing_instances=tuple(existing),
        system_disk_category=pick("system_disk_category"),
        system_disk_size=pick("system_disk_size"),
    )


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()


def _build(model: StackConfigModel, stack: str, region: str, *, test_image_given: bool) -> StackConfig:
    tags = {"project": PROJECT, "stack": stack}
    prefix = model.name_prefix
    node_pools = tuple(_pool(entry, model) for entry in (model.node_pools or [NodePoolEntry()]))
    system_pool = SystemNodePoolArgs(
        instance_types=tuple(model.system_pool_instance_types),
        desired_size=model.system_pool_size,
        system_disk_category=model.system_disk_category,
    )
    network = NetworkArgs(
        name_prefix=prefix,
        vpc_cidr=model.vpc_cidr,
        vswitch_cidr=model.vswitch_cidr,
        zone_id=model.zone_id or None,
        zone_needs=zone_needs(node_pools, system_pool),
        tags=tags,
    )
    bought = [name for pool in node_pools if not pool.existing_instances for name in pool.instance_types]
    terway = model.network_plugin == defaults.TERWAY
    pod_cidrs = tuple(model.pod_vswitch_cidrs) if terway else (model.pod_cidr,)
    security = ClusterSecurityGroupArgs(
        name_prefix=prefix,
        vpc_cidr=model.vpc_cidr,
        pod_cidrs=pod_cidrs,
        ssh_cidrs=tuple(model.ssh_ingress_cidrs),
        tags=tags,
    )
    api_server_cidrs = tuple(model.api_server_ingress_cidrs)
    api_server = (
        ApiServerAccessArgs(
            name_prefix=prefix,
            region=region,
            allowed_cidrs=api_server_cidrs,
            vpc_cidr=model.vpc_cidr,
            pod_cidrs=pod_cidrs,
            tags=tags,
        )
        if api_server_cidrs
        else None
    )
    pod_vswitches = (
        PodVswitchesArgs(name_prefix=prefix, cidrs=tuple(model.pod_vswitch_cidrs), tags=tags)
        if terway
        else None
    )
    cluster = AckClusterArgs(
        name_prefix=prefix,
        cluster_spec=model.cluster_spec,
        kubernetes_version=model.kubernetes_version or None,
        network_plugin=model.network_plugin,
        pod_cidr=model.pod_cidr,
        service_cidr=model.service_cidr,
        new_nat_gateway=model.new_nat_gateway,
        # The API server gets a public endpoint only when someone outside the VPC is listed.
        api_server_internet=bool(api_server_cidrs),
        proxy_mode=model.kube_proxy_mode,
        deletion_protection=model.deletion_protection,
        addons=tuple(
            AddonSpec(
                addon.name,
                json.dumps(addon.config, sort_keys=True) if isinstance(addon.config, dict) else addon.config,
                addon.version,
                addon.disabled,
            )
            for addon in model.addons
        ),
        kubeconfig_duration_minutes=model.kubeconfig_duration_minutes,
        tags=tags,
    )
    login = NodeLogin(key_name=model.key_name or None, password=model.node_password)
    plugin = validate_plugin_config(model.plugin_config)
    images, plugin_image, tools_image, pull_secret = _images(model, region)
    tolerations = tuple(
        dict(toleration)
        for toleration in dict.fromkeys(
            tuple(sorted(pool.taint.toleration().items())) for pool in node_pools if pool.taint is not None
        )
    )
    pull_secrets = (pull_secret.secret_name,) if pull_secret else ()
    device_plugin = RdmaDevicePluginArgs(
        spec=DevicePluginSpec(
            namespace=defaults.PLUGIN_NAMESPACE,
            config_json=plugin.json_text,
            image=plugin_image,
            tolerations=tolerations,
            metrics_port=model.plugin_metrics_port,
            image_pull_secrets=pull_secrets,
        ),
        resource_names=plugin.resource_names,
        pull_secret=pull_secret,
        pull_secret_namespaces=(model.test_pod_namespace,),
    )
    test_pods = TestPodSpec(
        namespace=model.test_pod_namespace,
        image=tools_image,
        resource_name=plugin.resource_names[0],
        host_network=model.test_pod_host_network,
        tolerations=tolerations,
        image_pull_secrets=pull_secrets,
        network_policy=terway,
    )
    registry_access = None
    if images is not None and images.pull_host is not None:
        registry_access = RegistryAccessArgs(
            instance_id=model.registry_instance_id,
            region=region,
            pull_host=images.pull_host,
            push_cidrs=tuple(model.registry_push_cidrs),
            pull_namespaces=(defaults.PLUGIN_NAMESPACE, test_pods.namespace),
            pull_service_accounts=(device_plugin.spec.name, test_pods.service_account),
        )
    return StackConfig(
        stack=stack,
        region=region,
        name_prefix=prefix,
        tags=tags,
        network=network,
        security=security,
        cluster=cluster,
        pod_vswitches=pod_vswitches,
        api_server=api_server,
        registry_access=registry_access,
        node_pools=node_pools,
        system_pool=system_pool,
        erdma=ErdmaControllerArgs(
            driver=model.erdma_driver, allocate_all_devices=model.erdma_allocate_all_devices
        ),
        login=login,
        images=images,
        device_plugin=device_plugin,
        test_pods=test_pods,
        test_pods_enabled=model.test_pods,
        test_pods_use_built_image=images is not None and not test_image_given,
        # 0 is "from the catalogue"; the schema refused 0 where the pools buy nothing catalogued.
        check_min_gbits=model.check_min_gbits or default_check_min_gbits(bought),
        expected_gbits=expected_gbits(bought) if bought else None,
    )


def _images(
    model: StackConfigModel, region: str
) -> tuple[PluginImagesArgs | None, str, str, PullSecretSource | None]:
    """What to build (if anything), the plugin and test-pod image references, and a pull secret."""
    if model.plugin_image:
        return None, model.plugin_image, model.test_pod_image, None
    personal = model.registry_edition == PERSONAL
    password = cast("pulumi.Output[str] | None", model.registry_password)
    args = PluginImagesArgs(
        edition=model.registry_edition,
        host=model.registry_host or (personal_registry_host(region) if personal else ""),
        namespace=model.registry_namespace,
        instance_id=model.registry_instance_id or None,
        username=model.registry_username or None,
        password=password,
        version=model.image_version,
        revision=model.image_revision or None,
        source=model.image_source or None,
        # Enterprise Edition: the nodes pull through the instance's VPC endpoint (RegistryAccess links it).
        pull_host=None if personal else vpc_registry_host(model.registry_host),
    )
    pull_secret = None
    if personal and model.registry_username and password is not None:
        # Personal Edition instances created after 2024-09-08 serve ACK pulls only with credentials.
        pull_secret = PullSecretSource(host=args.host, username=model.registry_username, password=password)
    tools_image = model.test_pod_image or args.tag(args.tools_repository)
    return args, args.tag(args.plugin_repository), tools_image, pull_secret
