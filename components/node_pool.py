"""RdmaNodePool: eRDMA-capable workers that carry the RDMA label the device plugin and test pods select, and
SystemNodePool: the untainted pool the cluster's own add-ons run on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_alicloud as alicloud

from components import defaults
from components.instance_catalogue import SCC_SOURCE, unsupported_by_ack
from components.k8s_objects import RDMA_NODE_LABEL_KEY, RDMA_NODE_LABEL_VALUE
from components.network import ZoneNeed
from components.resource_options import child_options

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# containerd_config.limit_mem_lock: ValidateNullableIntBetween(65536, 9007199254740991)
# (resource_alicloud_cs_kubernetes_node_pool.go line 505, offline_engine/provider_constraints.yaml).
MEMLOCK_RANGE = (65536, 9007199254740991)


@dataclass(frozen=True)
class Taint:
    """A node taint; every RDMA workload of this program then carries the matching toleration."""

    key: str
    effect: str
    value: str = ""

    def as_input(self) -> alicloud.cs.NodePoolTaintArgs:
        return alicloud.cs.NodePoolTaintArgs(key=self.key, value=self.value, effect=self.effect)

    def toleration(self) -> dict[str, str]:
        if self.value:
            return {"key": self.key, "operator": "Equal", "value": self.value, "effect": self.effect}
        return {"key": self.key, "operator": "Exists", "effect": self.effect}


@dataclass(frozen=True, kw_only=True)
class RdmaNodePoolArgs:
    """One pool of RDMA nodes: new instances bought in priority order, or existing ECS attached."""

    name: str = defaults.NODE_POOL_NAME
    """Pool name, unique in the cluster."""
    instance_types: tuple[str, ...] = defaults.INSTANCE_TYPES
    """Instance types in purchase priority (kept in this order)."""
    desired_size: int = defaults.DESIRED_SIZE
    """Number of new instances (ignored when ``existing_instances`` attaches instances instead)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra node labels; the RDMA label is always added."""
    taint: Taint | None = None
    """Optional taint keeping other workloads off these nodes."""
    deployment_set: bool = defaults.DEPLOYMENT_SET
    """Place the instances in a ``LowLatency`` deployment set (close together on the fabric)."""
    existing_instances: tuple[str, ...] = ()
    """ECS instance ids to attach (the walkthrough's "add existing ECS"); disks are kept, names too."""
    system_disk_category: str = defaults.SYSTEM_DISK_CATEGORY
    """System disk category."""
    system_disk_size: int = defaults.SYSTEM_DISK_SIZE_GIB
    """System disk size in GiB."""
    memlock_limit: int = defaults.RDMA_MEMLOCK_LIMIT
    """containerd's memlock limit (bytes) for the pods on these nodes."""

    @property
    def node_count(self) -> int:
        return len(self.existing_instances) if self.existing_instances else self.desired_size


@dataclass(frozen=True)
class NodeLogin:
    """How to log in to the nodes: an ECS key pair or a (secret) password, exactly one."""

    key_name: str | None = None
    password: pulumi.Input[str] | None = None


def node_labels(extra: Mapping[str, str]) -> list[dict[str, str]]:
    """The pool's labels, sorted so that a reordering in config never shows as a diff."""
    labels = {**extra, RDMA_NODE_LABEL_KEY: RDMA_NODE_LABEL_VALUE}
    return [{"key": key, "value": labels[key]} for key in sorted(labels)]


def attach_warning(args: RdmaNodePoolArgs) -> str:
    """What the plan says when a pool adopts ECS instances instead of buying them."""
    scc = [name for name in args.instance_types if unsupported_by_ack(name)]
    family = f" ({', '.join(scc)})" if scc else ""
    return (
        f"Node pool {args.name!r} attaches {len(args.existing_instances)} existing ECS instance(s) instead "
        f"of buying eRDMA nodes. ACK no longer supports the walkthrough's SCC family{family} as worker nodes "
        f"({SCC_SOURCE}): attach such instances at your own risk; new RDMA capacity comes from eRDMA types."
    )


def zone_needs(
    rdma_pools: Sequence[RdmaNodePoolArgs], system_pool: SystemNodePoolArgs | None
) -> tuple[ZoneNeed, ...]:
    """Every instance type the pools buy, with its disk: the vSwitch's zone must offer all of them. Pools
    that attach existing instances buy nothing."""
    buying: list[RdmaNodePoolArgs | SystemNodePoolArgs] = [p for p in rdma_pools if not p.existing_instances]
    if system_pool is not None:
        buying.append(system_pool)
    needs = (ZoneNeed(name, pool.system_disk_category) for pool in buying for name in pool.instance_types)
    return tuple(dict.fromkeys(needs))


def containerd_config(memlock_limit: int) -> alicloud.cs.NodePoolContainerdConfigArgs:
    """containerd's memlock limit as the provider takes it: a canonical decimal string (no "infinity")."""
    if not MEMLOCK_RANGE[0] <= memlock_limit <= MEMLOCK_RANGE[1]:
        raise ValueError(f"memlock limit {memlock_limit} is outside {MEMLOCK_RANGE[0]}..{MEMLOCK_RANGE[1]}")
    return alicloud.cs.NodePoolContainerdConfigArgs(limit_mem_lock=str(memlock_limit))


@dataclass(frozen=True, kw_only=True)
class SystemNodePoolArgs:
    """The small untainted pool that CoreDNS and the add-ons always fit on."""

    name: str = defaults.SYSTEM_POOL_NAME
    """Pool name, unique in the cluster."""
    instance_types: tuple[str, ...] = defaults.SYSTEM_POOL_INSTANCE_TYPES
    """Instance types in purchase priority."""
    desired_size: int = defaults.SYSTEM_POOL_SIZE
    """Number of nodes."""
    system_disk_category: str = defaults.SYSTEM_DISK_CATEGORY
    """System disk category."""
    system_disk_size: int = defaults.SYSTEM_POOL_DISK_SIZE_GIB
    """System disk size in GiB."""


@dataclass(frozen=True)
class PoolPlacement:
    """Where every pool of the cluster lives and how its nodes are reached."""

    cluster_id: pulumi.Input[str]
    vswitch_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    login: NodeLogin
    name_prefix: str = defaults.NAME_PREFIX
    tags: Mapping[str, str] = field(default_factory=dict)


def _declare_pool(
    name: str,
    parent: pulumi.Resource,
    placement: PoolPlacement,
    *,
    pool_name: str,
    instance_types: Sequence[str],
    system_disk_category: str,
    system_disk_size: int,
    **specific: Any,
) -> alicloud.cs.NodePool:
    """A ``cs.NodePool`` with what every pool of this program shares; ``specific`` adds the pool's own."""
    return alicloud.cs.NodePool(
        name,
        cluster_id=placement.cluster_id,
        node_pool_name=pool_name,
        vswitch_ids=list(placement.vswitch_ids),
        instance_types=list(instance_types),
        security_group_ids=[placement.security_group_id],
        key_name=placement.login.key_name,
        password=placement.login.password,
        instance_charge_type="PostPaid",
        system_disk_category=system_disk_category,
        system_disk_size=system_disk_size,
        tags=dict(placement.tags),
        # The pool name must be free before a replacement can be created (provider issue #6502).
        opts=child_options(parent, defaults.NODE_POOL_TIMEOUTS, delete_before_replace=True),
        **specific,
    )


class RdmaNodePool(pulumi.ComponentResource):
    """An ACK node pool of RDMA-capable instances in the shared security group."""

    node_pool_id: pulumi.Output[str]
    labels: list[dict[str, str]]

    def __init__(
        self,
        name: str,
        args: RdmaNodePoolArgs,
        placement: PoolPlacement,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ack-rdma:node_pool:RdmaNodePool", name, None, opts)
        deployment_set_id: pulumi.Output[str] | None = None
        if args.deployment_set:
            deployment_set = alicloud.ecs.EcsDeploymentSet(
                f"{name}-deployment-set",
                deployment_set_name=f"{placement.name_prefix}-{args.name}",
                strategy="LowLatency",
                description="ack-rdma: RDMA nodes close together on the fabric",
                opts=child_options(self, defaults.NETWORK_TIMEOUTS),
            )
            deployment_set_id = deployment_set.id
        self.labels = node_labels(args.labels)
        attach = bool(args.existing_instances)
        if attach:
            pulumi.log.warn(attach_warning(args), resource=self)
        pool = _declare_pool(
            f"{name}-pool",
            self,
            placement,
            pool_name=args.name,
            instance_types=args.instance_types,
            system_disk_category=args.system_disk_category,
            system_disk_size=args.system_disk_size,
            # desired_size and instances are exclusive: a pool either buys instances or adopts them.
            desired_size=None if attach else str(args.desired_size),
            instances=list(args.existing_instances) if attach else None,
            format_disk=False if attach else None,
            keep_instance_name=True if attach else None,
            labels=[
                alicloud.cs.NodePoolLabelArgs(key=label["key"], value=label["value"]) for label in self.labels
            ],
            taints=[args.taint.as_input()] if args.taint else None,
            deployment_set_id=deployment_set_id,
            # Pods get containerd's memlock limit, 64 KiB unless RDMA devices exist at node init, and eRDMA
            # devices come after Ready. The provider applies this through node_config right after creating
            # the pool and waits for it, before anything that depends on the pool is created. The RDMA pods
            # also carry IPC_LOCK, which lets the kernel pin verbs memory past the limit.
            containerd_config=containerd_config(args.memlock_limit),
        )
        self.node_pool_id = pool.node_pool_id
        self.register_outputs({"nodePoolId": self.node_pool_id, "labels": self.labels})


class SystemNodePool(pulumi.ComponentResource):
    """An untainted pool without the RDMA label, so a tainted RDMA pool never leaves the add-ons Pending."""

    node_pool_id: pulumi.Output[str]
    pool: alicloud.cs.NodePool

    def __init__(
        self,
        name: str,
        args: SystemNodePoolArgs,
        placement: PoolPlacement,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ack-rdma:node_pool:SystemNodePool", name, None, opts)
        self.pool = _declare_pool(
            f"{name}-pool",
            self,
            placement,
            pool_name=args.name,
            instance_types=args.instance_types,
            system_disk_category=args.system_disk_category,
            system_disk_size=args.system_disk_size,
            desired_size=str(args.desired_size),
        )
        self.node_pool_id = self.pool.node_pool_id
        self.register_outputs({"nodePoolId": self.node_pool_id})
