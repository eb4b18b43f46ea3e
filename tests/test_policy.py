"""The CrossGuard pack: each rule passes compliant resources and reports a violating variant.

The rules run as pure functions (``evaluate``) over hand-written resources and over those the real program
declares under the mock engine; and through the real pack, served from its own virtualenv exactly as the
Pulumi CLI starts it and questioned over the analyzer gRPC protocol the CLI speaks.
"""

from __future__ import annotations

import copy
import json
import select
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from components import instance_catalogue, k8s_objects
from offline_engine.offline_run import ProgramRun
from offline_engine.policy_records import declared
from policy.ack_rdma_policy import rules
from policy.ack_rdma_policy.rules import PolicyConfigError, ResourceRecord, evaluate

REPO = Path(__file__).resolve().parents[1]
POLICY_DIR = REPO / "policy"
PROJECT = "ack-rdma"
SG_RULE = rules.SECURITY_GROUP_RULE
NODE_POOL = rules.NODE_POOL
CLUSTER = "alicloud:cs/managedKubernetes:ManagedKubernetes"
POD = "kubernetes:core/v1:Pod"
DAEMON_SET = "kubernetes:apps/v1:DaemonSet"
PLUGIN_IMAGE = "registry.cn-shanghai.aliyuncs.com/ack-rdma/rdma-device-plugin@sha256:" + "a" * 64
TOOLS_IMAGE = "registry.cn-shanghai.aliyuncs.com/ack-rdma/rdma-tools@sha256:" + "b" * 64


def record(resource_type: str, name: str, props: Mapping[str, Any], stack: str = "dev") -> ResourceRecord:
    return ResourceRecord(type=resource_type, name=name, props=props, stack=stack)


def sg_rule(name: str, **props: Any) -> ResourceRecord:
    return record(SG_RULE, name, {"securityGroupId": "sg-uf6test", "policy": "accept", **props})


def daemon_set() -> dict[str, Any]:
    spec = k8s_objects.DevicePluginSpec(config_json='{"mode": "hca"}', image=PLUGIN_IMAGE)
    return k8s_objects.build_daemon_set(spec)


def rdma_test_pods(*, host_network: bool = False) -> list[dict[str, Any]]:
    spec = k8s_objects.TestPodSpec(image=TOOLS_IMAGE, host_network=host_network)
    return k8s_objects.build_test_pods(spec)


def compliant() -> list[ResourceRecord]:
    """What the program declares, in the shapes the engine hands to policies."""
    plugin = k8s_objects.DevicePluginSpec(config_json='{"mode": "hca"}', image=PLUGIN_IMAGE)
    return [
        sg_rule("members", type="ingress", ipProtocol="all", portRange="-1/-1", sourceSecurityGroupId="sg-x"),
        sg_rule("egress", type="egress", ipProtocol="all", portRange="-1/-1", cidrIp="0.0.0.0/0"),
        sg_rule("ssh-0", type="ingress", ipProtocol="tcp", portRange="22/22", cidrIp="192.0.2.0/24"),
        sg_rule(
            "deny-all", type="ingress", ipProtocol="all", portRange="-1/-1", cidrIp="0.0.0.0/0", policy="drop"
        ),
        record(
            NODE_POOL,
            "rdma",
            {
                "nodePoolName": "ack-rdma-rdma",
                "instanceTypes": ["ecs.g8i.4xlarge", "ecs.g8ae.4xlarge"],
                "desiredSize": "2",
                "labels": [
                    {"key": "aliyun.accelerator/rdma", "value": "true"},
                    {"key": "team", "value": "hpc"},
                ],
            },
        ),
        record(CLUSTER, "ack", {"clusterSpec": "ack.pro.small", "deletionProtection": False}, stack="dev"),
        record(
            CLUSTER, "ack-prod", {"clusterSpec": "ack.pro.small", "deletionProtection": True}, stack="prod"
        ),
        record("kubernetes:core/v1:ConfigMap", "rdma-devices", k8s_objects.build_config_map(plugin)),
        record("kubernetes:core/v1:ServiceAccount", "sa", k8s_objects.build_service_account(plugin)),
        record(DAEMON_SET, "rdma-device-plugin", daemon_set()),
        *(record(POD, pod["metadata"]["name"], pod) for pod in rdma_test_pods()),
        record(POD, "rdma-cm-0", rdma_test_pods(host_network=True)[0]),
    ]


