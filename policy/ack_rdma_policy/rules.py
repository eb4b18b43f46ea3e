"""The pack's rules as pure functions over one resource's type token, inputs and stack.

Pulumi hands a policy the resource inputs in camelCase (``cidrIp``, ``deletionProtection``,
``securityContext``), nested objects as read-only mappings and lists as sequences that raise on values
still unknown during preview. The checks therefore read only through ``Mapping`` / ``Sequence``, never
assume ``dict`` / ``list``, and let those errors propagate (the policy SDK reports them as "can't run
during preview").

``evaluate`` runs every rule over ``ResourceRecord``s: the hook through which the program's tests feed the
resources it declares under the mock engine.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Props = Mapping[str, Any]

RDMA_NODE_LABEL_KEY = "aliyun.accelerator/rdma"
RDMA_NODE_LABEL_VALUE = "true"
RDMA_RESOURCE_PREFIX = "rdma/"
# ACK's "Instance types not supported by ACK": Super Computing Cluster (SCC). The pack runs in its own
# virtualenv without the program, so this mirrors components/instance_catalogue.py (a test keeps them equal).
UNSUPPORTED_BY_ACK_PREFIXES = ("ecs.scc",)
# RDMA memory registration pins pages; nothing else an RDMA test pod does needs a capability.
RDMA_POD_CAPABILITIES = frozenset({"IPC_LOCK"})

SECURITY_GROUP_RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"
NODE_POOL = "alicloud:cs/nodePool:NodePool"
ACK_CLUSTERS = frozenset(
    {"alicloud:cs/managedKubernetes:ManagedKubernetes", "alicloud:cs/kubernetes:Kubernetes"}
)

_TEMPLATE_POD_SPEC = ("spec", "template", "spec")
# Where each workload kind keeps its pod spec (the same for its server-side-apply ``<Kind>Patch`` type).
_POD_SPEC_PATHS: Mapping[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": _TEMPLATE_POD_SPEC,
    "DaemonSet": _TEMPLATE_POD_SPEC,
    "StatefulSet": _TEMPLATE_POD_SPEC,
    "ReplicaSet": _TEMPLATE_POD_SPEC,
    "ReplicationController": _TEMPLATE_POD_SPEC,
    "Job": _TEMPLATE_POD_SPEC,
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


class PolicyConfigError(ValueError):
    """The pack's configuration is malformed; the message names the key and the fix."""


@dataclass(frozen=True)
class ResourceRecord:
    """One resource as the engine sees it: type token, logical name, camelCase inputs, stack name."""

    type: str
    name: str
    props: Props
    stack: str


@dataclass(frozen=True)
class RuleContext:
    """What a check may know besides the inputs: the resource's name, its stack and the rule's config."""

    resource_name: str
    stack: str
    config: Mapping[str, Any]


Check = Callable[[str, Props, RuleContext], list[str]]


@dataclass(frozen=True)
class ConfigOption:
    """One key of a rule's config: its JSON schema (with the default) and the parser that validates it."""

    schema: Mapping[str, Any]
    parse: Callable[[str, Any], Any]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    applies_to: Callable[[str], bool]
    check: Check
    config: Mapping[str, ConfigOption] = field(default_factory=dict)

    def read_config(self, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        """This rule's config with defaults filled in; unknown keys and malformed values are errors."""
        given = dict(raw or {})
        unknown = sorted(set(given) - set(self.config))
        if unknown:
            known = ", ".join(sorted(self.config)) or "none"
            raise PolicyConfigError(
                f"policy config for '{self.name}' has unknown key(s) {', '.join(unknown)}; "
                f"the keys it takes are: {known}."
            )
        return {
            key: option.parse(f"{self.name}.{key}", given.get(key, option.schema["default"]))
            for key, option in self.config.items()
        }


@dataclass(frozen=True)
class Violation:
    policy: str
    resource_type: str
    resource_name: str
    message: str


@dataclass(frozen=True)
class Report:
    """Violations found, and how many resources each rule looked at (a test can tell it was not vacuous)."""

    violations: tuple[Violation, ...]
    checked: Mapping[str, int]


def stack_of_urn(urn: str) -> str:
    """The stack a resource belongs to, from its URN ``urn:pulumi:<stack>::<project>::<type>::<name>``."""
    head, separator, _ = urn.partition("::")
    prefix = "urn:pulumi:"
    if not separator or not head.startswith(prefix) or head == prefix:
        raise ValueError(f"not a Pulumi resource URN: {urn!r} (expected urn:pulumi:<stack>::<project>::...)")
    return head.removeprefix(prefix)


def kubernetes_kind(resource_type: str) -> str | None:
    """``Kind`` of a pulumi-kubernetes type token such as ``kubernetes:apps/v1:DaemonSet``."""
    package, _, rest = resource_type.partition(":")
    if package != "kubernetes":
        return None
    kind = rest.partition(":")[2]
    return kind.removesuffix("Patch") or None


def _mapping(value: Any) -> Props:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, str) else ()


