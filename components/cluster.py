"""AckCluster: the managed ACK cluster, its kubeconfig and the Kubernetes provider every object uses."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_alicloud as alicloud
import pulumi_kubernetes as k8s
import yaml
from pulumi.output import UNKNOWN

from components import defaults
from components.resource_options import child_options


@dataclass(frozen=True)
class AddonSpec:
    """An ACK addon installed when the cluster is created (ACK ignores later changes to this list)."""

    name: str
    config: str | None = None
    version: str | None = None
    disabled: bool = False

    def as_input(self) -> alicloud.cs.ManagedKubernetesAddonArgs:
        return alicloud.cs.ManagedKubernetesAddonArgs(
            name=self.name, config=self.config, version=self.version, disabled=self.disabled
        )


@dataclass(frozen=True, kw_only=True)
class AckClusterArgs:
    """Shape of the managed cluster; workers come from node pools only."""

    name_prefix: str = defaults.NAME_PREFIX
    """Prefix of every cloud-side name."""
    cluster_spec: str = defaults.CLUSTER_SPEC
    """ACK edition: ``ack.pro.small`` or ``ack.standard``."""
    kubernetes_version: str | None = None
    """Kubernetes version; ``None`` takes the newest ACK offers when the cluster is created."""
    network_plugin: str = defaults.NETWORK_PLUGIN
    """``flannel`` (pods from ``pod_cidr``) or ``terway`` (pods from the pod vSwitches, NetworkPolicy on)."""
    pod_cidr: str = defaults.POD_CIDR
    """Flannel pod range, outside the VPC and the service range (unused with Terway)."""
    service_cidr: str = defaults.SERVICE_CIDR
    """Service range, outside the VPC and the pod range."""
    new_nat_gateway: bool = defaults.NEW_NAT_GATEWAY
    """Create a NAT gateway so nodes reach image registries."""
    api_server_internet: bool = False
    """Give the API server a public endpoint (create-only; its listener ACL is ``ApiServerAccess``)."""
    deletion_protection: bool = defaults.DELETION_PROTECTION
    """Refuse deletion through the API (and through Pulumi: the resource is protected)."""
    addons: tuple[AddonSpec, ...] = ()
    """Further addons installed at creation, besides the network plugin's."""
    kubeconfig_duration_minutes: int = defaults.KUBECONFIG_DURATION_MINUTES
    """Lifetime of the kubeconfig certificate minted on each ``up`` (never during a preview)."""
    proxy_mode: str = defaults.KUBE_PROXY_MODE
    """kube-proxy mode, ``iptables`` or ``ipvs`` (create-only: a change replaces the cluster)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on the cluster."""

    @property
    def create_time_addons(self) -> tuple[AddonSpec, ...]:
        """Every addon ACK installs at creation: the network plugin's, then the further ones."""
        return (network_plugin_addon(self.network_plugin), *self.addons)


_VERSION_NUMBERS = re.compile(r"\d+")


def with_server(kubeconfig: str, server: str) -> str:
    """``kubeconfig`` with every cluster entry pointed at ``server``."""
    document = yaml.safe_load(kubeconfig)
    for entry in document.get("clusters") or []:
        entry["cluster"]["server"] = server
    return str(yaml.safe_dump(document, sort_keys=False))


def _intranet(connections: Sequence[Mapping[str, Any]]) -> str:
    """The API server's intranet endpoint from the cluster's ``connections`` (output types are mappings)."""
    return str(connections[0]["api_server_intranet"])


def network_plugin_addon(network_plugin: str) -> AddonSpec:
    """The CNI add-on ACK installs at creation for ``network_plugin``."""
    if network_plugin == defaults.TERWAY:
        return AddonSpec("terway-eniip", defaults.TERWAY_ADDON_CONFIG)
    return AddonSpec(defaults.FLANNEL)


def version_numbers(version: str) -> list[int]:
    """``1.33.3-aliyun.1`` -> ``[1, 33, 3, 1]``, for numeric comparison."""
    return [int(number) for number in _VERSION_NUMBERS.findall(version)]


def check_proxy_mode(proxy_mode: str, version: str) -> str:
    """``version`` unchanged, or a clear error when kube-proxy's mode is deprecated in that version."""
    if proxy_mode == "ipvs" and version_numbers(version)[:2] >= list(defaults.IPVS_DEPRECATED_FROM):
        major, minor = defaults.IPVS_DEPRECATED_FROM
        raise pulumi.RunError(
            f"kube-proxy mode ipvs is deprecated by ACK from Kubernetes {major}.{minor}, and the cluster "
            f"would get {version}: set ack-rdma:kubeProxyMode to iptables, or pin an older "
            "ack-rdma:kubernetesVersion."
        )
    return version


def newest_version(versions: Sequence[str]) -> str:
    """The highest of ACK's version strings such as ``1.33.3-aliyun.1`` (compared numerically)."""
    if not versions:
        raise pulumi.RunError(
            "ACK returned no Kubernetes version for ManagedKubernetes in this region: "
            "set ack-rdma:kubernetesVersion."
        )
    return max(versions, key=version_numbers)


