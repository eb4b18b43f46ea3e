"""The program with stack config beyond the two stack files: other registries, prebuilt images, several
pools, attached instances, preview. Every Kubernetes object any of them declares must validate."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pulumi
import pytest
import yaml

from components.images import enterprise_credentials
from offline_engine.offline_run import ProgramRun, is_secret, reveal
from offline_engine.stack_files import ENCRYPTED_PLACEHOLDER, load_stack_settings

RunStack = Callable[..., ProgramRun]

SCHEMA_VERSION = kubernetes_validate.latest_version()
PERSONAL = {"registryEdition": "personal", "registryUsername": "ops@example.com", "registryHost": None}
PREBUILT = {
    "pluginImage": "registry.cn-shanghai.aliyuncs.com/acs/rdma-device-plugin@sha256:" + "ab" * 32,
    "testPodImage": "registry.cn-shanghai.aliyuncs.com/acs/rdma-tools:0.1.0",
}
POOLS = [
    {"name": "rdma-a", "desiredSize": 3, "taint": "rdma=a:NoSchedule", "labels": {"rail": "a"}},
    {
        "name": "rdma-b",
        "existingInstances": ["i-uf6abc", "i-uf6def"],
        "instanceTypes": ["ecs.sccg7.32xlarge"],
    },
]


def kubernetes_objects(run: ProgramRun) -> list[dict[str, Any]]:
    manifest = list(yaml.safe_load_all(reveal(run.outputs["testPodManifest"])))
    return run.kubernetes_objects() + manifest


def test_kubernetes_objects_validate_against_the_newest_schema(run_stack: RunStack) -> None:
    runs = [
        run_stack("dev"),
        run_stack("prod"),
        run_stack("dev", secrets={"registryPassword": "pw"}, **PERSONAL),
        run_stack("dev", testPodHostNetwork=True, nodeTaint="rdma:NoExecute"),
        run_stack(
            "dev",
            pluginConfig={"configList": [{"resourceName": "hca_a", "rdmaHcaMax": 100, "selectors": {}}]},
        ),
        run_stack("dev", networkPlugin="terway", podVswitchCidrs=["192.168.16.0/20"]),
    ]
    kinds = set()
    for run in runs:
        for obj in kubernetes_objects(run):
            assert SCHEMA_VERSION.startswith(kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True))
            kinds.add(obj["kind"])
    assert kinds == {
        "ConfigMap",
        "ServiceAccount",
        "DaemonSet",
        "Pod",
        "Secret",
        "Namespace",
        "NetworkPolicy",
    }


def test_schema_validation_catches_a_misspelt_field() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "x"},
        "spec": {"containers": [], "hostNetwrk": True},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, SCHEMA_VERSION, strict=True)


def test_personal_edition_pushes_with_the_password_and_pulls_with_a_secret(run_stack: RunStack) -> None:
    run = run_stack("dev", secrets={"registryPassword": "s3cret"}, **PERSONAL)
    assert run.one("alicloud:cr/namespace:Namespace").inputs["name"] == "ack-rdma"
    assert len(run.of_type("alicloud:cr/repo:Repo")) == 2
    assert not any("getRegistryEnterpriseInstances" in call.token for call in run.invocations)
    image = run.of_type("docker-build:index:Image")[0]
    (registry,) = reveal(image.inputs["registries"])
    assert registry == {
        "address": "registry.cn-shanghai.aliyuncs.com",
        "username": "ops@example.com",
        "password": "s3cret",
    }
    secrets = run.of_type("kubernetes:core/v1:Secret")
    assert sorted(secret.inputs["metadata"]["namespace"] for secret in secrets) == [
        "kube-system",
        "rdma-test",
    ]
    for secret in secrets:
        assert is_secret(secret.inputs["stringData"])
        docker_config = json.loads(reveal(secret.inputs["stringData"])[".dockerconfigjson"])
        assert docker_config["auths"]["registry.cn-shanghai.aliyuncs.com"]["password"] == "s3cret"
    daemon_set = reveal(run.one("kubernetes:apps/v1:DaemonSet").inputs["spec"])
    assert daemon_set["template"]["spec"]["imagePullSecrets"] == [{"name": "ack-rdma-registry"}]
    pods = [obj for obj in yaml.safe_load_all(reveal(run.outputs["testPodManifest"])) if obj["kind"] == "Pod"]
    assert len(pods) == 2
    for pod in pods:
        assert pod["spec"]["imagePullSecrets"] == [{"name": "ack-rdma-registry"}]


def test_prebuilt_images_build_nothing(run_stack: RunStack) -> None:
    run = run_stack("dev", **PREBUILT)
    assert not run.of_type("docker-build:index:Image")
    assert not run.of_type("ack-rdma:images:PluginImages")
    assert reveal(run.outputs["pluginImage"]) == PREBUILT["pluginImage"]
    container = reveal(run.one("kubernetes:apps/v1:DaemonSet").inputs["spec"])["template"]["spec"][
        "containers"
    ][0]
    assert container["image"] == PREBUILT["pluginImage"]
    for pod in run.of_type("kubernetes:core/v1:Pod"):
        assert reveal(pod.inputs["spec"])["containers"][0]["image"] == PREBUILT["testPodImage"]


def test_several_pools_with_attached_instances(run_stack: RunStack) -> None:
    run = run_stack("dev", nodePools=POOLS)
    pools = {
        pool.inputs["nodePoolName"]: reveal(pool.inputs)
        for pool in run.of_type("alicloud:cs/nodePool:NodePool")
    }
    assert set(pools) == {"rdma-a", "rdma-b", "system"}
    assert pools["rdma-a"]["desiredSize"] == "3"
    assert pools["rdma-a"]["instanceTypes"] == ["ecs.g8i.4xlarge", "ecs.g8ae.4xlarge"]
    assert pools["rdma-a"]["labels"] == [
        {"key": "aliyun.accelerator/rdma", "value": "true"},
        {"key": "rail", "value": "a"},
    ]
    attached = pools["rdma-b"]
    assert attached["instances"] == ["i-uf6abc", "i-uf6def"]
    assert attached["formatDisk"] is False and attached["keepInstanceName"] is True
    assert "desiredSize" not in attached
    assert len(reveal(run.outputs["nodePoolIds"])) == 2
    # The walkthrough's SCC survives only as instances a user attaches, with the plan saying ACK does not
    # support the family; nothing of it is bought, and its zone is not looked up.
    (warning,) = [d.message for d in run.diagnostics if d.severity == "warning" and "'rdma-b'" in d.message]
    assert "ACK no longer supports the walkthrough's SCC family (ecs.sccg7.32xlarge)" in warning
    looked_up = {call.args["availableInstanceType"] for call in run.invocations if "getZones" in call.token}
    assert "ecs.sccg7.32xlarge" not in looked_up
    tolerations = reveal(run.one("kubernetes:apps/v1:DaemonSet").inputs["spec"])["template"]["spec"][
        "tolerations"
    ]
    assert {"key": "rdma", "operator": "Equal", "value": "a", "effect": "NoSchedule"} in tolerations


def test_preview_neither_builds_nor_pushes(run_stack: RunStack) -> None:
    run = run_stack("dev", preview=True)
    images = run.of_type("docker-build:index:Image")
    # build_on_preview off keeps the preview from building and pushing; push itself is the same as in `up`,
    # or every preview would show the images changing (tests/test_program_preview.py).
    assert images and all(
        image.inputs["buildOnPreview"] is False and image.inputs["push"] is True for image in images
    )
    # Nothing pushed, so no digest: the objects name the tag the deploy will push.
    (plugin_tag,) = next(image for image in images if image.inputs["target"] == "plugin").inputs["tags"]
    daemon_set = reveal(run.one("kubernetes:apps/v1:DaemonSet").inputs["spec"])
    # The nodes pull the tag through the Enterprise Edition instance's VPC endpoint.
    pulled = plugin_tag.replace("-registry.", "-registry-vpc.", 1)
    assert daemon_set["template"]["spec"]["containers"][0]["image"] == pulled
    assert reveal(run.outputs["pluginImage"]) == pulled
    assert "@sha256:" not in reveal(run.outputs["testPodManifest"])
    # A tag may name another image by the time a node pulls: every start pulls it afresh.
    pods = [reveal(pod.inputs["spec"]) for pod in run.of_type("kubernetes:core/v1:Pod")]
    for pod_spec in [daemon_set["template"]["spec"], *pods]:
        assert pod_spec["containers"][0]["imagePullPolicy"] == "Always"


def stack_config_pod_cidr(run: ProgramRun) -> str:
    return str(run.one("alicloud:cs/managedKubernetes:ManagedKubernetes").inputs["podCidr"])


def test_listed_ingress_cidrs_open_exactly_their_ports(run_stack: RunStack) -> None:
    run = run_stack("dev", sshIngressCidrs=["203.0.113.7/32"], apiServerIngressCidrs=["0.0.0.0/0"])
    # Besides the VPC's ICMP and the pods' traffic, which the cluster itself needs.
    own = {run.one("alicloud:vpc/network:Network").inputs["cidrBlock"], stack_config_pod_cidr(run)}
    ingress = sorted(
        (rule.inputs["portRange"], rule.inputs["cidrIp"])
        for rule in run.of_type("alicloud:ecs/securityGroupRule:SecurityGroupRule")
        if rule.inputs["type"] == "ingress" and rule.inputs.get("cidrIp") not in (None, *own)
    )
    # The API server is guarded by its listener's ACL, not by the nodes' group (test_program_network_access).
    assert ingress == [("22/22", "203.0.113.7/32")]
    entries = [
        rule.inputs["entry"] for rule in run.of_type("alicloud:slb/aclEntryAttachment:AclEntryAttachment")
    ]
    assert "0.0.0.0/0" in entries


def test_given_zone_is_used_without_a_lookup(run_stack: RunStack) -> None:
    run = run_stack("dev", zoneId="cn-shanghai-l")
    assert run.one("alicloud:vpc/switch:Switch").inputs["zoneId"] == "cn-shanghai-l"
    assert not any(call.token == "alicloud:index/getZones:getZones" for call in run.invocations)


def test_encrypted_stack_values_stay_secret_offline(run_stack: RunStack, tmp_path: Any) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "Pulumi.yaml").write_text("name: ack-rdma\nruntime: python\nstackConfigDir: stacks\n")
    (tmp_path / "stacks" / "Pulumi.s.yaml").write_text(
        "config:\n  ack-rdma:nodePassword:\n    secure: v1:AAAA\n  ack-rdma:desiredSize: 3\n"
    )
    settings = load_stack_settings("s", project_dir=tmp_path)
    assert settings.config["ack-rdma:nodePassword"] == ENCRYPTED_PLACEHOLDER
    assert settings.secret_keys == {"ack-rdma:nodePassword"}
    assert settings.config["ack-rdma:desiredSize"] == "3"
    run = run_stack("dev", secrets={"nodePassword": "pw"}, keyName=None)
    for pool in run.of_type("alicloud:cs/nodePool:NodePool"):
        assert is_secret(pool.inputs["password"]) and "keyName" not in pool.inputs


def test_enterprise_credentials_name_a_missing_instance() -> None:
    with pytest.raises(pulumi.RunError, match=r"cri-nothere was not found .* ack-rdma:registryInstanceId"):
        enterprise_credentials("cri-nothere", [])
