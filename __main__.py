"""ack-rdma: ACK cluster, RDMA node pool, RDMA device plugin and test pods. Composition root only."""

from __future__ import annotations

from dataclasses import replace

import pulumi

from components.cluster import AckCluster
from components.config import read_stack_config
from components.device_plugin import RdmaDevicePlugin
from components.erdma import ErdmaController
from components.images import PluginImages
from components.k8s_objects import pod_names
from components.network import Network
from components.node_pool import PoolPlacement, RdmaNodePool, SystemNodePool
from components.security import ClusterSecurityGroup
from components.test_pods import RdmaTestNamespace, RdmaTestPods, perftest_commands, pod_manifest_yaml

config = read_stack_config()

network = Network("network", config.network)
security = ClusterSecurityGroup(
    "security",
    replace(config.security, vpc_cidr=config.network.vpc_cidr, pod_cidrs=(config.cluster.pod_cidr,)),
    vpc_id=network.vpc_id,
)
cluster = AckCluster(
    "cluster", config.cluster, vswitch_ids=[network.vswitch_id], security_group_id=security.security_group_id
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
    cluster_addon_names=[addon.name for addon in config.cluster.addons],
    opts=pulumi.ResourceOptions(depends_on=[system_pool]),
)
node_pools = [RdmaNodePool(f"nodepool-{pool.name}", pool, placement) for pool in config.node_pools]
images = PluginImages("images", config.images) if config.images is not None else None
# Kubernetes objects depend on the node pools: a destroy removes them before the nodes go.
# The test namespace exists even with the test pods off: testPodManifest and `ack-rdma-check --create` put
# pods there, and the plugin copies its registry pull secret into it.
test_namespace = RdmaTestNamespace(
    "test-namespace",
    config.test_pods,
    provider=cluster.provider,
    opts=pulumi.ResourceOptions(depends_on=node_pools),
)
plugin = RdmaDevicePlugin(
    "device-plugin",
    config.device_plugin,
    provider=cluster.provider,
    image=images.plugin_ref if images else None,
    opts=pulumi.ResourceOptions(depends_on=[*node_pools, test_namespace]),
)
test_pod_image = images.tools_ref if images and config.test_pods_use_built_image else None
if config.test_pods_enabled:
    RdmaTestPods(
        "test-pods",
        config.test_pods,
        provider=cluster.provider,
        image=test_pod_image,
        opts=pulumi.ResourceOptions(depends_on=[plugin, test_namespace]),
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
