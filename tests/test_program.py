"""The whole program under the mock engine, once per stack file: what it declares and how."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from typing import Any

import pulumi
import yaml
from rdma_device_plugin.config import parse_config

from components.api_server_access import whitelist
from components.cluster import newest_version
from components.config import StackConfig, parse_stack_config
from components.config_keys import KEYS
from components.images import ENTERPRISE
from components.instance_catalogue import expected_gbits
from components.k8s_objects import (
    DEVICE_PLUGIN_DIR,
    INFINIBAND_DEV_DIR,
    PLUGIN_CONFIG_DIR,
    RDMA_NODE_LABEL_KEY,
    RDMA_NODE_LABEL_VALUE,
    TEST_PAIR_LABEL_KEY,
    build_test_objects,
)
from offline_engine import cloud_facts
from offline_engine.offline_run import DeclaredResource, ProgramRun, is_secret, reveal

NODE_POOL = "alicloud:cs/nodePool:NodePool"
CLUSTER = "alicloud:cs/managedKubernetes:ManagedKubernetes"
RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"
DAEMON_SET = "kubernetes:apps/v1:DaemonSet"
POD = "kubernetes:core/v1:Pod"
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
IMAGE = "docker-build:index:Image"
K8S_PROVIDER = "pulumi:providers:kubernetes"
RDMA_SELECTOR = {RDMA_NODE_LABEL_KEY: RDMA_NODE_LABEL_VALUE}
OUTPUTS = {
    "vpcId",
    "vswitchIds",
    "securityGroupId",
    "clusterId",
    "kubeconfig",
    "kubeconfigExpiration",
    "nodePoolId",
    "nodePoolIds",
    "rdmaResourceName",
    "pluginImage",
    "devicePluginNamespace",
    "testPods",
    "testCommands",
    "testPodManifest",
    "checkMinGbits",
    "expectedGbits",
    "systemNodePoolId",
    "erdmaDriver",
}
RDMA_POOL_COMPONENT = "ack-rdma:node_pool:RdmaNodePool"
SYSTEM_POOL_COMPONENT = "ack-rdma:node_pool:SystemNodePool"
# Where every resource type hangs in the tree (one of several parents for some).
PARENT_TYPES: dict[str, str | tuple[str, ...]] = {
    "ack-rdma:network:Network": "pulumi:pulumi:Stack",
    "ack-rdma:security:ClusterSecurityGroup": "pulumi:pulumi:Stack",
    "ack-rdma:cluster:AckCluster": "pulumi:pulumi:Stack",
    RDMA_POOL_COMPONENT: "pulumi:pulumi:Stack",
    SYSTEM_POOL_COMPONENT: "pulumi:pulumi:Stack",
    "ack-rdma:erdma:ErdmaController": "pulumi:pulumi:Stack",
    "alicloud:cs/kubernetesAddon:KubernetesAddon": (
        "ack-rdma:erdma:ErdmaController",
        "ack-rdma:registry_access:RegistryAccess",
    ),
    "ack-rdma:images:PluginImages": "pulumi:pulumi:Stack",
    "ack-rdma:device_plugin:RdmaDevicePlugin": "pulumi:pulumi:Stack",
    "ack-rdma:test_pods:RdmaTestNamespace": "pulumi:pulumi:Stack",
    "ack-rdma:test_pods:RdmaTestPods": "pulumi:pulumi:Stack",
    "alicloud:vpc/network:Network": "ack-rdma:network:Network",
    "alicloud:vpc/switch:Switch": "ack-rdma:network:Network",
    "alicloud:ecs/securityGroup:SecurityGroup": "ack-rdma:security:ClusterSecurityGroup",
    "ack-rdma:pod_network:PodVswitches": "pulumi:pulumi:Stack",
    "ack-rdma:api_server_access:ApiServerAccess": "pulumi:pulumi:Stack",
    "ack-rdma:registry_access:RegistryAccess": "pulumi:pulumi:Stack",
    "alicloud:slb/acl:Acl": "ack-rdma:api_server_access:ApiServerAccess",
    "alicloud:slb/aclEntryAttachment:AclEntryAttachment": "ack-rdma:api_server_access:ApiServerAccess",
    "pulumi-python:dynamic/slb:ListenerAcl": "ack-rdma:api_server_access:ApiServerAccess",
    "alicloud:cr/vpcEndpointLinkedVpc:VpcEndpointLinkedVpc": "ack-rdma:registry_access:RegistryAccess",
    "alicloud:cr/internetEndpoint:InternetEndpoint": "ack-rdma:registry_access:RegistryAccess",
    RULE: "ack-rdma:security:ClusterSecurityGroup",
    CLUSTER: "ack-rdma:cluster:AckCluster",
    K8S_PROVIDER: "ack-rdma:cluster:AckCluster",
    # A node pool hangs under its RdmaNodePool, or under the SystemNodePool: see pool_parent_type.
    NODE_POOL: RDMA_POOL_COMPONENT,
    "alicloud:ecs/ecsDeploymentSet:EcsDeploymentSet": "ack-rdma:node_pool:RdmaNodePool",
    "alicloud:cs/registryEnterpriseNamespace:RegistryEnterpriseNamespace": "ack-rdma:images:PluginImages",
    "alicloud:cs/registryEnterpriseRepo:RegistryEnterpriseRepo": "ack-rdma:images:PluginImages",
    "alicloud:cr/namespace:Namespace": "ack-rdma:images:PluginImages",
    "alicloud:cr/repo:Repo": "ack-rdma:images:PluginImages",
    IMAGE: "ack-rdma:images:PluginImages",
    CONFIG_MAP: "ack-rdma:device_plugin:RdmaDevicePlugin",
    "kubernetes:core/v1:ServiceAccount": (
        "ack-rdma:device_plugin:RdmaDevicePlugin",
        "ack-rdma:test_pods:RdmaTestNamespace",
    ),
    "kubernetes:core/v1:Secret": "ack-rdma:device_plugin:RdmaDevicePlugin",
    DAEMON_SET: "ack-rdma:device_plugin:RdmaDevicePlugin",
    NAMESPACE: "ack-rdma:test_pods:RdmaTestNamespace",
    NETWORK_POLICY: "ack-rdma:test_pods:RdmaTestNamespace",
    POD: "ack-rdma:test_pods:RdmaTestPods",
}


def stack_config(run: ProgramRun) -> StackConfig:
    """The run's config as the program parsed it (secrets as stand-ins: only their presence matters)."""
    config = run.settings.config
    plain = {key.name: config[key.qualified] for key in KEYS if not key.secret and key.qualified in config}
    secrets = {
        key.name: pulumi.Output.from_input("?") for key in KEYS if key.secret and key.qualified in config
    }
    return parse_stack_config(plain, secrets, stack=run.settings.stack, region=run.settings.region)


