"""Nodes can pull the images the program pushes: ACR Enterprise Edition's VPC link, internet endpoint and
credential helper, and the Personal Edition path that keeps its pull secret."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from components.config import StackConfigError
from offline_engine.offline_run import DeclaredResource, ProgramRun, reveal

RunStack = Callable[..., ProgramRun]
LINK = "alicloud:cr/vpcEndpointLinkedVpc:VpcEndpointLinkedVpc"
INTERNET = "alicloud:cr/internetEndpoint:InternetEndpoint"
ADDON = "alicloud:cs/kubernetesAddon:KubernetesAddon"
CLUSTER = "alicloud:cs/managedKubernetes:ManagedKubernetes"
IMAGE = "docker-build:index:Image"
DAEMON_SET = "kubernetes:apps/v1:DaemonSet"
POD = "kubernetes:core/v1:Pod"
ACCESS = "ack-rdma:registry_access:RegistryAccess"
HELPER = "managed-aliyun-acr-credential-helper"
PERSONAL = {"registryEdition": "personal", "registryUsername": "ops@example.com", "registryHost": None}


def inputs(resource: DeclaredResource) -> dict[str, Any]:
    return {key: reveal(value) for key, value in resource.inputs.items()}


def helper(run: ProgramRun) -> DeclaredResource:
    (found,) = [addon for addon in run.of_type(ADDON) if addon.inputs["name"] == HELPER]
    return found


def pod_specs(run: ProgramRun) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, pod spec) of every declared workload pulling the images."""
    daemon_set = inputs(run.one(DAEMON_SET))
    found = [(daemon_set["metadata"]["namespace"], daemon_set["spec"]["template"]["spec"])]
    found += [(pod["metadata"]["namespace"], pod["spec"]) for pod in map(inputs, run.of_type(POD))]
    return found


def test_the_cluster_vpc_is_linked_to_the_enterprise_instance(stack_run: ProgramRun) -> None:
    link = inputs(stack_run.one(LINK))
    instance_id = stack_run.settings.config["ack-rdma:registryInstanceId"]
    assert link == {
        "instanceId": instance_id,
        "vpcId": stack_run.one("alicloud:vpc/network:Network").id,
        "vswitchId": stack_run.one(CLUSTER).inputs["vswitchIds"][0],
        "moduleName": "Registry",
        # The VPC host resolves inside the VPC only with its PrivateZone record.
        "enableCreateDnsRecordInPvzt": True,
    }


def test_workloads_pull_through_the_vpc_host_that_was_pushed_to_by_the_public_one(
    stack_run: ProgramRun,
) -> None:
    public = stack_run.settings.config["ack-rdma:registryHost"]
    instance, _, rest = public.partition("-registry.")
    vpc_host = f"{instance}-registry-vpc.{rest}"
    for image in stack_run.of_type(IMAGE):
        (tag,) = image.inputs["tags"]
        assert tag.startswith(f"{public}/")
    for _, spec in pod_specs(stack_run):
        assert spec["containers"][0]["image"].startswith(f"{vpc_host}/")
        # The credential helper's secret reaches them through their service account, not a pod field.
        assert "imagePullSecrets" not in spec


def test_the_credential_helper_serves_the_instance_and_exactly_the_accounts_that_pull(
    stack_run: ProgramRun,
) -> None:
    addon = inputs(helper(stack_run))
    assert addon["clusterId"] == stack_run.one(CLUSTER).id
    config = json.loads(addon["config"])
    assert set(config) == {"AcrInstanceInfo", "watchNamespace", "serviceAccount"}
    (instance,) = config["AcrInstanceInfo"]
    public = stack_run.settings.config["ack-rdma:registryHost"]
    assert instance == {
        "instanceId": stack_run.settings.config["ack-rdma:registryInstanceId"],
        "regionId": stack_run.settings.region,
        "domains": public.replace("-registry.", "-registry-vpc.", 1),
    }
    namespaces = config["watchNamespace"].split(",")
    accounts = config["serviceAccount"].split(",")
    pulling = pod_specs(stack_run)
    assert {namespace for namespace, _ in pulling} <= set(namespaces)
    assert {spec["serviceAccountName"] for _, spec in pulling} <= set(accounts)
    assert "*" not in accounts and "all" not in namespaces
    # Declared as an add-on resource (its config can change later), not in the create-time list ACK ignores.
    create_time = [addon["name"] for addon in reveal(stack_run.one(CLUSTER).inputs["addons"])]
    assert HELPER not in create_time


