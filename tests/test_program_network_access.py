"""Who can reach what in the cluster the program declares: security-group rules for pod traffic between nodes
(ACK adds none to a group it is given)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from components.config import StackConfigError
from offline_engine.offline_run import DeclaredResource, ProgramRun, reveal

RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"
GROUP = "alicloud:ecs/securityGroup:SecurityGroup"
CLUSTER = "alicloud:cs/managedKubernetes:ManagedKubernetes"
VPC = "alicloud:vpc/network:Network"
K8S_PROVIDER = "pulumi:providers:kubernetes"


def inputs(resource: DeclaredResource) -> dict[str, Any]:
    return {key: reveal(value) for key, value in resource.inputs.items()}


def name_index(resource: DeclaredResource) -> int:
    """``3`` for ``<component>-entry-3``: the position a component gave a resource of a list."""
    return int(resource.name.rsplit("-", 1)[1])


def ingress(run: ProgramRun) -> list[dict[str, Any]]:
    return [rule for rule in map(inputs, run.of_type(RULE)) if rule["type"] == "ingress"]


def test_pod_traffic_between_nodes_is_admitted(stack_run: ProgramRun) -> None:
    """Flannel routes pod traffic between nodes with pod source addresses, which the group-to-group rule does
    not match: CoreDNS on another node and perftest's TCP exchange need the pod-range rule."""
    pod_cidr = stack_run.one(CLUSTER).inputs["podCidr"]
    from_pods = [rule for rule in ingress(stack_run) if rule.get("cidrIp") == pod_cidr]
    assert [(rule["ipProtocol"], rule["portRange"], rule["policy"]) for rule in from_pods] == [
        ("all", "-1/-1", "accept")
    ]
    group = stack_run.one(GROUP).id
    from_group = [rule for rule in ingress(stack_run) if rule.get("sourceSecurityGroupId") == group]
    assert [(rule["ipProtocol"], rule["portRange"]) for rule in from_group] == [("all", "-1/-1")]


def test_icmp_comes_from_the_vpc_and_nothing_from_the_internet(stack_run: ProgramRun) -> None:
    vpc_cidr = stack_run.one(VPC).inputs["cidrBlock"]
    icmp = [rule for rule in ingress(stack_run) if rule["ipProtocol"] == "icmp"]
    assert [(rule["cidrIp"], rule["portRange"]) for rule in icmp] == [(vpc_cidr, "-1/-1")]
    assert [rule for rule in ingress(stack_run) if rule.get("cidrIp") == "0.0.0.0/0"] == []


def test_a_listed_ssh_cidr_is_the_only_way_in_from_outside(run_stack: Any) -> None:
    run = run_stack("dev", sshIngressCidrs=["203.0.113.7/32"])
    vpc_cidr = run.one(VPC).inputs["cidrBlock"]
    pod_cidr = run.one(CLUSTER).inputs["podCidr"]
    outside = [
        rule
        for rule in ingress(run)
        if rule.get("cidrIp") not in (None, vpc_cidr, pod_cidr) and not rule.get("sourceSecurityGroupId")
    ]
    assert [(rule["ipProtocol"], rule["portRange"], rule["cidrIp"]) for rule in outside] == [
        ("tcp", "22/22", "203.0.113.7/32")
    ]


# -- the API server ------------------------------------------------------------------------------------------
ACL = "alicloud:slb/acl:Acl"
ACL_ENTRY = "alicloud:slb/aclEntryAttachment:AclEntryAttachment"
LISTENER_ACL = "pulumi-python:dynamic/slb:ListenerAcl"
PRIVATE_ENDPOINT = "The API server gets no public endpoint"


def test_without_listed_cidrs_the_api_server_has_no_public_endpoint_and_the_plan_says_so(
    stack_run: ProgramRun,
) -> None:
    assert stack_run.one(CLUSTER).inputs["slbInternetEnabled"] is False
    assert not stack_run.of_type(ACL) and not stack_run.of_type(LISTENER_ACL)
    (warning,) = [item for item in stack_run.diagnostics if PRIVATE_ENDPOINT in item.message]
    assert warning.severity == "warning" and "ack-rdma:apiServerIngressCidrs" in warning.message
    # Node security groups do not guard the API server: no rule pretends to.
    assert [rule for rule in ingress(stack_run) if rule["portRange"] == "6443/6443"] == []
    # `up` from inside the VPC reaches it: the kubeconfig names the intranet endpoint, not the public one the
    # credential API hands out.
    kubeconfig = yaml.safe_load(reveal(stack_run.one(K8S_PROVIDER).inputs["kubeconfig"]))
    intranet = stack_run.one(CLUSTER).outputs["connections"][0]["apiServerIntranet"]
    assert {entry["cluster"]["server"] for entry in kubeconfig["clusters"]} == {intranet}