def _pod_spec(resource_type: str, props: Props) -> Props | None:
    path = _POD_SPEC_PATHS.get(kubernetes_kind(resource_type) or "")
    if path is None:
        return None
    node: Props = props
    for key in path:
        node = _mapping(node.get(key))
    return node


def _containers(pod_spec: Props) -> Iterator[Props]:
    for list_key in _CONTAINER_LISTS:
        for container in _sequence(pod_spec.get(list_key)):
            if isinstance(container, Mapping):
                yield container


def _capabilities(container: Props, which: str) -> list[str]:
    capabilities = _mapping(_mapping(container.get("securityContext")).get("capabilities"))
    return [str(name) for name in _sequence(capabilities.get(which))]


def _object_label(resource_type: str, context: RuleContext) -> str:
    return f"{kubernetes_kind(resource_type)} '{context.resource_name}'"


def _container_label(container: Props) -> str:
    return f"container '{container.get('name', '<unnamed>')}'"


# --- config parsers -----------------------------------------------------------------------------------------


def _port_list(where: str, value: Any) -> frozenset[int]:
    problem = (
        f"policy config '{where}' must be a list of port numbers between 1 and 65535, got {value!r}; "
        "write it like [443]."
    )
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise PolicyConfigError(problem)
    ports: set[int] = set()
    for item in value:
        # Policy config reaches the pack through a protobuf Struct, so whole numbers arrive as floats.
        if isinstance(item, bool) or not isinstance(item, int | float) or item != int(item):
            raise PolicyConfigError(problem)
        if not 1 <= item <= 65535:
            raise PolicyConfigError(problem)
        ports.add(int(item))
    return frozenset(ports)


def _name_list(where: str, value: Any) -> frozenset[str]:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or not all(isinstance(item, str) and item for item in value)
    ):
        raise PolicyConfigError(
            f"policy config '{where}' must be a list of non-empty names, got {value!r}; "
            'write it like ["prod"].'
        )
    return frozenset(value)


# --- checks -------------------------------------------------------------------------------------------------


