"""ApiServerAccess: who reaches the cluster's API server, through the ACL of its CLB listener on 6443.

Node security groups do not guard the API server: ACK serves it through a CLB of its own, internal endpoint
and public one (an EIP on the same CLB) alike, and access to it is controlled by an ACL on that CLB's 6443
listener (ACK doc "Configure access control policies for the API server"). So: with CIDRs listed in config
the API server gets a public endpoint whose listener whitelists exactly them plus what the cluster itself
needs; with none listed it gets no public endpoint at all (``slb_internet_enabled=False``; ``AckCluster``
warns what that means for ``pulumi up`` from outside the VPC) and this component is not declared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_alicloud as alicloud

from components import defaults
from components.listener_acl import ListenerAcl
from components.resource_options import child_options

API_SERVER_PORT = 6443
# ACK's control plane reaches the API server's CLB from this range; a whitelist without it breaks the cluster
# (ACK doc "Configure access control policies for the API server").
ACK_CONTROL_PLANE_CIDR = "100.104.0.0/16"


@dataclass(frozen=True, kw_only=True)
class ApiServerAccessArgs:
    """Who may reach the API server. Nobody from outside the VPC, unless listed."""

    name_prefix: str = defaults.NAME_PREFIX
    region: str
    """Region of the cluster (the SLB API is called there)."""
    allowed_cidrs: tuple[str, ...]
    """CIDRs outside the VPC allowed to reach the API server (the stack declares this component only when
    there are some: without them the cluster gets no public endpoint, see ``AckCluster``)."""
    vpc_cidr: str = defaults.VPC_CIDR
    """The nodes' VPC: kubelets and the internal endpoint's clients."""
    pod_cidrs: tuple[str, ...] = (defaults.POD_CIDR,)
    """Pod ranges: pods reaching the API server through the CLB keep their pod address."""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WhitelistEntry:
    cidr: str
    comment: str


def whitelist(args: ApiServerAccessArgs) -> list[WhitelistEntry]:
    """The listener's whitelist: ACK's control plane, the VPC, the pods, then the listed CIDRs; each once."""
    entries = [
        WhitelistEntry(ACK_CONTROL_PLANE_CIDR, "ack-control-plane"),
        WhitelistEntry(args.vpc_cidr, "vpc"),
    ]
    entries += [WhitelistEntry(cidr, "pods") for cidr in args.pod_cidrs]
    entries += [WhitelistEntry(cidr, "listed-in-config") for cidr in args.allowed_cidrs]
    unique: dict[str, WhitelistEntry] = {}
    for entry in entries:
        unique.setdefault(entry.cidr, entry)
    return list(unique.values())


class ApiServerAccess(pulumi.ComponentResource):
    """The whitelist ACL and its binding to the API server's listener."""

    acl_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: ApiServerAccessArgs,
        *,
        load_balancer_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ack-rdma:api_server_access:ApiServerAccess", name, None, opts)
        options = child_options(self, defaults.NETWORK_TIMEOUTS)
        acl = alicloud.slb.Acl(
            f"{name}-acl",
            name=f"{args.name_prefix}-apiserver",
            ip_version="ipv4",
            tags=dict(args.tags),
            opts=options,
        )
        entries = [
            alicloud.slb.AclEntryAttachment(
                f"{name}-entry-{index}", acl_id=acl.id, entry=entry.cidr, comment=entry.comment, opts=options
            )
            for index, entry in enumerate(whitelist(args))
        ]
        # Bound only once it has its entries: a whitelist with no entries lets every request through.
        ListenerAcl(
            f"{name}-listener",
            region=args.region,
            load_balancer_id=load_balancer_id,
            listener_port=API_SERVER_PORT,
            acl_id=acl.id,
            opts=child_options(self, defaults.NETWORK_TIMEOUTS, depends_on=entries),
        )
        self.acl_id = acl.id
        self.register_outputs({"aclId": self.acl_id})