def private_endpoint_warning() -> str:
    return (
        "The API server gets no public endpoint (ack-rdma:apiServerIngressCidrs is empty): `pulumi up` "
        "reaches it only from inside the cluster's VPC or a network joined to it (VPN gateway, CEN, "
        "Express Connect). From anywhere else the cluster and node pools are created, but the Kubernetes "
        "objects fail when their API calls time out. To deploy from outside, list the egress CIDRs of every "
        "machine that runs `pulumi up` (the deploy workflow's runner included) in "
        "ack-rdma:apiServerIngressCidrs before the cluster is created: ACK takes the public endpoint only at "
        "creation (later, only by binding an EIP in the console)."
    )


class AckCluster(pulumi.ComponentResource):
    """Managed ACK cluster with no workers of its own, plus a kubeconfig-backed Kubernetes provider."""

    cluster_id: pulumi.Output[str]
    api_server_load_balancer_id: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    kubeconfig_expiration: pulumi.Output[str]
    provider: k8s.Provider

    def __init__(
        self,
        name: str,
        args: AckClusterArgs,
        *,
        vswitch_ids: Sequence[pulumi.Input[str]],
        security_group_id: pulumi.Input[str],
        pod_vswitch_ids: Sequence[pulumi.Input[str]] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``pod_vswitch_ids``: Terway's pod vSwitches (none with Flannel)."""
        super().__init__("ack-rdma:cluster:AckCluster", name, None, opts)
        terway = args.network_plugin == defaults.TERWAY
        options = child_options(self, defaults.CLUSTER_TIMEOUTS)
        if not args.api_server_internet:
            pulumi.log.warn(private_endpoint_warning(), resource=self)
        if args.kubernetes_version is not None:
            version: pulumi.Input[str] = check_proxy_mode(args.proxy_mode, args.kubernetes_version)
        else:
            versions = alicloud.cs.get_kubernetes_version_output(
                cluster_type="ManagedKubernetes",
                profile="Default",
                opts=pulumi.InvokeOutputOptions(parent=self),
            )
            version = versions.metadatas.apply(
                lambda found: check_proxy_mode(
                    args.proxy_mode, newest_version([item.version for item in found])
                )
            )
            # The looked-up version only chooses what to create: a newer ACK release must not upgrade the
            # cluster behind the user's back. Upgrades go through ack-rdma:kubernetesVersion.
            options = pulumi.ResourceOptions.merge(
                options, pulumi.ResourceOptions(ignore_changes=["version"])
            )
        cluster = alicloud.cs.ManagedKubernetes(
            f"{name}-cluster",
            name=f"{args.name_prefix}-cluster",
            cluster_spec=args.cluster_spec,
            version=version,
            vswitch_ids=list(vswitch_ids),
            # Our own group: is_enterprise_security_group (which kind of group ACK should create) conflicts
            # with security_group_id in the provider's schema, even when false.
            security_group_id=security_group_id,
            pod_cidr=None if terway else args.pod_cidr,
            pod_vswitch_ids=list(pod_vswitch_ids) if terway else None,
            service_cidr=args.service_cidr,
            proxy_mode=args.proxy_mode,
            new_nat_gateway=args.new_nat_gateway,
            slb_internet_enabled=args.api_server_internet,
            deletion_protection=args.deletion_protection,
            addons=[addon.as_input() for addon in args.create_time_addons],
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions.merge(
                options, pulumi.ResourceOptions(protect=args.deletion_protection)
            ),
        )
        self.cluster_id = cluster.id
        self.api_server_load_balancer_id = cluster.slb_id
        if pulumi.runtime.is_dry_run():
            # Each call mints a certificate that stays valid for its whole lifetime: minted in every preview
            # (pull requests included) they would pile up. A preview shows the kubeconfig as known after
            # the update; the Kubernetes provider, pinned to the cluster id, is not replaced for it.
            self.kubeconfig = pulumi.Output.secret(pulumi.Output.from_input(cast(str, UNKNOWN)))
            self.kubeconfig_expiration = pulumi.Output.from_input(cast(str, UNKNOWN))
        else:
            credential = alicloud.cs.get_cluster_credential_output(
                cluster_id=cluster.id,
                temporary_duration_minutes=args.kubeconfig_duration_minutes,
                opts=pulumi.InvokeOutputOptions(parent=self),
            )
            kubeconfig: pulumi.Output[str] = credential.kube_config
            if not args.api_server_internet:
                # The provider asks for the public endpoint's kubeconfig (PrivateIpAddress=false,
                # alicloud/service_alicloud_cs.go:243); a cluster without one is reached at its intranet one.
                kubeconfig = pulumi.Output.all(kubeconfig, cluster.connections).apply(
                    lambda found: with_server(found[0], _intranet(found[1]))
                )
            self.kubeconfig = pulumi.Output.secret(kubeconfig)
            self.kubeconfig_expiration = credential.expiration
        # cluster_identifier: a re-minted kubeconfig (every run) must not replace the provider and with it
        # every Kubernetes object; only a different cluster does.
        self.provider = k8s.Provider(
            f"{name}-kubernetes",
            kubeconfig=self.kubeconfig,
            cluster_identifier=cluster.id,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {
                "clusterId": self.cluster_id,
                "kubeconfig": self.kubeconfig,
                "kubeconfigExpiration": self.kubeconfig_expiration,
            }
        )
