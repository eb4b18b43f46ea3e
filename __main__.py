"""ack-rdma: ACK cluster, RDMA node pool, RDMA device plugin and test pods. Composition root only."""

from __future__ import annotations

import pulumi

from components.api_server_access import ApiServerAccess
from components.cluster import AckCluster
from components.config import read_stack_config
from components.device_plugin import RdmaDevicePlugin
from components.erdma import ErdmaController
from components.images import PluginImages
from components.k8s_objects import pod_names
from components.network import Network
from components.node_pool import PoolPlacement, RdmaNodePool, SystemNodePool
from components.pod_network import PodVswitches
from components.registry_access import RegistryAccess
from components.security import ClusterSecurityGroup
from components.test_pods import RdmaTestNamespace, RdmaTestPods, perftest_commands, pod_manifest_yaml

config = read_stack_config()

network = Network("network", config.network)
security = ClusterSecurityGroup("security", config.security, vpc_id=network.vpc_id)
pod_vswitches = (
    PodVswitches("pod-vswitches", config.pod_vswitches, vpc_id=network.vpc_id, zone_id=network.zone_id)
    if config.pod_vswitches is not None
    else None
)
cluster = AckCluster(
    "cluster",
    config.cluster,
    vswitch_ids=[network.vswitch_id],
    security_group_id=security.security_group_id,
    pod_vswitch_ids=pod_vswitches.vswitch_ids if pod_vswitches else (),
)
if config.api_server is not None:
    ApiServerAccess("api-server", config.api_server, load_balancer_id=cluster.api_server_load_balancer_id)
registry_access = (
    RegistryAccess(
        "registry-access",
        config.registry_access,
        vpc_id=network.vpc_id,
        vswitch_id=network.vswitch_id,
        cluster_id=cluster.cluster_id,
    )
    if config.registry_access is not None
    else None
)
placement = PoolPlacement(
    cluster_id=cluster.cluster_id,
    vswitch_ids=[network.vswitch_id],
    security_group_id=security.security_group_id,
    login=config.login,
    name_prefix=config.name_prefix,
    tags=config.tags,
)
system_pool = SystemNodePool("nodepool-system", config.system_pool, placement)
# The add-on's controller needs a node before the RDMA nodes exist; it converts their ENIs once Ready.
erdma = ErdmaController(
    "erdma",
    config.erdma,
    cluster_id=cluster.cluster_id,
    cluster_addon_names=[addon.name for addon in config.cluster.create_time_addons],
    opts=pulumi.ResourceOptions(depends_on=[system_pool]),
)
node_pools = [RdmaNodePool(f"nodepool-{pool.name}", pool, placement) for pool in config.node_pools]
images = (
    PluginImages("images", config.images, push_access=registry_access.push_access if registry_access else ())
    if config.images is not None
    else None
)
# Pods pull once the registry is reachable from the VPC and the credential helper serves their accounts.
pull_access = [registry_access] if registry_access else []
# Workloads depend on the node pools: a destroy removes them before the nodes go. The test namespace and its
# service account do not: they are created right after the cluster, so that ACR's credential helper has given
# the account its pull secret by the time the first pod is admitted. The namespace exists even with the test
# pods off: testPodManifest and `ack-rdma-check --create` put pods there, and the plugin copies its registry
# pull secret into it.
test_namespace = RdmaTestNamespace("test-namespace", config.test_pods, provider=cluster.provider)
plugin = RdmaDevicePlugin(
    "device-plugin",
    config.device_plugin,
    provider=cluster.provider,
    image=images.plugin_ref if images else None,
    opts=pulumi.ResourceOptions(depends_on=[*node_pools, test_namespace, *pull_access]),
)
test_pod_image = images.tools_ref if images and config.test_pods_use_built_image else None
if config.test_pods_enabled:
    RdmaTestPods(
        "test-pods",
        config.test_pods,
        provider=cluster.provider,
        image=test_pod_image,
        opts=pulumi.ResourceOptions(depends_on=[plugin, test_namespace, *pull_access]),
    )

pulumi.export("vpcId", network.vpc_id)
pulumi.export("vswitchIds", [network.vswitch_id])
pulumi.export("securityGroupId", security.security_group_id)
pulumi.export("clusterId", cluster.cluster_id)
pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("kubeconfigExpiration", cluster.kubeconfig_expiration)
pulumi.export("nodePoolId", node_pools[0].node_pool_id)
pulumi.export("nodePoolIds", [pool.node_pool_id for pool in node_pools])
pulumi.export("systemNodePoolId", system_pool.node_pool_id)
pulumi.export("erdmaDriver", erdma.driver)
pulumi.export("rdmaResourceName", plugin.resource_name)
pulumi.export("pluginImage", plugin.image)
pulumi.export("devicePluginNamespace", plugin.namespace)
pulumi.export(
    "testPods",
    {
        "enabled": config.test_pods_enabled,
        "namespace": test_namespace.namespace,
        "names": pod_names(config.test_pods),
    },
)
pulumi.export("testCommands", perftest_commands(config.test_pods))
pulumi.export("checkMinGbits", config.check_min_gbits)
# What the instance type publishes: ack-rdma-check reports the measured rate as a share of it.
pulumi.export("expectedGbits", config.expected_gbits)
pulumi.export("testPodManifest", pod_manifest_yaml(config.test_pods, test_pod_image))