def expected_counts(config: StackConfig) -> Counter[str]:
    """Resource counts the stack's config calls for."""
    counts = Counter(
        {
            "ack-rdma:network:Network": 1,
            "alicloud:vpc/network:Network": 1,
            "alicloud:vpc/switch:Switch": 1,
            "ack-rdma:security:ClusterSecurityGroup": 1,
            "alicloud:ecs/securityGroup:SecurityGroup": 1,
            # members, egress, ICMP from the VPC, all from each pod range, then one per SSH CIDR
            RULE: 3 + len(config.security.pod_cidrs) + len(config.security.ssh_cidrs),
            "ack-rdma:cluster:AckCluster": 1,
            CLUSTER: 1,
            K8S_PROVIDER: 1,
            RDMA_POOL_COMPONENT: len(config.node_pools),
            SYSTEM_POOL_COMPONENT: 1,
            NODE_POOL: len(config.node_pools) + 1,
            "ack-rdma:erdma:ErdmaController": 1,
            "alicloud:cs/kubernetesAddon:KubernetesAddon": 1,
            "alicloud:ecs/ecsDeploymentSet:EcsDeploymentSet": sum(
                pool.deployment_set for pool in config.node_pools
            ),
            "ack-rdma:device_plugin:RdmaDevicePlugin": 1,
            CONFIG_MAP: 1,
            # the plugin's and the test pods'
            "kubernetes:core/v1:ServiceAccount": 2,
            DAEMON_SET: 1,
            # The test namespace stays, test pods or not: applied manifests and ack-rdma-check use it.
            "ack-rdma:test_pods:RdmaTestNamespace": 1,
            NAMESPACE: 1,
            # Only where ACK enforces it (Terway).
            NETWORK_POLICY: int(config.test_pods.network_policy),
        }
    )
    if config.pod_vswitches is not None:
        counts["ack-rdma:pod_network:PodVswitches"] = 1
        counts["alicloud:vpc/switch:Switch"] += len(config.pod_vswitches.cidrs)
    if config.api_server is not None:
        counts["ack-rdma:api_server_access:ApiServerAccess"] = 1
        counts["alicloud:slb/acl:Acl"] = 1
        counts["alicloud:slb/aclEntryAttachment:AclEntryAttachment"] = len(whitelist(config.api_server))
        counts["pulumi-python:dynamic/slb:ListenerAcl"] = 1
    if config.registry_access is not None:
        counts["ack-rdma:registry_access:RegistryAccess"] = 1
        counts["alicloud:cr/vpcEndpointLinkedVpc:VpcEndpointLinkedVpc"] = 1
        counts["alicloud:cr/internetEndpoint:InternetEndpoint"] = int(bool(config.registry_access.push_cidrs))
        counts["alicloud:cs/kubernetesAddon:KubernetesAddon"] += 1
    if config.images is not None:
        counts["ack-rdma:images:PluginImages"] = 1
        counts[IMAGE] = 2
        if config.images.edition == ENTERPRISE:
            counts["alicloud:cs/registryEnterpriseNamespace:RegistryEnterpriseNamespace"] = 1
            counts["alicloud:cs/registryEnterpriseRepo:RegistryEnterpriseRepo"] = 2
        else:
            counts["alicloud:cr/namespace:Namespace"] = 1
            counts["alicloud:cr/repo:Repo"] = 2
    if config.device_plugin.pull_secret is not None:
        counts["kubernetes:core/v1:Secret"] = len(
            {config.device_plugin.spec.namespace, config.test_pods.namespace}
        )
    if config.test_pods_enabled:
        counts["ack-rdma:test_pods:RdmaTestPods"] = 1
        counts[POD] = config.test_pods.count
    return +counts