def _variant(
    base: ResourceRecord,
    name: str,
    change: Any,
    *,
    resource_type: str | None = None,
    stack: str | None = None,
) -> ResourceRecord:
    props = copy.deepcopy(dict(base.props))
    change(props)
    return ResourceRecord(
        type=resource_type or base.type,
        name=name,
        props=props,
        stack=stack if stack is not None else base.stack,
    )


def _by_name(name: str) -> ResourceRecord:
    return next(item for item in compliant() if item.name == name)


def _set(path: tuple[str | int, ...], key: str, value: Any) -> Any:
    def change(props: dict[str, Any]) -> None:
        node: Any = props
        for step in path:
            node = node[step]
        node[key] = value

    return change


DS_POD: tuple[str | int, ...] = ("spec", "template", "spec")
DS_CONTAINER_SC = (*DS_POD, "containers", 0, "securityContext")
POD_CONTAINER_SC: tuple[str | int, ...] = ("spec", "containers", 0, "securityContext")

# One or more violating variants per rule: (id, record, the rule that must report it).
VIOLATIONS: list[tuple[str, ResourceRecord, str]] = [
    (
        "ssh-from-anywhere",
        sg_rule("ssh-open", type="ingress", ipProtocol="tcp", portRange="22/22", cidrIp="0.0.0.0/0"),
        "no-public-ingress",
    ),
    (
        "all-ports-from-anywhere-ipv6",
        sg_rule("v6-open", type="ingress", ipProtocol="all", portRange="-1/-1", ipv6CidrIp="::/0"),
        "no-public-ingress",
    ),
    (
        "range-wider-than-allowed",
        sg_rule("web-range", type="ingress", ipProtocol="tcp", portRange="80/443", cidrIp="0.0.0.0/0"),
        "no-public-ingress",
    ),
    (
        "node-pool-without-rdma-label",
        _variant(_by_name("rdma"), "plain-pool", _set((), "labels", [{"key": "team", "value": "hpc"}])),
        "rdma-node-pool-label",
    ),
    (
        "node-pool-rdma-label-false",
        _variant(
            _by_name("rdma"),
            "false-pool",
            _set((), "labels", [{"key": "aliyun.accelerator/rdma", "value": "false"}]),
        ),
        "rdma-node-pool-label",
    ),
    (
        "privileged-test-pod",
        _variant(_by_name("rdma-test-0"), "priv-pod", _set(POD_CONTAINER_SC, "privileged", True)),
        "no-privileged-containers",
    ),
    (
        "privileged-init-container-in-cronjob",
        record(
            "kubernetes:batch/v1:CronJob",
            "priv-cron",
            {
                "spec": {
                    "schedule": "@daily",
                    "jobTemplate": {
                        "spec": {
                            "template": {
                                "spec": {
                                    "initContainers": [
                                        {"name": "setup", "securityContext": {"privileged": True}}
                                    ],
                                    "containers": [{"name": "main", "image": "busybox"}],
                                }
                            }
                        }
                    },
                }
            },
        ),
        "no-privileged-containers",
    ),
    (
        "daemonset-keeps-capabilities",
        _variant(
            _by_name("rdma-device-plugin"), "keeps-caps", _set(DS_CONTAINER_SC, "capabilities", {"drop": []})
        ),
        "daemonset-drops-all-capabilities",
    ),
    (
        "daemonset-patch-drops-only-net-raw",
        _variant(
            _by_name("rdma-device-plugin"),
            "patch-net-raw",
            _set(DS_CONTAINER_SC, "capabilities", {"drop": ["NET_RAW"]}),
            resource_type="kubernetes:apps/v1:DaemonSetPatch",
        ),
        "daemonset-drops-all-capabilities",
    ),
    (
        "rdma-pod-adds-net-admin",
        _variant(
            _by_name("rdma-test-1"),
            "net-admin-pod",
            _set(POD_CONTAINER_SC, "capabilities", {"drop": ["ALL"], "add": ["IPC_LOCK", "NET_ADMIN"]}),
        ),
        "rdma-pod-capabilities",
    ),
    (
        "pool-buys-scc",
        _variant(_by_name("rdma"), "buys-scc", _set((), "instanceTypes", ["ecs.scch5.16xlarge"])),
        "node-pool-buys-no-scc",
    ),
    (
        "prod-cluster-unprotected",
        _variant(_by_name("ack-prod"), "ack-prod-open", _set((), "deletionProtection", False)),
        "prod-cluster-deletion-protection",
    ),
    (
        "prod-cluster-protection-unset",
        record(CLUSTER, "ack-prod-unset", {"clusterSpec": "ack.pro.small"}, stack="prod"),
        "prod-cluster-deletion-protection",
    ),
]


