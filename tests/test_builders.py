"""Construction logic that needs no engine: builders and the small pure functions of the components."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml

from components.cluster import newest_version
from components.images import image_tag, personal_registry_host
from components.k8s_objects import (
    DevicePluginSpec,
    TestPodSpec,
    build_daemon_set,
    build_registry_pull_secret,
    build_test_objects,
    build_test_pods,
    checkov_skips,
    manifests_yaml,
)
from components.network import ZoneNeed, common_zone
from components.node_pool import (
    RdmaNodePoolArgs,
    SystemNodePoolArgs,
    Taint,
    containerd_config,
    node_labels,
    zone_needs,
)
from components.security import ClusterSecurityGroupArgs, rule_specs
from components.test_pods import perftest_commands


def test_test_pods_are_a_pair_forced_apart() -> None:
    pods = build_test_pods(TestPodSpec(image="registry.cn-shanghai.aliyuncs.com/ns/tools:1", name_prefix="t"))
    assert [pod["metadata"]["name"] for pod in pods] == ["t-0", "t-1"]
    for pod in pods:
        (term,) = pod["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        assert pod["spec"]["containers"][0]["command"] == ["sleep", "infinity"]
        assert "hostNetwork" not in pod["spec"]


def skipped_checks(obj: dict[str, Any]) -> set[str]:
    annotations = obj["metadata"]["annotations"]
    return {value.split("=", 1)[0] for key, value in annotations.items() if key.startswith("checkov.io/skip")}


def test_host_network_test_pods_keep_cluster_dns() -> None:
    (pod, _) = build_test_pods(TestPodSpec(image="r.example.com/t:1", host_network=True))
    assert pod["spec"]["hostNetwork"] is True
    assert pod["spec"]["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert "CKV_K8S_19" in skipped_checks(pod)
    (pod_network, _) = build_test_pods(TestPodSpec(image="r.example.com/t:1"))
    assert "CKV_K8S_19" not in skipped_checks(pod_network)


DIGEST = "r.example.com/t@sha256:" + "c" * 64


@pytest.mark.parametrize("build", ["pods", "daemon set"])
def test_an_image_by_tag_is_pulled_at_every_start_and_says_why_it_has_no_digest(build: str) -> None:
    def objects(image: str) -> list[dict[str, Any]]:
        if build == "pods":
            return build_test_pods(TestPodSpec(image=image))
        return [build_daemon_set(DevicePluginSpec(config_json="{}", image=image))]

    def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
        spec = obj["spec"]
        pod_spec = spec["template"]["spec"] if "template" in spec else spec
        return list(pod_spec["containers"])

    for obj in objects("r.example.com/t:1"):
        assert [c["imagePullPolicy"] for c in containers(obj)] == ["Always"]
        assert "CKV_K8S_43" in skipped_checks(obj)
    for obj in objects(DIGEST):
        assert [c["image"] for c in containers(obj)] == [DIGEST]
        assert all("imagePullPolicy" not in c for c in containers(obj))
        assert "CKV_K8S_43" not in skipped_checks(obj)


def test_checkov_skips_are_numbered_and_refuse_what_checkov_would_misread() -> None:
    assert checkov_skips({"CKV_K8S_8": "idle", "CKV2_K8S_6": "host network"}) == {
        "checkov.io/skip1": "CKV_K8S_8=idle",
        "checkov.io/skip2": "CKV2_K8S_6=host network",
    }
    for reason in ("a=b", " "):
        with pytest.raises(ValueError, match="CKV_K8S_8"):
            checkov_skips({"CKV_K8S_8": reason})


def test_test_objects_come_namespace_first_and_the_policy_selects_the_pair() -> None:
    namespace, account, policy, *pods = build_test_objects(
        TestPodSpec(image=DIGEST, namespace="rdma", name_prefix="t", network_policy=True)
    )
    assert (namespace["kind"], namespace["metadata"]["name"]) == ("Namespace", "rdma")
    assert (account["kind"], account["metadata"]["namespace"]) == ("ServiceAccount", "rdma")
    assert account["automountServiceAccountToken"] is False
    assert (policy["kind"], policy["metadata"]["namespace"]) == ("NetworkPolicy", "rdma")
    assert [pod["metadata"]["namespace"] for pod in pods] == ["rdma", "rdma"]
    assert {pod["spec"]["serviceAccountName"] for pod in pods} == {account["metadata"]["name"]}
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert policy["spec"]["ingress"] == [{"from": [{"podSelector": {"matchLabels": selector}}]}]
    assert all(selector.items() <= pod["metadata"]["labels"].items() for pod in pods)
    other_pair = build_test_pods(TestPodSpec(image=DIGEST, namespace="rdma", name_prefix="u"))
    assert not any(selector.items() <= pod["metadata"]["labels"].items() for pod in other_pair)


def test_no_network_policy_where_ack_does_not_enforce_one() -> None:
    """The default (Flannel): no policy, and the pods say why to checkov instead of pretending."""
    namespace, account, *pods = build_test_objects(TestPodSpec(image=DIGEST))
    assert [obj["kind"] for obj in (namespace, account, *pods)] == [
        "Namespace",
        "ServiceAccount",
        "Pod",
        "Pod",
    ]
    for pod in pods:
        skips = pod["metadata"]["annotations"].values()
        assert any(
            skip.startswith("CKV2_K8S_6=ACK enforces NetworkPolicy only with Terway") for skip in skips
        )


def test_perftest_commands_point_the_client_at_the_server() -> None:
    commands = perftest_commands(TestPodSpec(image="r.example.com/t:1", namespace="rdma"))
    assert commands["server"] == "kubectl exec -n rdma rdma-test-0 -- ib_read_bw -q 30"
    assert commands["client"] == (
        "kubectl exec -n rdma rdma-test-1 -- ib_read_bw -q 30 "
        "\"$(kubectl get pod -n rdma rdma-test-0 -o jsonpath='{.status.podIP}')\""
    )


def test_a_changed_plugin_config_rolls_the_daemonset() -> None:
    first = build_daemon_set(DevicePluginSpec(config_json='{"mode": "hca"}\n', image="r.example.com/p:1"))
    second = build_daemon_set(DevicePluginSpec(config_json='{"mode": "sriov"}\n', image="r.example.com/p:1"))
    annotations = [ds["spec"]["template"]["metadata"]["annotations"] for ds in (first, second)]
    assert annotations[0] != annotations[1]


def test_pull_secret_carries_a_docker_config_for_the_host() -> None:
    secret = build_registry_pull_secret(
        namespace="ns", name="s", host="registry.example.com", username="u", password="p"
    )
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    auth = json.loads(secret["stringData"][".dockerconfigjson"])["auths"]["registry.example.com"]
    assert base64.b64decode(auth["auth"]) == b"u:p"


def test_manifests_yaml_round_trips() -> None:
    pods = build_test_pods(TestPodSpec(image="r.example.com/t:1"))
    assert list(yaml.safe_load_all(manifests_yaml(pods))) == pods


def test_newest_version_compares_numbers_not_text() -> None:
    assert newest_version(["1.9.10-aliyun.1", "1.31.1-aliyun.1", "1.31.10-aliyun.1", "1.31.9-aliyun.2"]) == (
        "1.31.10-aliyun.1"
    )
    with pytest.raises(Exception, match="ack-rdma:kubernetesVersion"):
        newest_version([])


def test_the_zone_is_the_first_that_sells_every_pools_types() -> None:
    zones = {
        "ecs.g8i.4xlarge with cloud_essd": ["cn-shanghai-b", "cn-shanghai-e", "cn-shanghai-l"],
        "ecs.g8ae.4xlarge with cloud_essd": ["cn-shanghai-l", "cn-shanghai-e"],
        "ecs.g8i.xlarge with cloud_essd": ["cn-shanghai-e", "cn-shanghai-l"],
    }
    assert common_zone(zones) == "cn-shanghai-e"
    assert common_zone({"ecs.g8i.4xlarge": ["cn-shanghai-b"]}) == "cn-shanghai-b"


def test_no_zone_selling_every_type_is_a_clear_error_of_bounded_length() -> None:
    with pytest.raises(Exception, match=r"ecs\.g8ae\.4xlarge: cn-shanghai-l\)\. Set ack-rdma:zoneId"):
        common_zone({"ecs.g8i.4xlarge": ["cn-shanghai-b"], "ecs.g8ae.4xlarge": ["cn-shanghai-l"]})
    with pytest.raises(Exception, match=r"ecs\.g8i\.4xlarge: no zone"):
        common_zone({"ecs.g8i.4xlarge": []})
    many = {f"ecs.g8i.{n}xlarge": [f"cn-shanghai-{n}"] for n in range(500)}
    with pytest.raises(Exception, match="and 494 more") as error:
        common_zone(many)
    assert len(str(error.value)) < 1000


def test_zone_needs_cover_every_bought_type_with_its_disk_once() -> None:
    rdma = RdmaNodePoolArgs(instance_types=("ecs.g8i.4xlarge", "ecs.g8ae.4xlarge"))
    second = RdmaNodePoolArgs(
        name="b", instance_types=("ecs.g8i.4xlarge",), system_disk_category="cloud_auto"
    )
    attached = RdmaNodePoolArgs(name="c", instance_types=("ecs.scch5.16xlarge",), existing_instances=("i-1",))
    needs = zone_needs([rdma, second, attached], SystemNodePoolArgs(instance_types=("ecs.g8i.4xlarge",)))
    assert needs == (
        ZoneNeed("ecs.g8i.4xlarge", "cloud_essd"),
        ZoneNeed("ecs.g8ae.4xlarge", "cloud_essd"),
        ZoneNeed("ecs.g8i.4xlarge", "cloud_auto"),
    )
    # The zones data source cannot filter on cloud_auto (its validator lists no such category).
    assert [need.filter_disk for need in needs] == ["cloud_essd", "cloud_essd", None]


def test_node_labels_are_sorted_and_always_mark_rdma() -> None:
    assert node_labels({"zz": "1", "a/b": "2"}) == [
        {"key": "a/b", "value": "2"},
        {"key": "aliyun.accelerator/rdma", "value": "true"},
        {"key": "zz", "value": "1"},
    ]
    assert node_labels({"aliyun.accelerator/rdma": "false"}) == [
        {"key": "aliyun.accelerator/rdma", "value": "true"}
    ]


def test_taints_become_matching_tolerations() -> None:
    assert Taint("rdma", "NoSchedule", "true").toleration() == {
        "key": "rdma",
        "operator": "Equal",
        "value": "true",
        "effect": "NoSchedule",
    }
    assert Taint("rdma", "NoExecute").toleration() == {
        "key": "rdma",
        "operator": "Exists",
        "effect": "NoExecute",
    }


def test_memlock_goes_to_containerd_config_within_the_providers_range() -> None:
    assert containerd_config(9007199254740991).limit_mem_lock == "9007199254740991"
    assert containerd_config(65536).limit_mem_lock == "65536"
    for outside in (65535, 9007199254740992):
        with pytest.raises(ValueError, match=r"outside 65536\.\.9007199254740991"):
            containerd_config(outside)


def test_security_rules_open_only_listed_cidrs() -> None:
    args = ClusterSecurityGroupArgs(vpc_cidr="10.20.0.0/16", pod_cidrs=("172.24.0.0/16",))
    assert [(rule.type, rule.ip_protocol, rule.cidr_ip, rule.from_group) for rule in rule_specs(args)] == [
        ("ingress", "all", None, True),
        ("egress", "all", "0.0.0.0/0", False),
        ("ingress", "icmp", "10.20.0.0/16", False),
        ("ingress", "all", "172.24.0.0/16", False),
    ]
    rules = rule_specs(ClusterSecurityGroupArgs(ssh_cidrs=("10.0.0.0/8",)))
    assert [(rule.port_range, rule.cidr_ip) for rule in rules[4:]] == [("22/22", "10.0.0.0/8")]


def test_image_tags_carry_the_registry_host() -> None:
    assert image_tag(personal_registry_host("cn-shanghai"), "ns", "repo", "1.0") == (
        "registry.cn-shanghai.aliyuncs.com/ns/repo:1.0"
    )