def test_workloads_wait_for_the_nodes_and_the_registry_path_and_their_accounts_do_not(
    stack_run: ProgramRun,
) -> None:
    """Pulumi passes no component dependency down to the children: each workload names them itself. Its
    service account comes first, right after the cluster, so that the credential helper has given it the pull
    secret before any pod is admitted (a pod admitted before that never gets it)."""
    access = {resource.urn for resource in stack_run.children(stack_run.one(ACCESS).urn)}
    pools = {pool.urn for pool in stack_run.of_type("alicloud:cs/nodePool:NodePool")}
    workloads = [stack_run.one(DAEMON_SET), *stack_run.of_type(POD)]
    for workload in workloads:
        assert access <= set(workload.dependencies), workload.name
    assert pools & set(stack_run.one(DAEMON_SET).dependencies)
    accounts = stack_run.of_type("kubernetes:core/v1:ServiceAccount")
    assert len(accounts) == 2
    for account in accounts:
        assert not pools & set(account.dependencies), account.name
        assert {account.urn for account in accounts} & set(stack_run.one(DAEMON_SET).dependencies)


def test_listed_push_cidrs_open_the_internet_endpoint_before_the_push(run_stack: RunStack) -> None:
    run = run_stack("dev", registryPushCidrs=["203.0.113.7/32"])
    endpoint = run.one(INTERNET)
    assert inputs(endpoint) == {
        "instanceId": run.settings.config["ack-rdma:registryInstanceId"],
        "entries": [{"entry": "203.0.113.7/32", "comment": "ack-rdma push"}],
    }
    for image in run.of_type(IMAGE):
        assert endpoint.urn in image.dependencies
    assert not [item for item in run.diagnostics if "internet endpoint of ACR instance" in item.message]


def test_without_push_cidrs_the_endpoint_is_left_alone_and_the_plan_says_so(stack_run: ProgramRun) -> None:
    assert not stack_run.of_type(INTERNET)
    (warning,) = [
        item for item in stack_run.diagnostics if "internet endpoint of ACR instance" in item.message
    ]
    assert warning.severity == "warning" and "ack-rdma:registryPushCidrs" in warning.message


def test_personal_edition_keeps_its_pull_secret_and_needs_no_link(run_stack: RunStack) -> None:
    run = run_stack("dev", secrets={"registryPassword": "pw"}, **PERSONAL)
    assert not run.of_type(ACCESS) and not run.of_type(LINK)
    assert HELPER not in [addon.inputs["name"] for addon in run.of_type(ADDON)]
    for _, spec in pod_specs(run):
        assert spec["containers"][0]["image"].startswith("registry.cn-shanghai.aliyuncs.com/")
        assert spec["imagePullSecrets"] == [{"name": "ack-rdma-registry"}]


def test_the_helper_is_not_for_the_addons_key_and_the_host_must_be_the_instances(run_stack: RunStack) -> None:
    with pytest.raises(
        StackConfigError, match=r"ack-rdma:addons\[0\]\.name 'managed-aliyun-acr-credential-helper'"
    ):
        run_stack("dev", addons=[{"name": HELPER}])
    with pytest.raises(StackConfigError, match=r"ack-rdma:registryHost 'registry\.example\.com' is not an"):
        run_stack("dev", registryHost="registry.example.com")
    with pytest.raises(
        pulumi.RunError, match=r"ack-rdma:addons\[0\]\.name 'flannel' is installed by the program"
    ):
        run_stack("dev", addons=[{"name": "flannel"}])
