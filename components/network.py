"""Network: the VPC and the vSwitch the cluster and the RDMA nodes share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_alicloud as alicloud

from components import defaults
from components.resource_options import child_options

# alicloud_zones filters on available_instance_type and available_disk_category only (its
# available_resource_creation has no VSwitch branch), and its available_disk_category validator takes just
# these values (data_source_alicloud_zones.go line 76; offline_engine/provider_constraints.yaml): no
# cloud_auto.
ZONE_FILTER_DISK_CATEGORIES = (
    "all",
    "cloud",
    "ephemeral_ssd",
    "cloud_essd",
    "cloud_efficiency",
    "cloud_ssd",
    "local_disk",
)


SHOWN_NEEDS = 6
"""Most instance types an error lists with their zones (the message does not grow with the config)."""


@dataclass(frozen=True)
class ZoneNeed:
    """An instance type a pool buys, with the system disk category it buys it with."""

    instance_type: str
    disk_category: str | None = None

    @property
    def label(self) -> str:
        return f"{self.instance_type} with {self.disk_category}" if self.disk_category else self.instance_type

    @property
    def filter_disk(self) -> str | None:
        """The disk category the zones data source can filter on (cloud_auto it cannot)."""
        return self.disk_category if self.disk_category in ZONE_FILTER_DISK_CATEGORIES else None


@dataclass(frozen=True, kw_only=True)
class NetworkArgs:
    """Address plan and placement of the network."""

    name_prefix: str = defaults.NAME_PREFIX
    """Prefix of every cloud-side name."""
    vpc_cidr: str = defaults.VPC_CIDR
    """The VPC's address range."""
    vswitch_cidr: str = defaults.VSWITCH_CIDR
    """The vSwitch's address range, inside ``vpc_cidr``."""
    zone_id: str | None = None
    """Zone of the vSwitch; ``None`` picks the first zone that meets every one of ``zone_needs``."""
    zone_needs: tuple[ZoneNeed, ...] = tuple(
        ZoneNeed(name, defaults.SYSTEM_DISK_CATEGORY)
        for name in (*defaults.INSTANCE_TYPES, *defaults.SYSTEM_POOL_INSTANCE_TYPES)
    )
    """What every node pool buys: each instance type with its pool's system disk must exist in the zone (the
    pools share the one vSwitch)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every resource."""


def common_zone(zones_by_need: Mapping[str, Sequence[str]]) -> str:
    """The first zone (in the order the region lists them for the first need) that meets every need, or a
    clear error naming where each need is met."""
    if not zones_by_need:
        raise pulumi.RunError(
            "No instance type given to place the vSwitch by: list the pools' instance types."
        )
    first, *rest = zones_by_need
    for zone in zones_by_need[first]:
        if all(zone in zones_by_need[label] for label in rest):
            return zone
    shown = list(zones_by_need.items())[:SHOWN_NEEDS]
    where = "; ".join(f"{label}: {', '.join(zones[:8]) or 'no zone'}" for label, zones in shown)
    if len(zones_by_need) > SHOWN_NEEDS:
        where += f"; and {len(zones_by_need) - SHOWN_NEEDS} more"
    raise pulumi.RunError(
        f"No zone of this region sells all of the node pools' instance types ({where}). Set ack-rdma:zoneId "
        "to a zone that sells them and drop the types it lacks, or list types sold in one common zone."
    )


class Network(pulumi.ComponentResource):
    """A VPC with one vSwitch in a zone that sells every node pool's instance types."""

    vpc_id: pulumi.Output[str]
    vswitch_id: pulumi.Output[str]
    zone_id: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ack-rdma:network:Network", name, None, opts)
        options = child_options(self, defaults.NETWORK_TIMEOUTS)
        if args.zone_id is not None:
            zone_id: pulumi.Output[str] = pulumi.Output.from_input(args.zone_id)
        else:
            lookups = {
                need.label: alicloud.get_zones_output(
                    available_instance_type=need.instance_type,
                    available_disk_category=need.filter_disk,
                    opts=pulumi.InvokeOutputOptions(parent=self),
                ).ids
                for need in dict.fromkeys(args.zone_needs)
            }
            zone_id = pulumi.Output.all(**lookups).apply(common_zone)
        vpc = alicloud.vpc.Network(
            f"{name}-vpc",
            vpc_name=f"{args.name_prefix}-vpc",
            cidr_block=args.vpc_cidr,
            description="ack-rdma: ACK cluster and RDMA nodes",
            tags=dict(args.tags),
            opts=options,
        )
        vswitch = alicloud.vpc.Switch(
            f"{name}-vswitch",
            vswitch_name=f"{args.name_prefix}-vswitch",
            vpc_id=vpc.id,
            cidr_block=args.vswitch_cidr,
            zone_id=zone_id,
            tags=dict(args.tags),
            opts=options,
        )
        self.vpc_id = vpc.id
        self.vswitch_id = vswitch.id
        self.zone_id = vswitch.zone_id
        self.register_outputs({"vpcId": self.vpc_id, "vswitchId": self.vswitch_id, "zoneId": self.zone_id})
