"""ClusterSecurityGroup: one group shared by the control plane and the RDMA nodes, as in the walkthrough."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_alicloud as alicloud

from components import defaults
from components.resource_options import child_options

SSH_PORT = 22
API_SERVER_PORT = 6443
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True, kw_only=True)
class ClusterSecurityGroupArgs:
    """Who may reach the cluster from outside the group. Nobody, unless listed."""

    name_prefix: str = defaults.NAME_PREFIX
    """Prefix of every cloud-side name."""
    ssh_cidrs: tuple[str, ...] = ()
    """CIDRs allowed to SSH (tcp/22) into the nodes."""
    api_server_cidrs: tuple[str, ...] = ()
    """CIDRs allowed to reach the API server port (tcp/6443) on members of the group."""
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
    """The group's rules: members talk freely, egress is open, ingress only from the listed CIDRs."""
    rules = [
        # RoCEv2 (UDP 4791), pod and node traffic between the control plane and the RDMA nodes.
        RuleSpec("members", "ingress", "all", "-1/-1", "all traffic between members", from_group=True),
        RuleSpec("egress", "egress", "all", "-1/-1", "all outbound traffic", cidr_ip=ANYWHERE),
    ]
    for port, label, cidrs in (
        (SSH_PORT, "ssh", args.ssh_cidrs),
        (API_SERVER_PORT, "apiserver", args.api_server_cidrs),
    ):
        rules.extend(
            RuleSpec(
                f"{label}-{index}", "ingress", "tcp", f"{port}/{port}", f"{label} from {cidr}", cidr_ip=cidr
            )
            for index, cidr in enumerate(cidrs)
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