def _found(report: rules.Report) -> set[tuple[str, str]]:
    return {(violation.policy, violation.resource_name) for violation in report.violations}


def test_compliant_resources_pass_every_rule_and_every_rule_looks_at_some() -> None:
    report = evaluate(compliant())
    assert report.violations == ()
    assert {name for name, count in report.checked.items() if count > 0} == set(rules.RULES_BY_NAME)


@pytest.mark.parametrize(
    ("variant", "expected"), [(v[1], v[2]) for v in VIOLATIONS], ids=[v[0] for v in VIOLATIONS]
)
def test_violating_variant_is_reported_by_its_rule_only(variant: ResourceRecord, expected: str) -> None:
    report = evaluate([*compliant(), variant])
    assert _found(report) == {(expected, variant.name)}
    assert all(
        violation.message.endswith(".") and "'" in violation.message for violation in report.violations
    )


def test_every_rule_has_a_violating_variant() -> None:
    assert {expected for _, _, expected in VIOLATIONS} == set(rules.RULES_BY_NAME)


def test_public_port_listed_in_config_is_allowed_and_struct_floats_are_accepted() -> None:
    https = sg_rule("https", type="ingress", ipProtocol="tcp", portRange="443/443", cidrIp="0.0.0.0/0")
    assert _found(evaluate([https])) == {("no-public-ingress", "https")}
    for ports in ([443], [443.0]):
        assert evaluate([https], {"no-public-ingress": {"allowedPublicIngressPorts": ports}}).violations == ()
    everything = sg_rule("all", type="ingress", ipProtocol="all", portRange="-1/-1", cidrIp="0.0.0.0/0")
    config = {"no-public-ingress": {"allowedPublicIngressPorts": [443]}}
    assert _found(evaluate([everything], config)) == {("no-public-ingress", "all")}


def test_rdma_capability_rule_leaves_pods_without_rdma_requests_alone() -> None:
    pod = copy.deepcopy(rdma_test_pods()[0])
    container = pod["spec"]["containers"][0]
    container["resources"] = {"limits": {"cpu": "1"}}
    container["securityContext"]["capabilities"]["add"] = ["NET_ADMIN"]
    assert evaluate([record(POD, "plain", pod)]).violations == ()
    container["resources"] = {"requests": {"rdma/hca_shared_devices_a": "1"}}
    assert _found(evaluate([record(POD, "plain", pod)])) == {("rdma-pod-capabilities", "plain")}


def test_rdma_request_in_a_deployment_template_is_checked() -> None:
    pod_spec = copy.deepcopy(rdma_test_pods()[0]["spec"])
    pod_spec["containers"][0]["securityContext"]["capabilities"]["add"] = ["SYS_ADMIN"]
    deployment = {"spec": {"replicas": 1, "template": {"metadata": {}, "spec": pod_spec}}}
    report = evaluate([record("kubernetes:apps/v1:Deployment", "bench", deployment)])
    assert _found(report) == {("rdma-pod-capabilities", "bench")}
    assert "SYS_ADMIN" in report.violations[0].message


def test_the_pack_knows_the_unsupported_families_the_program_knows() -> None:
    assert rules.UNSUPPORTED_BY_ACK_PREFIXES == instance_catalogue.UNSUPPORTED_BY_ACK_PREFIXES


def test_attaching_scc_instances_is_not_a_purchase() -> None:
    def attach_scc(props: dict[str, Any]) -> None:
        props.update(instanceTypes=["ecs.scch5.16xlarge"], instances=["i-uf6scc01"])
        del props["desiredSize"]

    assert evaluate([_variant(_by_name("rdma"), "attached-scc", attach_scc)]).violations == ()


