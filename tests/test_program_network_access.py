"""Who can reach what in the cluster the program declares: security-group rules for pod traffic between nodes
(ACK adds none to a group it is given)."""

from __future__ import annotations

from typing import Any

from offline_engine.offline_run import DeclaredResource, ProgramRun, reveal

RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"
GROUP = "alicloud:ecs/securityGroup:SecurityGroup"
CLUSTER = "alicloud:cs/managedKubernetes:ManagedKubernetes"
VPC = "alicloud:vpc/network:Network"


def inputs(resource: DeclaredResource) -> dict[str, Any]:
    return {key: reveal(value) for key, value in resource.inputs.items()}


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
