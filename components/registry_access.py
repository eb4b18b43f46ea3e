"""RegistryAccess: the network paths and the pull credentials an ACR Enterprise Edition instance needs.

A new Enterprise Edition instance is reachable from no network (ACR doc "Configure access over a VPC" /
"Configure access over the internet": only 127.0.0.1/32 by default). The nodes pull through the instance's VPC
endpoint, ``<instance>-registry-vpc.<region>.cr.aliyuncs.com``, once the cluster's VPC is linked to it (with
a PrivateZone record, so the host resolves in the VPC); the machine that runs ``pulumi up`` pushes through the
internet endpoint, opened for the CIDRs listed in config only. ``managed-aliyun-acr-credential-helper`` gets a
config naming the instance, the VPC host and the service accounts that pull (keys as in the ACR doc "Use the
passwordless component to pull images": ``AcrInstanceInfo`` with ``instanceId``/``regionId``/``domains``,
``watchNamespace``, ``serviceAccount``). It is a ``cs.KubernetesAddon``, not an entry of the cluster's
create-time ``addons`` (which ACK ignores after creation), so its config can change later.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pulumi
import pulumi_alicloud as alicloud

from components import defaults
from components.resource_options import child_options

CREDENTIAL_HELPER_ADDON = "managed-aliyun-acr-credential-helper"
_PUBLIC_HOST = re.compile(
    r"^(?P<instance>[a-z0-9][a-z0-9-]*)-registry\.(?P<region>[a-z0-9-]+)\.cr\.aliyuncs\.com$"
)


def vpc_registry_host(public_host: str) -> str | None:
    """``<instance>-registry-vpc.<region>.cr.aliyuncs.com`` for an instance's public host; None for a host of
    another form (a custom domain), whose VPC host cannot be derived."""
    match = _PUBLIC_HOST.match(public_host)
    if match is None:
        return None
    return f"{match['instance']}-registry-vpc.{match['region']}.cr.aliyuncs.com"


@dataclass(frozen=True, kw_only=True)
class RegistryAccessArgs:
    """The instance, who pushes from outside, and who pulls inside the cluster."""

    instance_id: str
    """The Enterprise Edition instance (``cri-...``)."""
    region: str
    """The instance's region (the cluster's)."""
    pull_host: str
    """The instance's VPC host, which the nodes pull from."""
    push_cidrs: tuple[str, ...] = ()
    """CIDRs allowed to push over the internet endpoint. Empty: the program leaves that endpoint alone."""
    pull_namespaces: tuple[str, ...]
    """Namespaces whose pods pull the images."""
    pull_service_accounts: tuple[str, ...]
    """The service accounts those pods run as: only these get the helper's pull secret."""


def credential_helper_config(args: RegistryAccessArgs) -> str:
    """The credential helper's config: this instance through its VPC host, for exactly the pulling service
    accounts. Named accounts rather than ``*``: the ACR doc warns against the helper touching the service
    accounts of system namespaces such as kube-system, where the device plugin runs."""
    return json.dumps(
        {
            "AcrInstanceInfo": [
                {"instanceId": args.instance_id, "regionId": args.region, "domains": args.pull_host}
            ],
            "watchNamespace": ",".join(args.pull_namespaces),
            "serviceAccount": ",".join(args.pull_service_accounts),
        }
    )


def no_push_endpoint_warning(instance_id: str) -> str:
    return (
        f"The internet endpoint of ACR instance {instance_id} is left as it is "
        "(ack-rdma:registryPushCidrs is empty): a new instance accepts pushes over it from nowhere but "
        "127.0.0.1/32, so `pulumi up` pushes the images only if it runs inside the linked VPC or the "
        "endpoint was opened for it elsewhere. List the egress CIDRs of the machines that run `pulumi up` "
        "(the deploy workflow's runner included) in ack-rdma:registryPushCidrs."
    )


class RegistryAccess(pulumi.ComponentResource):
    """VPC link, internet endpoint ACL (when push CIDRs are listed) and the configured credential helper."""

    pull_host: str
    push_access: list[pulumi.Resource]
    """What a push must wait for (the internet endpoint, when the program opens it)."""

    def __init__(
        self,
        name: str,
        args: RegistryAccessArgs,
        *,
        vpc_id: pulumi.Input[str],
        vswitch_id: pulumi.Input[str],
        cluster_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ack-rdma:registry_access:RegistryAccess", name, None, opts)
        options = child_options(self, defaults.NETWORK_TIMEOUTS)
        alicloud.cr.VpcEndpointLinkedVpc(
            f"{name}-vpc-link",
            instance_id=args.instance_id,
            vpc_id=vpc_id,
            vswitch_id=vswitch_id,
            module_name="Registry",
            # Without the PrivateZone record the VPC host does not resolve inside the VPC.
            enable_create_dns_record_in_pvzt=True,
            opts=options,
        )
        self.push_access = []
        if args.push_cidrs:
            self.push_access.append(
                alicloud.cr.InternetEndpoint(
                    f"{name}-internet",
                    instance_id=args.instance_id,
                    entries=[
                        alicloud.cr.InternetEndpointEntryArgs(entry=cidr, comment="ack-rdma push")
                        for cidr in args.push_cidrs
                    ],
                    opts=options,
                )
            )
        else:
            pulumi.log.warn(no_push_endpoint_warning(args.instance_id), resource=self)
        alicloud.cs.KubernetesAddon(
            f"{name}-credential-helper",
            cluster_id=cluster_id,
            name=CREDENTIAL_HELPER_ADDON,
            config=credential_helper_config(args),
            opts=child_options(self, defaults.ADDON_TIMEOUTS),
        )
        self.pull_host = args.pull_host
        self.register_outputs({"pullHost": self.pull_host})