def test_config_exempts_non_rdma_pools_and_protects_other_stacks() -> None:
    plain = _variant(_by_name("rdma"), "system", _set((), "labels", []))
    assert evaluate([plain], {"rdma-node-pool-label": {"nonRdmaNodePools": ["system"]}}).violations == ()
    staging = record(CLUSTER, "ack-staging", {"deletionProtection": False}, stack="staging")
    assert evaluate([staging]).violations == ()
    config = {"prod-cluster-deletion-protection": {"protectedStacks": ["prod", "staging"]}}
    assert _found(evaluate([staging], config)) == {("prod-cluster-deletion-protection", "ack-staging")}


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"no-such-policy": {}}, "unknown policies no-such-policy"),
        ({"no-public-ingress": {"allowedPorts": [22]}}, "unknown key(s) allowedPorts"),
        (
            {"no-public-ingress": {"allowedPublicIngressPorts": [70000]}},
            "no-public-ingress.allowedPublicIngressPorts",
        ),
        ({"no-public-ingress": {"allowedPublicIngressPorts": ["443"]}}, "like [443]"),
        ({"no-public-ingress": {"allowedPublicIngressPorts": 443}}, "must be a list of port numbers"),
        ({"no-public-ingress": {"allowedPublicIngressPorts": [True]}}, "must be a list of port numbers"),
        ({"prod-cluster-deletion-protection": {"protectedStacks": "prod"}}, 'like ["prod"]'),
        ({"rdma-node-pool-label": {"nonRdmaNodePools": [""]}}, "non-empty names"),
    ],
)
def test_malformed_config_names_the_key_and_the_fix(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PolicyConfigError) as raised:
        evaluate(compliant(), config)
    assert fragment in str(raised.value)
    assert "\n" not in str(raised.value)


def test_stack_comes_from_the_urn() -> None:
    urn = f"urn:pulumi:prod::{PROJECT}::ack-rdma:cluster:AckCluster${CLUSTER}::ack"
    assert rules.stack_of_urn(urn) == "prod"
    for bad in ("prod::ack-rdma::type::name", "urn:pulumi:::ack-rdma::t::n", "urn:pulumi:prod"):
        with pytest.raises(ValueError, match="not a Pulumi resource URN"):
            rules.stack_of_urn(bad)


# --- the resources the real program declares under the mock engine ------------------------------------------


def test_the_program_declares_nothing_the_pack_rejects(program_runs: dict[str, ProgramRun]) -> None:
    for stack, run in program_runs.items():
        report = evaluate(declared(run))
        assert report.violations == (), stack
        assert {name for name, count in report.checked.items() if count == 0} == set(), stack


def _public_ingress(props: dict[str, Any]) -> None:
    props.pop("sourceSecurityGroupId", None)
    props["cidrIp"] = "0.0.0.0/0"


def _buy_scc(props: dict[str, Any]) -> None:
    props["instanceTypes"] = ["ecs.sccg7.32xlarge", *props["instanceTypes"]]


def _drop_rdma_label(props: dict[str, Any]) -> None:
    props["labels"] = [label for label in props["labels"] if label["key"] != rules.RDMA_NODE_LABEL_KEY]


# For each rule, a real resource of the program made to violate it: (rule, stack, type, pick, change).
PROGRAM_VARIANTS: list[tuple[str, str, str, Any, Any]] = [
    ("no-public-ingress", "dev", SG_RULE, lambda props: props["type"] == "ingress", _public_ingress),
    ("rdma-node-pool-label", "dev", NODE_POOL, lambda props: "labels" in props, _drop_rdma_label),
    ("node-pool-buys-no-scc", "prod", NODE_POOL, lambda props: "labels" in props, _buy_scc),
    (
        "no-privileged-containers",
        "dev",
        DAEMON_SET,
        lambda props: True,
        _set(DS_CONTAINER_SC, "privileged", True),
    ),
    (
        "daemonset-drops-all-capabilities",
        "prod",
        DAEMON_SET,
        lambda props: True,
        _set(DS_CONTAINER_SC, "capabilities", {"drop": ["NET_RAW"]}),
    ),
    (
        "rdma-pod-capabilities",
        "dev",
        POD,
        lambda props: True,
        _set(POD_CONTAINER_SC, "capabilities", {"drop": ["ALL"], "add": ["IPC_LOCK", "SYS_ADMIN"]}),
    ),
    (
        "prod-cluster-deletion-protection",
        "prod",
        CLUSTER,
        lambda props: True,
        _set((), "deletionProtection", False),
    ),
]


def test_every_rule_has_a_violating_variant_of_a_program_resource() -> None:
    assert {variant[0] for variant in PROGRAM_VARIANTS} == set(rules.RULES_BY_NAME)


