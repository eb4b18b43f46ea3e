"""ClusterSecurityGroup: one group shared by the control plane and the RDMA nodes, as in the walkthrough.

ACK adds no rule to a security group it is given ("Configure and manage cluster security groups": with an
existing group "no additional access rules are configured"), so the group carries the inbound rules that page
recommends itself: all protocols from the group and from the pod address range (Flannel routes pod traffic
between nodes with pod source addresses, which the group-to-group rule does not match), and ICMP. ACK
recommends ICMP from 0.0.0.0/0; here it comes from the VPC and the pods only, as nothing is open to the
internet unless a user lists it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_alicloud as alicloud

from components import defaults
from components.resource_options import child_options

SSH_PORT = 22
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True, kw_only=True)
class ClusterSecurityGroupArgs:
    """Who may reach the cluster from outside the group. Nobody, unless listed."""

    name_prefix: str = defaults.NAME_PREFIX
    """Prefix of every cloud-side name."""
    vpc_cidr: str = defaults.VPC_CIDR
    """The VPC's range: ICMP from it (path MTU discovery, health checks of VPC load balancers)."""
    pod_cidrs: tuple[str, ...] = (defaults.POD_CIDR,)
    """Where pod traffic comes from: Flannel's pod CIDR, or the pod vSwitches' ranges with Terway."""
    ssh_cidrs: tuple[str, ...] = ()
    """CIDRs allowed to SSH (tcp/22) into the nodes."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on the group."""


@dataclass(frozen=True)
class RuleSpec:
    """One security-group rule, before it becomes a resource."""

    role: str
    type: str
    ip_protocol: str
    port_range: str
    description: str
    cidr_ip: str | None = None
    from_group: bool = False


def rule_specs(args: ClusterSecurityGroupArgs) -> list[RuleSpec]:
    """The group's rules: members and pods talk freely, ICMP from the VPC, egress open, and other ingress only
    from the listed CIDRs."""
    rules = [
        # RoCEv2 (UDP 4791), pod and node traffic between the control plane and the RDMA nodes.
        RuleSpec("members", "ingress", "all", "-1/-1", "all traffic between members", from_group=True),
        RuleSpec("egress", "egress", "all", "-1/-1", "all outbound traffic", cidr_ip=ANYWHERE),
        RuleSpec(
            "icmp-vpc",
            "ingress",
            "icmp",
            "-1/-1",
            f"icmp from the vpc {args.vpc_cidr}",
            cidr_ip=args.vpc_cidr,
        ),
    ]
    # CoreDNS on another node, perftest's TCP exchange between the test pods: pod source addresses.
    rules.extend(
        RuleSpec(f"pods-{index}", "ingress", "all", "-1/-1", f"all traffic from pods {cidr}", cidr_ip=cidr)
        for index, cidr in enumerate(args.pod_cidrs)
    )
    # The API server is not on any member: its CLB listener's ACL guards it (ApiServerAccess).
    rules.extend(
        RuleSpec(f"ssh-{index}", "ingress", "tcp", f"{SSH_PORT}/{SSH_PORT}", f"ssh from {cidr}", cidr_ip=cidr)
        for index, cidr in enumerate(args.ssh_cidrs)
    )
    return rules


class ClusterSecurityGroup(pulumi.ComponentResource):
    """A VPC security group with member-to-member traffic open and no ingress from outside by default."""

    security_group_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: ClusterSecurityGroupArgs,
        *,
        vpc_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ack-rdma:security:ClusterSecurityGroup", name, None, opts)
        options = child_options(self, defaults.NETWORK_TIMEOUTS)
        group = alicloud.ecs.SecurityGroup(
            f"{name}-sg",
            security_group_name=f"{args.name_prefix}-sg",
            vpc_id=vpc_id,
            security_group_type="normal",
            description="ack-rdma: control plane and RDMA nodes",
            tags=dict(args.tags),
            opts=options,
        )
        for rule in rule_specs(args):
            alicloud.ecs.SecurityGroupRule(
                f"{name}-{rule.role}",
                security_group_id=group.id,
                type=rule.type,
                ip_protocol=rule.ip_protocol,
                port_range=rule.port_range,
                nic_type="intranet",
                policy="accept",
                cidr_ip=rule.cidr_ip,
                source_security_group_id=group.id if rule.from_group else None,
                description=rule.description,
                opts=options,
            )
        self.security_group_id = group.id
        self.register_outputs({"securityGroupId": self.security_group_id})