def inputs(resource: DeclaredResource) -> dict[str, Any]:
    return {key: reveal(value) for key, value in resource.inputs.items()}


def manifest_objects(run: ProgramRun) -> list[dict[str, Any]]:
    """The ``testPodManifest`` output's objects."""
    return list(yaml.safe_load_all(reveal(run.outputs["testPodManifest"])))


def manifest_pods(run: ProgramRun) -> list[dict[str, Any]]:
    return [obj for obj in manifest_objects(run) if obj["kind"] == "Pod"]


def type_of(run: ProgramRun, urn: str) -> str:
    return "pulumi:pulumi:Stack" if urn == run.stack_urn else run.by_urn(urn).type


def rdma_pools(run: ProgramRun) -> list[DeclaredResource]:
    """The cs.NodePool resources of the RDMA pools (not the system pool)."""
    return [pool for pool in run.of_type(NODE_POOL) if type_of(run, pool.parent) == RDMA_POOL_COMPONENT]


def system_pool(run: ProgramRun) -> DeclaredResource:
    (pool,) = [pool for pool in run.of_type(NODE_POOL) if type_of(run, pool.parent) == SYSTEM_POOL_COMPONENT]
    return pool


# -- the tree ----------------------------------------------------------------------------------------------
def test_resource_types_and_counts_follow_the_stack_config(stack_run: ProgramRun) -> None:
    declared = Counter(resource.type for resource in stack_run.resources)
    assert declared == expected_counts(stack_config(stack_run))


