"""RdmaNodePool: SCC bare-metal workers that carry the RDMA label the device plugin and test pods select."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_alicloud as alicloud

from components import defaults
from components.k8s_objects import RDMA_NODE_LABEL_KEY, RDMA_NODE_LABEL_VALUE
from components.resource_options import child_options

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


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


MEMLOCK_SCRIPT = """#!/bin/bash
# Containers inherit containerd's memlock limit (64 KiB by default); RDMA memory registration pins far more,
# and IPC_LOCK in the pod does not lift the limit. Raise it at the node, then restart containerd.
set -euo pipefail
mkdir -p /etc/systemd/system/containerd.service.d
cat > /etc/systemd/system/containerd.service.d/90-rdma-memlock.conf <<'UNIT'
[Service]
LimitMEMLOCK=infinity
UNIT
systemctl daemon-reload
systemctl restart containerd
"""


def memlock_user_data() -> str:
    """Node user data (base64, as ACK expects) that lifts the container memlock limit."""
    return base64.b64encode(MEMLOCK_SCRIPT.encode()).decode()


class RdmaNodePool(pulumi.ComponentResource):
    """An ACK node pool of RDMA-capable instances in the shared security group."""

    node_pool_id: pulumi.Output[str]
    labels: list[dict[str, str]]

    def __init__(
        self,
        name: str,
        args: RdmaNodePoolArgs,
        *,
        cluster_id: pulumi.Input[str],
        vswitch_ids: Sequence[pulumi.Input[str]],
        security_group_id: pulumi.Input[str],
        login: NodeLogin,
        name_prefix: str = defaults.NAME_PREFIX,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ack-rdma:node_pool:RdmaNodePool", name, None, opts)
        deployment_set_id: pulumi.Output[str] | None = None
        if args.deployment_set:
            deployment_set = alicloud.ecs.EcsDeploymentSet(
                f"{name}-deployment-set",
                deployment_set_name=f"{name_prefix}-{args.name}",
                strategy="LowLatency",
                description="ack-rdma: RDMA nodes close together on the fabric",
                opts=child_options(self, defaults.NETWORK_TIMEOUTS),
            )
            deployment_set_id = deployment_set.id
        self.labels = node_labels(args.labels)
        attach = bool(args.existing_instances)
        pool = alicloud.cs.NodePool(
            f"{name}-pool",
            cluster_id=cluster_id,
            node_pool_name=args.name,
            vswitch_ids=list(vswitch_ids),
            instance_types=list(args.instance_types),
            # desired_size and instances are exclusive: a pool either buys instances or adopts them.
            desired_size=None if attach else str(args.desired_size),
            instances=list(args.existing_instances) if attach else None,
            format_disk=False if attach else None,
            keep_instance_name=True if attach else None,
            security_group_ids=[security_group_id],
            key_name=login.key_name,
            password=login.password,
            labels=[
                alicloud.cs.NodePoolLabelArgs(key=label["key"], value=label["value"]) for label in self.labels
            ],
            taints=[args.taint.as_input()] if args.taint else None,
            deployment_set_id=deployment_set_id,
            instance_charge_type="PostPaid",
            system_disk_category=args.system_disk_category,
            system_disk_size=args.system_disk_size,
            user_data=memlock_user_data(),
            tags=dict(tags or {}),
            # The pool name must be free before a replacement can be created (provider issue #6502).
            opts=child_options(self, defaults.NODE_POOL_TIMEOUTS, delete_before_replace=True),
        )
        self.node_pool_id = pool.node_pool_id
        self.register_outputs({"nodePoolId": self.node_pool_id, "labels": self.labels})