def _is_whole_internet(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


def _ports_allowed(protocol: str, port_range: str, allowed: frozenset[int]) -> bool:
    if protocol.lower() not in {"tcp", "udp"}:
        return False
    start_text, _, end_text = port_range.partition("/")
    try:
        start, end = int(start_text), int(end_text)
    except ValueError:
        return False
    if not 1 <= start <= end <= 65535 or end - start + 1 > len(allowed):
        return False
    return all(port in allowed for port in range(start, end + 1))


def check_public_ingress(resource_type: str, props: Props, context: RuleContext) -> list[str]:
    # A rule that drops traffic from anywhere narrows access; only accepting ones widen it.
    if props.get("type") != "ingress" or props.get("policy", "accept") == "drop":
        return []
    protocol = str(props.get("ipProtocol", ""))
    port_range = str(props.get("portRange", ""))
    allowed: frozenset[int] = context.config["allowedPublicIngressPorts"]
    if _ports_allowed(protocol, port_range, allowed):
        return []
    return [
        f"security group rule '{context.resource_name}' accepts {protocol} {port_range} from {key}={source}, "
        f"the whole internet: narrow {key} to the CIDRs that need access, or list the port in the policy "
        "config 'allowedPublicIngressPorts' if it must be public."
        for key in ("cidrIp", "ipv6CidrIp")
        if isinstance(source := props.get(key), str) and _is_whole_internet(source)
    ]


def check_rdma_node_pool_label(resource_type: str, props: Props, context: RuleContext) -> list[str]:
    pool_name = props.get("nodePoolName") or context.resource_name
    exempt: frozenset[str] = context.config["nonRdmaNodePools"]
    if context.resource_name in exempt or pool_name in exempt:
        return []
    labels = [label for label in _sequence(props.get("labels")) if isinstance(label, Mapping)]
    values = [label.get("value") for label in labels if label.get("key") == RDMA_NODE_LABEL_KEY]
    if values == [RDMA_NODE_LABEL_VALUE]:
        return []
    found = f"it has {RDMA_NODE_LABEL_KEY}={values}" if values else "it has no such label"
    return [
        f"node pool '{pool_name}' must carry the label {RDMA_NODE_LABEL_KEY}={RDMA_NODE_LABEL_VALUE} "
        f"({found}): the device plugin and the RDMA pods select their nodes by it. Add "
        f"{{key: {RDMA_NODE_LABEL_KEY}, value: '{RDMA_NODE_LABEL_VALUE}'}} to the pool's labels, or list the "
        "pool in the policy config 'nonRdmaNodePools' if it holds no RDMA nodes."
    ]


def check_no_unsupported_purchase(resource_type: str, props: Props, context: RuleContext) -> list[str]:
    if _sequence(props.get("instances")):
        return []  # the pool attaches instances a user owns and buys nothing
    pool_name = props.get("nodePoolName") or context.resource_name
    bought = [str(name) for name in _sequence(props.get("instanceTypes"))]
    unsupported = [name for name in bought if name.startswith(UNSUPPORTED_BY_ACK_PREFIXES)]
    if not unsupported:
        return []
    return [
        f"node pool '{pool_name}' would buy {', '.join(unsupported[:3])}, a family ACK does not support as "
        "worker nodes (SCC); list eRDMA types such as ecs.g8i.4xlarge in instanceTypes, or attach instances "
        "you already own through the pool's instances."
    ]


def check_no_privileged_containers(resource_type: str, props: Props, context: RuleContext) -> list[str]:
    pod_spec = _pod_spec(resource_type, props)
    if pod_spec is None:
        return []
    return [
        f"{_object_label(resource_type, context)}: {_container_label(container)} is privileged; set "
        "securityContext.privileged to false and add only the capabilities it needs."
        for container in _containers(pod_spec)
        if _mapping(container.get("securityContext")).get("privileged") is True
    ]


def check_daemonset_drops_all(resource_type: str, props: Props, context: RuleContext) -> list[str]:
    pod_spec = _pod_spec(resource_type, props)
    if pod_spec is None:
        return []
    return [
        f"{_object_label(resource_type, context)}: {_container_label(container)} does not drop all "
        f"capabilities (drop={_capabilities(container, 'drop')}); set securityContext.capabilities.drop "
        'to ["ALL"] and add back only what it needs.'
        for container in _containers(pod_spec)
        if "ALL" not in _capabilities(container, "drop")
    ]


def _requests_rdma(container: Props) -> bool:
    resources = _mapping(container.get("resources"))
    return any(
        str(name).startswith(RDMA_RESOURCE_PREFIX)
        for amounts in (resources.get("limits"), resources.get("requests"))
        for name in _mapping(amounts)
    )


def check_rdma_pod_capabilities(resource_type: str, props: Props, context: RuleContext) -> list[str]:
    pod_spec = _pod_spec(resource_type, props)
    if pod_spec is None:
        return []
    containers = list(_containers(pod_spec))
    if not any(_requests_rdma(container) for container in containers):
        return []
    problems = []
    for container in containers:
        extra = sorted(set(_capabilities(container, "add")) - RDMA_POD_CAPABILITIES)
        if extra:
            problems.append(
                f"{_object_label(resource_type, context)} requests an {RDMA_RESOURCE_PREFIX}* resource and "
                f"{_container_label(container)} adds {', '.join(extra)}; an RDMA pod may add IPC_LOCK and "
                "nothing else: remove the others from securityContext.capabilities.add."
            )
    return problems


def check_cluster_deletion_protection(resource_type: str, props: Props, context: RuleContext) -> list[str]:
    protected: frozenset[str] = context.config["protectedStacks"]
    if context.stack not in protected or props.get("deletionProtection") is True:
        return []
    return [
        f"ACK cluster '{context.resource_name}' in stack '{context.stack}' has deletion protection off; set "
        "deletion_protection=True (stack config) for every stack listed in the policy config "
        "'protectedStacks'."
    ]


def _is_kind(*kinds: str) -> Callable[[str], bool]:
    return lambda resource_type: kubernetes_kind(resource_type) in kinds


RULES: tuple[Rule, ...] = (
    Rule(
        name="no-public-ingress",
        description="Security group rules accept no ingress from 0.0.0.0/0 (or ::/0) except on ports the "
        "pack's config allows.",
        applies_to=lambda resource_type: resource_type == SECURITY_GROUP_RULE,
        check=check_public_ingress,
        config={
            "allowedPublicIngressPorts": ConfigOption(
                schema={
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "default": [],
                    "description": "Ports (tcp/udp) that may accept ingress from anywhere.",
                },
                parse=_port_list,
            )
        },
    ),
    Rule(
        name="rdma-node-pool-label",
        description=f"RDMA node pools carry the label {RDMA_NODE_LABEL_KEY}={RDMA_NODE_LABEL_VALUE}.",
        applies_to=lambda resource_type: resource_type == NODE_POOL,
        check=check_rdma_node_pool_label,
        config={
            "nonRdmaNodePools": ConfigOption(
                schema={
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    # The program's untainted pool for CoreDNS and the add-ons (components/defaults.py
                    # SYSTEM_POOL_NAME); a stack that renames it lists the new name here.
                    "default": ["system"],
                    "description": "Node pools (resource or pool names) that hold no RDMA nodes.",
                },
                parse=_name_list,
            )
        },
    ),
    Rule(
        name="node-pool-buys-no-scc",
        description="Node pools buy no instance family ACK does not support (SCC); attaching owned ones is "
        "fine.",
        applies_to=lambda resource_type: resource_type == NODE_POOL,
        check=check_no_unsupported_purchase,
    ),
    Rule(
        name="no-privileged-containers",
        description="No container of any workload runs privileged.",
        applies_to=lambda resource_type: kubernetes_kind(resource_type) in _POD_SPEC_PATHS,
        check=check_no_privileged_containers,
    ),
    Rule(
        name="daemonset-drops-all-capabilities",
        description="Every container of a DaemonSet drops ALL capabilities.",
        applies_to=_is_kind("DaemonSet"),
        check=check_daemonset_drops_all,
    ),
    Rule(
        name="rdma-pod-capabilities",
        description=f"Pods requesting an {RDMA_RESOURCE_PREFIX}* resource add no capability but IPC_LOCK.",
        applies_to=lambda resource_type: kubernetes_kind(resource_type) in _POD_SPEC_PATHS,
        check=check_rdma_pod_capabilities,
    ),
    Rule(
        name="prod-cluster-deletion-protection",
        description="ACK clusters of protected stacks (default: prod) have deletion protection on.",
        applies_to=lambda resource_type: resource_type in ACK_CLUSTERS,
        check=check_cluster_deletion_protection,
        config={
            "protectedStacks": ConfigOption(
                schema={
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "default": ["prod"],
                    "description": "Stacks whose ACK clusters must have deletion protection.",
                },
                parse=_name_list,
            )
        },
    ),
)
RULES_BY_NAME: Mapping[str, Rule] = {rule.name: rule for rule in RULES}


def read_pack_config(config: Mapping[str, Mapping[str, Any] | None] | None) -> dict[str, dict[str, Any]]:
    """Every rule's config, defaults filled in, from ``{policy name: {key: value}}``."""
    given = dict(config or {})
    unknown = sorted(set(given) - set(RULES_BY_NAME))
    if unknown:
        raise PolicyConfigError(
            f"policy config names unknown policies {', '.join(unknown)}; "
            f"the pack's policies are: {', '.join(RULES_BY_NAME)}."
        )
    return {rule.name: rule.read_config(given.get(rule.name)) for rule in RULES}


def check_resource(rule: Rule, record: ResourceRecord, config: Mapping[str, Any]) -> list[Violation]:
    """One rule over one resource, ``config`` being the rule's parsed config."""
    if not rule.applies_to(record.type):
        return []
    context = RuleContext(resource_name=record.name, stack=record.stack, config=config)
    return [
        Violation(rule.name, record.type, record.name, message)
        for message in rule.check(record.type, record.props, context)
    ]


def evaluate(
    records: Iterable[ResourceRecord], config: Mapping[str, Mapping[str, Any] | None] | None = None
) -> Report:
    """Every rule over every record: the pack's verdict on a set of declared resources."""
    parsed = read_pack_config(config)
    violations: list[Violation] = []
    checked: Counter[str] = Counter({rule.name: 0 for rule in RULES})
    for record in records:
        for rule in RULES:
            if rule.applies_to(record.type):
                checked[rule.name] += 1
                violations.extend(check_resource(rule, record, parsed[rule.name]))
    return Report(violations=tuple(violations), checked=dict(checked))