def test_dev_stack_declares_the_walkthrough(program_runs: dict[str, ProgramRun]) -> None:
    dev = program_runs["dev"]
    assert len(dev.resources) == 37
    assert len(dev.of_type(POD)) == 2
    (pool,) = rdma_pools(dev)
    assert reveal(pool.inputs["desiredSize"]) == "2"
    assert dev.settings.region == "cn-shanghai"
    assert json.loads(reveal(dev.one(CONFIG_MAP).inputs["data"])["config.json"]) == {"mode": "hca"}


def test_prod_stack_is_protected_and_runs_no_test_pods(program_runs: dict[str, ProgramRun]) -> None:
    prod = program_runs["prod"]
    cluster = prod.one(CLUSTER)
    assert cluster.inputs["deletionProtection"] is True and cluster.protect
    (pool,) = rdma_pools(prod)
    assert int(pool.inputs["desiredSize"]) >= 3
    assert not prod.of_type(POD)
    assert reveal(prod.outputs["testPods"])["enabled"] is False
    assert not program_runs["dev"].one(CLUSTER).protect


def test_every_resource_hangs_under_its_component(stack_run: ProgramRun) -> None:
    for resource in stack_run.resources:
        parent = type_of(stack_run, resource.parent)
        if resource.type == NODE_POOL and parent == SYSTEM_POOL_COMPONENT:
            continue
        parents = PARENT_TYPES[resource.type]
        assert parent in (parents if isinstance(parents, tuple) else (parents,)), resource.urn
    assert system_pool(stack_run)


def test_every_component_has_children(stack_run: ProgramRun) -> None:
    for component in (resource for resource in stack_run.resources if not resource.custom):
        assert stack_run.children(component.urn), component.urn


# -- labels, selectors, tolerations ------------------------------------------------------------------------
def test_node_pool_label_matches_daemonset_and_test_pod_selectors(stack_run: ProgramRun) -> None:
    assert "labels" not in system_pool(stack_run).inputs
    for pool in rdma_pools(stack_run):
        labels = reveal(pool.inputs["labels"])
        assert {"key": RDMA_NODE_LABEL_KEY, "value": RDMA_NODE_LABEL_VALUE} in labels
        assert [label["key"] for label in labels] == sorted(label["key"] for label in labels)
    daemon_set = inputs(stack_run.one(DAEMON_SET))
    assert daemon_set["spec"]["template"]["spec"]["nodeSelector"] == RDMA_SELECTOR
    declared_pods = [inputs(pod) for pod in stack_run.of_type(POD)]
    for pod in manifest_pods(stack_run) + declared_pods:
        assert pod["spec"]["nodeSelector"] == RDMA_SELECTOR


def test_workloads_tolerate_every_pool_taint(stack_run: ProgramRun) -> None:
    taints = [
        taint for pool in stack_run.of_type(NODE_POOL) for taint in reveal(pool.inputs.get("taints") or [])
    ]
    daemon_tolerations = inputs(stack_run.one(DAEMON_SET))["spec"]["template"]["spec"]["tolerations"]
    pods = manifest_pods(stack_run)
    assert {"key": "CriticalAddonsOnly", "operator": "Exists"} in daemon_tolerations
    for taint in taints:
        for tolerations in [daemon_tolerations] + [pod["spec"].get("tolerations", []) for pod in pods]:
            assert any(
                t["key"] == taint["key"]
                and t["effect"] == taint["effect"]
                and t.get("value", "") in ("", taint["value"])
                for t in tolerations
            ), taint


def test_prod_nodes_are_tainted_and_placed_low_latency(program_runs: dict[str, ProgramRun]) -> None:
    prod = program_runs["prod"]
    (pool,) = rdma_pools(prod)
    deployment_set = prod.one("alicloud:ecs/ecsDeploymentSet:EcsDeploymentSet")
    assert deployment_set.inputs["strategy"] == "LowLatency"
    assert pool.inputs["deploymentSetId"] == deployment_set.id
    assert reveal(pool.inputs["taints"]) == [{"key": "rdma", "value": "true", "effect": "NoSchedule"}]


