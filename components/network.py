"""Network: the VPC and the vSwitch the cluster and the RDMA nodes share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_alicloud as alicloud

from components import defaults
from components.resource_options import child_options


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
    """Zone of the vSwitch; ``None`` picks the first zone that sells ``zone_instance_type``."""
    zone_instance_type: str = defaults.INSTANCE_TYPES[0]
    """Instance type the picked zone must offer (the RDMA pool's first choice)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every resource."""


def first_zone(zone_ids: list[str], instance_type: str) -> str:
    """The zone to use, or a clear error when the region sells none with that instance type."""
    if not zone_ids:
        raise pulumi.RunError(
            f"No zone of this region offers instance type {instance_type} for a vSwitch: set "
            "ack-rdma:zoneId to a zone that sells it, or put an instance type sold in this region first "
            "in ack-rdma:instanceTypes."
        )
    return zone_ids[0]


class Network(pulumi.ComponentResource):
    """A VPC with one vSwitch in a zone where SCC capacity exists."""

    vpc_id: pulumi.Output[str]
    vswitch_id: pulumi.Output[str]
    zone_id: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ack-rdma:network:Network", name, None, opts)
        options = child_options(self, defaults.NETWORK_TIMEOUTS)
        if args.zone_id is not None:
            zone_id: pulumi.Output[str] = pulumi.Output.from_input(args.zone_id)
        else:
            # Only available_instance_type filters here: the provider ignores available_resource_creation
            # "VSwitch" (data_source_alicloud_zones.go has no branch for it).
            zones = alicloud.get_zones_output(
                available_instance_type=args.zone_instance_type,
                opts=pulumi.InvokeOutputOptions(parent=self),
            )
            zone_id = zones.zones.apply(
                lambda found: first_zone([zone.id for zone in found], args.zone_instance_type)
            )
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
