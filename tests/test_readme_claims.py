"""Every claim of the README's "What is reachable, and from where" holds for what the program declares.

The claims are the section's bold lead sentences; each has a check below, run on both committed stacks and on
the variants a claim is about (listed CIDRs, Terway). A claim without a check, or a check without its claim,
fails ``test_every_claim_has_a_check``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from offline_engine.offline_run import ProgramRun, reveal, run_program
from offline_engine.stack_files import load_stack_settings, stack_names

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## What is reachable, and from where"
CLAIM = re.compile(r"^- \*\*(?P<claim>[^*]+)\*\*", re.MULTILINE)

RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"
CLUSTER = "alicloud:cs/managedKubernetes:ManagedKubernetes"
VPC = "alicloud:vpc/network:Network"
ACL_ENTRY = "alicloud:slb/aclEntryAttachment:AclEntryAttachment"
LISTENER_ACL = "pulumi-python:dynamic/slb:ListenerAcl"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
LINK = "alicloud:cr/vpcEndpointLinkedVpc:VpcEndpointLinkedVpc"
INTERNET = "alicloud:cr/internetEndpoint:InternetEndpoint"
ADDON = "alicloud:cs/kubernetesAddon:KubernetesAddon"
DAEMON_SET = "kubernetes:apps/v1:DaemonSet"
CREDENTIAL = "alicloud:cs/getClusterCredential:getClusterCredential"
K8S_PROVIDER = "pulumi:providers:kubernetes"
LISTED = ["203.0.113.7/32"]
POD_VSWITCHES = ["192.168.16.0/20"]


def claims() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return [match["claim"] for match in CLAIM.finditer(text[start:end])]


def run(stack: str, *, preview: bool = False, **overrides: object) -> ProgramRun:
    settings = load_stack_settings(
        stack, overrides={f"ack-rdma:{key}": value for key, value in overrides.items()}
    )
    return run_program(settings, preview=preview)


@pytest.fixture(scope="module")
def runs() -> dict[str, ProgramRun]:
    """Both stacks, and dev with every key the claims speak of set."""
    found = {stack: run(stack) for stack in stack_names()}
    found["dev-listed"] = run(
        "dev", sshIngressCidrs=LISTED, apiServerIngressCidrs=LISTED, registryPushCidrs=LISTED
    )
    found["dev-terway"] = run("dev", networkPlugin="terway", podVswitchCidrs=POD_VSWITCHES)
    return found


def inputs(resource: Any) -> dict[str, Any]:
    return {key: reveal(value) for key, value in resource.inputs.items()}


def ingress(program: ProgramRun) -> list[dict[str, Any]]:
    return [rule for rule in map(inputs, program.of_type(RULE)) if rule["type"] == "ingress"]


def pod_ranges(program: ProgramRun) -> set[str]:
    cluster = program.one(CLUSTER)
    if "podCidr" in cluster.inputs:
        return {cluster.inputs["podCidr"]}
    return set(json.loads(program.settings.config["ack-rdma:podVswitchCidrs"]))


def listed(program: ProgramRun, key: str) -> list[str]:
    return list(json.loads(program.settings.config.get(f"ack-rdma:{key}", "[]")))


def nothing_open_unless_listed(program: ProgramRun) -> None:
    vpc = ipaddress.IPv4Network(program.one(VPC).inputs["cidrBlock"])
    own = {str(vpc), *pod_ranges(program)}
    outside = [rule for rule in ingress(program) if rule.get("cidrIp") and rule["cidrIp"] not in own]
    assert [(rule["portRange"], rule["cidrIp"]) for rule in outside] == [
        ("22/22", cidr) for cidr in listed(program, "sshIngressCidrs")
    ]


def pods_talk(program: ProgramRun) -> None:
    rules = ingress(program)
    group = [rule for rule in rules if rule.get("sourceSecurityGroupId")]
    assert [(rule["ipProtocol"], rule["portRange"]) for rule in group] == [("all", "-1/-1")]
    for cidr in pod_ranges(program):
        assert [(r["ipProtocol"], r["portRange"]) for r in rules if r.get("cidrIp") == cidr] == [
            ("all", "-1/-1")
        ]
    vpc = program.one(VPC).inputs["cidrBlock"]
    assert [rule["cidrIp"] for rule in rules if rule["ipProtocol"] == "icmp"] == [vpc]


def api_server_only_from_listed(program: ProgramRun) -> None:
    cidrs = listed(program, "apiServerIngressCidrs")
    cluster = program.one(CLUSTER)
    assert cluster.inputs["slbInternetEnabled"] is bool(cidrs)
    assert [rule for rule in ingress(program) if rule["portRange"] == "6443/6443"] == []
    kubeconfig = yaml.safe_load(reveal(program.one(K8S_PROVIDER).inputs["kubeconfig"]))
    servers = {entry["cluster"]["server"] for entry in kubeconfig["clusters"]}
    if not cidrs:
        assert not program.of_type(LISTENER_ACL)
        assert any("The API server gets no public endpoint" in item.message for item in program.diagnostics)
        assert servers == {cluster.outputs["connections"][0]["apiServerIntranet"]}
        return
    entries = {entry.inputs["entry"] for entry in program.of_type(ACL_ENTRY)}
    vpc = program.one(VPC).inputs["cidrBlock"]
    assert entries == {"100.104.0.0/16", vpc, *pod_ranges(program), *cidrs}
    binding = program.one(LISTENER_ACL)
    assert (binding.inputs["load_balancer_id"], binding.inputs["listener_port"]) == (
        cluster.outputs["slbId"],
        6443,
    )


def network_policy_only_where_enforced(program: ProgramRun) -> None:
    terway = program.settings.config.get("ack-rdma:networkPlugin") == "terway"
    assert bool(program.of_type(NETWORK_POLICY)) is terway
    addons = {addon["name"]: addon for addon in reveal(program.one(CLUSTER).inputs["addons"])}
    if terway:
        assert json.loads(addons["terway-eniip"]["config"])["NetworkPolicy"] == "true"
    else:
        assert "flannel" in addons


def pulls_through_the_vpc(program: ProgramRun) -> None:
    public = program.settings.config["ack-rdma:registryHost"]
    vpc_host = public.replace("-registry.", "-registry-vpc.", 1)
    program.one(LINK)
    spec = inputs(program.one(DAEMON_SET))["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"].startswith(f"{vpc_host}/")
    (helper,) = [
        a for a in program.of_type(ADDON) if a.inputs["name"] == "managed-aliyun-acr-credential-helper"
    ]
    config = json.loads(helper.inputs["config"])
    assert spec["serviceAccountName"] in config["serviceAccount"].split(",")
    assert "*" not in config["serviceAccount"].split(",")
    pushers = listed(program, "registryPushCidrs")
    endpoints = program.of_type(INTERNET)
    assert [entry["entry"] for e in endpoints for entry in reveal(e.inputs["entries"])] == pushers


def preview_mints_nothing(program: ProgramRun) -> None:
    preview = run(program.settings.stack, preview=True)
    assert not [call for call in preview.invocations if call.token == CREDENTIAL]
    assert [call.token for call in program.invocations].count(CREDENTIAL) == 1


CHECKS: dict[str, Callable[[ProgramRun], None]] = {
    "Nothing is open to the internet unless you list it.": nothing_open_unless_listed,
    "Pods on different nodes talk.": pods_talk,
    "The API server is reachable only from the CIDRs in `apiServerIngressCidrs`.": (
        api_server_only_from_listed
    ),
    "A NetworkPolicy only where ACK enforces it.": network_policy_only_where_enforced,
    "Nodes pull the images through the VPC, and only the pulling accounts get credentials.": (
        pulls_through_the_vpc
    ),
    "A preview mints no cluster credentials.": preview_mints_nothing,
}


def test_every_claim_has_a_check() -> None:
    assert claims() == list(CHECKS)


@pytest.mark.parametrize("claim", list(CHECKS))
def test_the_claim_holds(claim: str, runs: dict[str, ProgramRun]) -> None:
    for name, program in runs.items():
        try:
            CHECKS[claim](program)
        except AssertionError as error:
            raise AssertionError(f"{claim} does not hold for {name}: {error}") from None