@pytest.mark.parametrize(
    ("rule", "stack", "resource_type", "pick", "change"),
    PROGRAM_VARIANTS,
    ids=[v[0] for v in PROGRAM_VARIANTS],
)
def test_a_program_resource_made_to_violate_a_rule_is_reported(
    program_runs: dict[str, ProgramRun], rule: str, stack: str, resource_type: str, pick: Any, change: Any
) -> None:
    records = declared(program_runs[stack])
    target = next(item for item in records if item.type == resource_type and pick(item.props))
    broken = _variant(target, target.name, change)
    report = evaluate([broken if item is target else item for item in records])
    assert _found(report) == {(rule, target.name)}


# --- the pack as the Pulumi CLI runs it ---------------------------------------------------------------------


# The first test that questions the pack also creates its venv on a fresh machine (~15-40 s of pip install).
pack_test = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def policy_python() -> Path:
    venv = subprocess.run(
        [
            "bash",
            str(REPO / "scripts/tool-venv.sh"),
            str(REPO / "build/tools/policy-venv"),
            str(POLICY_DIR / "requirements.txt"),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout.strip()
    return Path(venv) / "bin/python"


@pytest.fixture(scope="module")
def analyzer(policy_python: Path) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    # The CLI runs the pack directory with the pack's interpreter and reads the analyzer's port from stdout.
    process = subprocess.Popen(
        [str(policy_python), "-u", str(POLICY_DIR)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        port = process.stdout.readline().strip() if ready else ""
        assert port.isdigit(), f"policy pack did not report its port: {port!r} {process.poll()}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(json.loads(json.dumps(value)))
    return struct


def _analyze(
    stub: analyzer_pb2_grpc.AnalyzerStub, item: ResourceRecord
) -> list[analyzer_pb2.AnalyzeDiagnostic]:
    urn = f"urn:pulumi:{item.stack}::{PROJECT}::{item.type}::{item.name}"
    request = analyzer_pb2.AnalyzeRequest(
        type=item.type, properties=_struct(item.props), urn=urn, name=item.name
    )
    return list(stub.Analyze(request, timeout=10).diagnostics)


PACK_CONFIG = {"no-public-ingress": {"allowedPublicIngressPorts": [443]}}


@pack_test
def test_pack_declares_every_rule_as_mandatory_with_its_config_schema(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=10)
    assert info.name == "ack-rdma"
    assert {policy.name for policy in info.policies} == set(rules.RULES_BY_NAME)
    assert {policy.enforcementLevel for policy in info.policies} == {analyzer_pb2.MANDATORY}
    schemas = {policy.name: set(policy.configSchema.properties) for policy in info.policies}
    assert schemas["no-public-ingress"] == {"allowedPublicIngressPorts"}
    assert schemas["prod-cluster-deletion-protection"] == {"protectedStacks"}


@pack_test
def test_pack_reports_exactly_what_the_rules_report(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    analyzer.Configure(
        analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig={
                name: analyzer_pb2.PolicyConfig(
                    enforcementLevel=analyzer_pb2.MANDATORY, properties=_struct(props)
                )
                for name, props in PACK_CONFIG.items()
            }
        ),
        timeout=10,
    )
    https = sg_rule("https", type="ingress", ipProtocol="tcp", portRange="443/443", cidrIp="0.0.0.0/0")
    items = [*compliant(), https, *(variant for _, variant, _ in VIOLATIONS)]
    expected = {
        item.name: sorted((v.policy, v.message) for v in evaluate([item], PACK_CONFIG).violations)
        for item in items
    }
    actual = {
        item.name: sorted(
            (diagnostic.policyName, diagnostic.message.split("\n", 1)[1])
            for diagnostic in _analyze(analyzer, item)
        )
        for item in items
    }
    assert actual == expected
    assert sum(len(found) for found in actual.values()) >= len(VIOLATIONS)


@pack_test
def test_pack_defers_values_unknown_during_preview(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    unknown_bool = "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"  # the engine's sentinel for an unknown boolean
    cluster = record(CLUSTER, "ack-prod-preview", {"deletionProtection": unknown_bool}, stack="prod")
    [diagnostic] = _analyze(analyzer, cluster)
    assert diagnostic.enforcementLevel == analyzer_pb2.ADVISORY
    assert "can't run policy 'prod-cluster-deletion-protection'" in diagnostic.message
    assert "during preview" in diagnostic.message