def test_listed_cidrs_get_a_public_endpoint_whitelisted_on_the_api_servers_listener(run_stack: Any) -> None:
    run = run_stack("dev", apiServerIngressCidrs=["203.0.113.7/32", "198.51.100.0/24"])
    cluster = run.one(CLUSTER)
    assert cluster.inputs["slbInternetEnabled"] is True
    assert not [item for item in run.diagnostics if PRIVATE_ENDPOINT in item.message]
    acl = run.one(ACL)
    # Registrations arrive in any order: the entries in the order of their names' index.
    entries = [inputs(entry) for entry in sorted(run.of_type(ACL_ENTRY), key=name_index)]
    assert {entry["aclId"] for entry in entries} == {acl.id}
    vpc_cidr = run.one(VPC).inputs["cidrBlock"]
    assert [entry["entry"] for entry in entries] == [
        "100.104.0.0/16",  # ACK's control plane (ACK doc: the whitelist must include it)
        vpc_cidr,
        cluster.inputs["podCidr"],
        "203.0.113.7/32",
        "198.51.100.0/24",
    ]
    binding = run.one(LISTENER_ACL)
    assert {
        key: binding.inputs[key] for key in ("load_balancer_id", "listener_port", "acl_id", "region")
    } == {
        "load_balancer_id": cluster.outputs["slbId"],
        "listener_port": 6443,
        "acl_id": acl.id,
        "region": run.settings.region,
    }
    # Bound after its entries: a whitelist without entries lets every request through.
    assert {entry.urn for entry in run.of_type(ACL_ENTRY)} <= set(binding.dependencies)
    assert [rule for rule in ingress(run) if rule["portRange"] == "6443/6443"] == []
    # A public endpoint: the kubeconfig stays as the credential API hands it out.
    kubeconfig = yaml.safe_load(reveal(run.one(K8S_PROVIDER).inputs["kubeconfig"]))
    assert {entry["cluster"]["server"] for entry in kubeconfig["clusters"]} == {"https://47.100.0.1:6443"}


# -- NetworkPolicy and the network plugin --------------------------------------------------------------------
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SWITCH = "alicloud:vpc/switch:Switch"
POD_VSWITCHES = "ack-rdma:pod_network:PodVswitches"


def test_flannel_gets_no_network_policy_ack_would_not_enforce(stack_run: ProgramRun) -> None:
    """ACK enforces NetworkPolicy only with Terway in shared-ENI mode ("Not supported" with Flannel)."""
    addons = [addon["name"] for addon in reveal(stack_run.one(CLUSTER).inputs["addons"])]
    assert "flannel" in addons
    assert stack_run.of_type(NETWORK_POLICY) == []
    manifest = reveal(stack_run.outputs["testPodManifest"])
    assert "kind: NetworkPolicy" not in manifest
    assert "CKV2_K8S_6=ACK enforces NetworkPolicy only with Terway" in manifest


def test_terway_gets_pod_vswitches_and_the_pair_policy_it_enforces(run_stack: Any) -> None:
    run = run_stack("dev", networkPlugin="terway", podVswitchCidrs=["192.168.16.0/20", "192.168.32.0/20"])
    cluster = run.one(CLUSTER)
    pod_group = run.one(POD_VSWITCHES).urn
    pod_switches = sorted(
        (switch for switch in run.of_type(SWITCH) if switch.parent == pod_group), key=name_index
    )
    (node_switch,) = [switch for switch in run.of_type(SWITCH) if switch.parent != pod_group]
    assert [switch.inputs["cidrBlock"] for switch in pod_switches] == ["192.168.16.0/20", "192.168.32.0/20"]
    # Terway takes pod addresses from vSwitches of the node's zone.
    assert {switch.inputs["zoneId"] for switch in pod_switches} == {node_switch.inputs["zoneId"]}
    assert cluster.inputs["podVswitchIds"] == [switch.id for switch in pod_switches]
    assert "podCidr" not in cluster.inputs
    (terway,) = [addon for addon in reveal(cluster.inputs["addons"]) if addon["name"] == "terway-eniip"]
    assert json.loads(terway["config"]) == {"IPVlan": "false", "NetworkPolicy": "true"}
    assert "flannel" not in [addon["name"] for addon in reveal(cluster.inputs["addons"])]
    run.one(NETWORK_POLICY)
    assert "kind: NetworkPolicy" in reveal(run.outputs["testPodManifest"])
    pod_rules = [
        rule for rule in ingress(run) if rule.get("cidrIp") in ("192.168.16.0/20", "192.168.32.0/20")
    ]
    assert sorted((rule["cidrIp"], rule["ipProtocol"]) for rule in pod_rules) == [
        ("192.168.16.0/20", "all"),
        ("192.168.32.0/20", "all"),
    ]


def test_pod_vswitches_are_checked_against_the_plugin_and_the_vpc(run_stack: Any) -> None:
    with pytest.raises(
        StackConfigError, match=r"ack-rdma:podVswitchCidrs is required for networkPlugin terway"
    ):
        run_stack("dev", networkPlugin="terway")
    with pytest.raises(StackConfigError, match=r"ack-rdma:podVswitchCidrs is for networkPlugin terway only"):
        run_stack("dev", podVswitchCidrs=["192.168.16.0/20"])
    with pytest.raises(
        StackConfigError, match=r"ack-rdma:podVswitchCidrs\[0\] 192.168.0.0/24 overlaps vswitchCidr"
    ):
        run_stack("dev", networkPlugin="terway", podVswitchCidrs=["192.168.0.0/24"])
    with pytest.raises(
        StackConfigError, match=r"ack-rdma:podVswitchCidrs\[0\] 10.0.0.0/16 lies outside the VPC"
    ):
        run_stack("dev", networkPlugin="terway", podVswitchCidrs=["10.0.0.0/16"])
