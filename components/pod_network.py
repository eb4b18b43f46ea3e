"""PodVswitches: the vSwitches Terway takes pod addresses from, in the zone of the nodes' vSwitch.

Terway gives each pod an address of a pod vSwitch of the node's zone (ACK doc "Work with Terway"); with
Flannel pods live in the cluster's pod CIDR and need none of these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_alicloud as alicloud

from components import defaults
from components.resource_options import child_options


@dataclass(frozen=True, kw_only=True)
class PodVswitchesArgs:
    """Address ranges of the pod vSwitches."""

    name_prefix: str = defaults.NAME_PREFIX
    cidrs: tuple[str, ...]
    """Ranges inside the VPC, apart from the nodes' vSwitch; pods take addresses from them."""
    tags: Mapping[str, str] = field(default_factory=dict)


class PodVswitches(pulumi.ComponentResource):
    """One vSwitch per range, all in the zone of the nodes."""

    vswitch_ids: list[pulumi.Output[str]]

    def __init__(
        self,
        name: str,
        args: PodVswitchesArgs,
        *,
        vpc_id: pulumi.Input[str],
        zone_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ack-rdma:pod_network:PodVswitches", name, None, opts)
        options = child_options(self, defaults.NETWORK_TIMEOUTS)
        self.vswitch_ids = [
            alicloud.vpc.Switch(
                f"{name}-{index}",
                vswitch_name=f"{args.name_prefix}-pods-{index}",
                vpc_id=vpc_id,
                cidr_block=cidr,
                zone_id=zone_id,
                tags=dict(args.tags),
                opts=options,
            ).id
            for index, cidr in enumerate(args.cidrs)
        ]
        self.register_outputs({"vswitchIds": self.vswitch_ids})