# -- the device plugin -------------------------------------------------------------------------------------
def test_config_map_passes_the_plugins_own_validator(stack_run: ProgramRun) -> None:
    config_json = inputs(stack_run.one(CONFIG_MAP))["data"]["config.json"]
    parsed = parse_config(config_json)
    assert reveal(stack_run.outputs["rdmaResourceName"]) == parsed.resources[0].resource_name


def test_daemonset_runs_unprivileged_with_exactly_its_volumes(stack_run: ProgramRun) -> None:
    daemon_set = inputs(stack_run.one(DAEMON_SET))
    pod = daemon_set["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["privileged"] is False
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["hostNetwork"] is True
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["automountServiceAccountToken"] is False
    assert daemon_set["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    assert set(volumes) == set(mounts) == {"device-plugins", "config", "infiniband"}
    assert (
        volumes["device-plugins"]["hostPath"]["path"]
        == mounts["device-plugins"]["mountPath"]
        == DEVICE_PLUGIN_DIR
    )
    assert volumes["config"]["configMap"]["name"] == inputs(stack_run.one(CONFIG_MAP))["metadata"]["name"]
    assert mounts["config"] == {"name": "config", "mountPath": PLUGIN_CONFIG_DIR, "readOnly": True}
    assert volumes["infiniband"]["hostPath"]["path"] == INFINIBAND_DEV_DIR
    assert mounts["infiniband"]["readOnly"] is True
    (service_account,) = [
        inputs(account)
        for account in stack_run.of_type("kubernetes:core/v1:ServiceAccount")
        if account.parent == stack_run.one("ack-rdma:device_plugin:RdmaDevicePlugin").urn
    ]
    assert pod["serviceAccountName"] == service_account["metadata"]["name"]
    assert service_account["automountServiceAccountToken"] is False


def test_daemonset_probes_the_plugins_health_endpoint(stack_run: ProgramRun) -> None:
    (container,) = inputs(stack_run.one(DAEMON_SET))["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    port = container["ports"][0]
    for probe in (container["livenessProbe"], container["readinessProbe"]):
        assert probe["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert env["RDMA_DP_METRICS_ADDRESS"]["value"] == f"$(HOST_IP):{int(port['containerPort'])}"
    assert env["HOST_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    assert env["RDMA_DP_CONFIG"]["value"] == f"{PLUGIN_CONFIG_DIR}/config.json"
    assert set(container["resources"]) == {"requests", "limits"}


def test_daemonset_runs_the_built_image_pinned_by_digest(stack_run: ProgramRun) -> None:
    (container,) = inputs(stack_run.one(DAEMON_SET))["spec"]["template"]["spec"]["containers"]
    plugin_image = reveal(stack_run.outputs["pluginImage"])
    assert container["image"] == plugin_image
    assert "imagePullPolicy" not in container  # pinned: kubelet's default (IfNotPresent) is right
    pulled, _, digest = plugin_image.partition("@")
    assert digest.startswith("sha256:")
    (build,) = [image for image in stack_run.of_type(IMAGE) if image.inputs["target"] == "plugin"]
    (pushed,) = build.inputs["tags"]
    # Pushed through the registry host, pulled by the nodes through the Enterprise Edition's VPC endpoint.
    host, _, path = pushed.partition("/")
    instance, _, region_domain = host.partition("-registry.")
    assert pulled == f"{instance}-registry-vpc.{region_domain}/{path}"


# -- network and security ----------------------------------------------------------------------------------
def test_no_security_group_ingress_is_open_to_the_internet_by_default(stack_run: ProgramRun) -> None:
    rules = [inputs(rule) for rule in stack_run.of_type(RULE)]
    assert [rule for rule in rules if rule["type"] == "ingress" and rule.get("cidrIp") == "0.0.0.0/0"] == []
    members = [rule for rule in rules if rule.get("sourceSecurityGroupId")]
    assert members == [
        {
            "securityGroupId": members[0]["sourceSecurityGroupId"],
            "sourceSecurityGroupId": stack_run.one("alicloud:ecs/securityGroup:SecurityGroup").id,
            "type": "ingress",
            "ipProtocol": "all",
            "portRange": "-1/-1",
            "nicType": "intranet",
            "policy": "accept",
            "description": "all traffic between members",
        }
    ]


def test_cluster_and_nodes_share_the_vswitch_and_security_group(stack_run: ProgramRun) -> None:
    vswitch = stack_run.one("alicloud:vpc/switch:Switch")
    group = stack_run.one("alicloud:ecs/securityGroup:SecurityGroup")
    cluster = stack_run.one(CLUSTER)
    assert cluster.inputs["vswitchIds"] == [vswitch.id]
    assert cluster.inputs["securityGroupId"] == group.id
    assert vswitch.inputs["vpcId"] == stack_run.one("alicloud:vpc/network:Network").id
    for pool in stack_run.of_type(NODE_POOL):
        assert pool.inputs["vswitchIds"] == [vswitch.id]
        assert pool.inputs["securityGroupIds"] == [group.id]
        assert pool.inputs["clusterId"] == cluster.id


def test_zone_is_looked_up_for_every_type_a_pool_buys_with_its_disk(stack_run: ProgramRun) -> None:
    lookups = [
        call.args for call in stack_run.invocations if call.token == "alicloud:index/getZones:getZones"
    ]
    bought = [
        {"availableInstanceType": name, "availableDiskCategory": reveal(pool.inputs["systemDiskCategory"])}
        for pool in [*rdma_pools(stack_run), system_pool(stack_run)]
        for name in reveal(pool.inputs["instanceTypes"])
    ]
    # No availableResourceCreation: the data source has no VSwitch branch and ignores it.
    assert sorted(lookups, key=str) == sorted(bought, key=str)
    assert stack_run.one("alicloud:vpc/switch:Switch").inputs["zoneId"]


# -- cluster, provider, kubeconfig ------------------------------------------------------------------------
def test_kubeconfig_is_secret_and_feeds_a_provider_pinned_to_the_cluster(stack_run: ProgramRun) -> None:
    assert is_secret(stack_run.outputs["kubeconfig"])
    assert not is_secret(stack_run.outputs["kubeconfigExpiration"])
    provider = stack_run.one(K8S_PROVIDER)
    cluster = stack_run.one(CLUSTER)
    assert is_secret(provider.inputs["kubeconfig"])
    assert yaml.safe_load(reveal(provider.inputs["kubeconfig"]))["kind"] == "Config"
    assert provider.inputs["clusterIdentifier"] == cluster.id
    reference = f"{provider.urn}::{provider.id}"
    for resource in stack_run.resources:
        if resource.type.startswith("kubernetes:"):
            assert resource.provider == reference, resource.urn


def test_kubernetes_version_is_looked_up_only_when_not_pinned(program_runs: dict[str, ProgramRun]) -> None:
    dev, prod = program_runs["dev"].one(CLUSTER), program_runs["prod"].one(CLUSTER)
    assert dev.inputs["version"] == newest_version(list(cloud_facts.KUBERNETES_VERSIONS)) == "1.35.2-aliyun.1"
    assert dev.ignore_changes == ("version",)
    assert prod.inputs["version"] == "1.33.3-aliyun.1"
    assert prod.ignore_changes == ()
    prod_tokens = {call.token for call in program_runs["prod"].invocations}
    assert "alicloud:cs/getKubernetesVersion:getKubernetesVersion" not in prod_tokens


def test_node_pool_is_replaced_delete_first_and_lifts_memlock(stack_run: ProgramRun) -> None:
    for pool in stack_run.of_type(NODE_POOL):
        assert pool.delete_before_replace
        assert "nodeCount" not in pool.inputs
        # No user-data script restarting containerd while the node goes Ready (it raced pods).
        assert "userData" not in pool.inputs
    for pool in rdma_pools(stack_run):
        assert reveal(pool.inputs["containerdConfig"]) == {"limitMemLock": "9007199254740991"}
    assert "containerdConfig" not in system_pool(stack_run).inputs


def test_every_cloud_and_kubernetes_resource_has_explicit_timeouts(stack_run: ProgramRun) -> None:
    for resource in stack_run.resources:
        if resource.custom and resource.type != K8S_PROVIDER:
            assert set(resource.custom_timeouts) == {"create", "update", "delete"}, resource.urn


def test_kubernetes_objects_are_destroyed_before_the_node_pools(stack_run: ProgramRun) -> None:
    # A component's dependencies reach the engine as its custom children; the plugin's objects are the
    # component's children, so they go before the pools on destroy and come after them on create.
    plugin = stack_run.one("ack-rdma:device_plugin:RdmaDevicePlugin")
    pools = {pool.urn for pool in rdma_pools(stack_run)}
    assert pools and pools <= set(plugin.dependencies)


# -- images ------------------------------------------------------------------------------------------------
def test_images_are_tagged_with_the_full_registry_host_and_pushed_outside_preview(
    stack_run: ProgramRun,
) -> None:
    for image in stack_run.of_type(IMAGE):
        (tag,) = image.inputs["tags"]
        assert "." in tag.split("/")[0], tag
        assert image.inputs["push"] is True
        assert image.inputs["buildOnPreview"] is False
        assert image.inputs["context"] == {"location": "plugin_image"}
        assert image.inputs["dockerfile"] == {"location": "plugin_image/Dockerfile"}
        assert is_secret(image.inputs["registries"])
        (registry,) = reveal(image.inputs["registries"])
        assert tag.startswith(registry["address"] + "/")
        assert registry["password"]
    assert {image.inputs["target"] for image in stack_run.of_type(IMAGE)} == {"plugin", "tools"}


# -- outputs -----------------------------------------------------------------------------------------------
def test_every_output_is_present(stack_run: ProgramRun) -> None:
    assert set(stack_run.outputs) == OUTPUTS
    assert all(reveal(value) not in (None, "", [], {}) for value in stack_run.outputs.values())
    assert reveal(stack_run.outputs["vswitchIds"]) == [stack_run.one("alicloud:vpc/switch:Switch").id]
    assert reveal(stack_run.outputs["clusterId"]) == stack_run.one(CLUSTER).id
    assert reveal(stack_run.outputs["nodePoolId"]) == rdma_pools(stack_run)[0].outputs["nodePoolId"]
    assert reveal(stack_run.outputs["systemNodePoolId"]) == system_pool(stack_run).outputs["nodePoolId"]
    assert reveal(stack_run.outputs["devicePluginNamespace"]) == "kube-system"
    # ack-rdma-check reads them as numbers of Gbit/s; 0 in the stack file takes 80% of what the slowest
    # type the RDMA pools buy publishes.
    bought = [name for pool in rdma_pools(stack_run) for name in reveal(pool.inputs["instanceTypes"])]
    expected = reveal(stack_run.outputs["expectedGbits"])
    assert expected == expected_gbits(bought) == stack_config(stack_run).expected_gbits
    stack_file_value = int(stack_run.settings.config["ack-rdma:checkMinGbits"])
    assert reveal(stack_run.outputs["checkMinGbits"]) == (stack_file_value or int(0.8 * expected))


def test_test_pod_manifest_and_commands_describe_the_same_pods(stack_run: ProgramRun) -> None:
    objects = manifest_objects(stack_run)
    pods = manifest_pods(stack_run)
    described = reveal(stack_run.outputs["testPods"])
    assert [pod["metadata"]["name"] for pod in pods] == described["names"]
    assert {pod["metadata"]["namespace"] for pod in pods} == {described["namespace"]}
    config = stack_config(stack_run)
    tools = next(image for image in stack_run.of_type(IMAGE) if image.inputs["target"] == "tools")
    assert config.images is not None
    pulled = config.images.pull_ref(tools.outputs["ref"])
    assert objects == build_test_objects(replace(config.test_pods, image=pulled))
    rdma_resource = reveal(stack_run.outputs["rdmaResourceName"])
    for pod in pods:
        (container,) = pod["spec"]["containers"]
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["IPC_LOCK"]}
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["spec"]["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
        limits, requests = container["resources"]["limits"], container["resources"]["requests"]
        assert limits[rdma_resource] == "1"
        assert set(limits) == {rdma_resource, "cpu", "memory"} and set(requests) == {"cpu", "memory"}
    if described["enabled"]:
        declared = sorted(
            (inputs(pod) for pod in stack_run.of_type(POD)), key=lambda pod: pod["metadata"]["name"]
        )
        assert declared == pods
    commands = reveal(stack_run.outputs["testCommands"])
    server, client = described["names"]
    assert commands["server"].endswith(f"{server} -- ib_read_bw -q 30")
    assert f"{client} -- ib_read_bw -q 30 " in commands["client"] and server in commands["client"]


def test_test_pods_have_their_own_namespace_and_a_network_policy_only_where_enforced(
    stack_run: ProgramRun,
) -> None:
    """The namespace, the pods' service account and (with Terway, where ACK enforces it) the pair-only
    NetworkPolicy are declared even with the test pods off, and the manifest output carries them so that
    ``kubectl apply`` works on its own."""
    config = stack_config(stack_run)
    namespace_name = reveal(stack_run.outputs["testPods"])["namespace"]
    assert namespace_name not in ("default", "kube-system")
    namespace = inputs(stack_run.one(NAMESPACE))
    test_namespace = stack_run.one("ack-rdma:test_pods:RdmaTestNamespace")
    (account,) = [
        account
        for account in stack_run.of_type("kubernetes:core/v1:ServiceAccount")
        if account.parent == test_namespace.urn
    ]
    assert namespace["metadata"]["name"] == inputs(account)["metadata"]["namespace"] == namespace_name
    assert stack_run.one(NAMESPACE).urn in account.dependencies
    manifest = {obj["kind"]: obj for obj in manifest_objects(stack_run) if obj["kind"] != "Pod"}
    expected = {"Namespace": namespace, "ServiceAccount": inputs(account)}
    pods = manifest_pods(stack_run) + [inputs(pod) for pod in stack_run.of_type(POD)]
    assert pods and {pod["spec"]["serviceAccountName"] for pod in pods} == {
        inputs(account)["metadata"]["name"]
    }
    policies = stack_run.of_type(NETWORK_POLICY)
    if config.test_pods.network_policy:
        (declared,) = policies
        policy = inputs(declared)
        expected["NetworkPolicy"] = policy
        assert stack_run.one(NAMESPACE).urn in declared.dependencies
        selector = policy["spec"]["podSelector"]["matchLabels"]
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        assert policy["spec"]["ingress"] == [{"from": [{"podSelector": {"matchLabels": selector}}]}]
        assert all(selector.items() <= pod["metadata"]["labels"].items() for pod in pods)
        assert set(selector) == {TEST_PAIR_LABEL_KEY}
    else:
        # Flannel: ACK enforces no NetworkPolicy, so none is declared to pretend otherwise.
        assert policies == []
    assert manifest == expected
    # Pods and the plugin's pull-secret copy go after their namespace on create and before it on destroy.
    for component in ("ack-rdma:test_pods:RdmaTestPods", "ack-rdma:device_plugin:RdmaDevicePlugin"):
        for resource in stack_run.of_type(component):
            assert stack_run.one(NAMESPACE).urn in resource.dependencies, component


def test_outputs_known_only_after_deployment_are_told_apart(stack_run: ProgramRun) -> None:
    cluster = stack_run.one(CLUSTER)
    assert {"vpcId", "connections", "certificateAuthorities"} <= set(cluster.computed)
    assert "clusterSpec" not in cluster.computed
    assert cluster.computed["vpcId"] == stack_run.one("alicloud:vpc/network:Network").id
    for pool in stack_run.of_type(NODE_POOL):
        assert set(pool.computed) == {"nodePoolId", "scalingGroupId"}
