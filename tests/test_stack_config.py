"""Bad stack config: every problem reported at once, each naming its key and the fix, before any resource."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pytest

from components.config import (
    StackConfig,
    StackConfigError,
    given_config,
    parse_stack_config,
    stack_config_from,
)
from components.config_keys import KEYS_BY_NAME
from offline_engine.mock_cloud import MockCloud
from offline_engine.offline_run import run_program
from offline_engine.stack_files import config_value, load_stack_settings

# What a stack needs beyond the Pulumi.yaml defaults.
BASE: dict[str, object] = {
    "keyName": "ack-rdma",
    "registryInstanceId": "cri-abc123",
    "registryHost": "reg-registry.cn-shanghai.cr.aliyuncs.com",
}


def parse(
    region: str | None = "cn-shanghai", secrets: tuple[str, ...] = (), **overrides: object
) -> StackConfig:
    values = {**BASE, **overrides}
    plain = {name: config_value(value) for name, value in values.items() if value is not None}
    return parse_stack_config(
        plain, {name: pulumi.Output.from_input("pw") for name in secrets}, stack="test", region=region
    )


def problems(**overrides: Any) -> tuple[str, ...]:
    with pytest.raises(StackConfigError) as caught:
        parse(**overrides)
    return caught.value.problems


def test_the_minimal_config_is_valid() -> None:
    config = parse()
    assert [pool.desired_size for pool in config.node_pools] == [2]
    assert config.device_plugin.resource_names == ("rdma/hca",)
    assert config.images is not None and config.images.tag("rdma-device-plugin") == (
        "reg-registry.cn-shanghai.cr.aliyuncs.com/ack-rdma/rdma-device-plugin:0.1.0"
    )


# One case per class of error: the overrides, and what the single problem must say (key, then the fix).
ERROR_CLASSES: dict[str, tuple[Mapping[str, Any], tuple[str, ...]]] = {
    "vpc and pod ranges overlap": (
        {"podCidr": "192.168.128.0/17"},
        ("ack-rdma:podCidr 192.168.128.0/17 overlaps ack-rdma:vpcCidr (192.168.0.0/16)", "disjoint range"),
    ),
    "pod and service ranges overlap": (
        {"serviceCidr": "172.20.16.0/20"},
        ("ack-rdma:serviceCidr 172.20.16.0/20 overlaps ack-rdma:podCidr (172.20.0.0/16)", "disjoint range"),
    ),
    "vswitch outside the vpc": (
        {"vswitchCidr": "10.0.0.0/24"},
        ("ack-rdma:vswitchCidr 10.0.0.0/24 lies outside the VPC (192.168.0.0/16)", "inside vpcCidr"),
    ),
    "vpc not private": (
        {"vpcCidr": "8.8.0.0/16", "vswitchCidr": "8.8.0.0/20"},
        ("ack-rdma:vpcCidr 8.8.0.0/16 is not inside 10.0.0.0/8", "pick one"),
    ),
    "cidr with host bits": (
        {"podCidr": "172.20.0.1/16"},
        ("ack-rdma:podCidr '172.20.0.1/16' is not a CIDR block", "no host bits set"),
    ),
    "too few nodes for the test pods": (
        {"testPods": True, "desiredSize": 1},
        ("ack-rdma:testPods needs at least 2 RDMA nodes", "hold 1", "raise ack-rdma:desiredSize"),
    ),
    "empty instance type list": (
        {"instanceTypes": []},
        ("ack-rdma:instanceTypes must list at least one ECS instance type", "purchase priority"),
    ),
    "unknown plugin mode": (
        {"pluginConfig": {"mode": "rdma"}},
        ("ack-rdma:pluginConfig is rejected by the device plugin", '"rdma" is not a known mode', '"hca"'),
    ),
    "ingress cidr that is not a cidr": (
        {"sshIngressCidrs": ["203.0.113.7/32", "office"]},
        ("ack-rdma:sshIngressCidrs[1] 'office' is not a CIDR block", "203.0.113.7/32 for one"),
    ),
    "bare address as ingress": (
        {"apiServerIngressCidrs": ["203.0.113.7"]},
        ("ack-rdma:apiServerIngressCidrs[0] '203.0.113.7' is not a CIDR block",),
    ),
    "no node login": (
        {"keyName": None},
        ("ack-rdma:keyName and ack-rdma:nodePassword: set exactly one", "pulumi config set --secret"),
    ),
    "two node logins": (
        {"secrets": ("nodePassword",)},
        ("ack-rdma:keyName and ack-rdma:nodePassword: set exactly one",),
    ),
    "no region": (
        {"region": None},
        ("alicloud:region is not set", "pulumi config set alicloud:region cn-shanghai"),
    ),
    "wrong value type": (
        {"testPods": "yes"},
        ("ack-rdma:testPods must be true or false, not 'yes'",),
    ),
    "list where a list belongs": (
        {"instanceTypes": "ecs.scch5.16xlarge"},
        ("ack-rdma:instanceTypes must be a YAML list in the stack file",),
    ),
    "malformed taint": (
        {"nodeTaint": "rdma=true"},
        ("ack-rdma:nodeTaint 'rdma=true' is not a taint", "key=value:Effect"),
    ),
    "bad node label": (
        {"nodeLabels": {"bad key!": "x"}},
        ("ack-rdma:nodeLabels label key 'bad key!' is not a Kubernetes label key",),
    ),
    "pool size out of range": (
        {"desiredSize": 5000},
        ("ack-rdma:desiredSize 5000 is outside 0-1000",),
    ),
    "misspelt node pool field": (
        {"nodePools": [{"name": "a", "desiredSzie": 3}]},
        ("ack-rdma:nodePools[0].desiredSzie is not a node pool field; did you mean 'desiredSize'?",),
    ),
    "duplicate node pool names": (
        {"nodePools": [{"name": "a"}, {"name": "a"}]},
        ("ack-rdma:nodePools[1].name 'a' is used twice",),
    ),
    "attached instances with a size": (
        {"nodePools": [{"name": "a", "existingInstances": ["i-uf6abc"], "desiredSize": 2}]},
        ("ack-rdma:nodePools[0].desiredSize cannot be combined with existingInstances",),
    ),
    "kubeconfig lifetime out of range": (
        {"kubeconfigDurationMinutes": 10},
        ("ack-rdma:kubeconfigDurationMinutes 10 is outside 15-4320",),
    ),
    "unknown cluster edition": (
        {"clusterSpec": "ack.pro.large"},
        ("ack-rdma:clusterSpec 'ack.pro.large' is not an ACK edition",),
    ),
    "enterprise registry without its instance": (
        {"registryInstanceId": None, "registryHost": None},
        (
            "ack-rdma:registryInstanceId is required for registryEdition enterprise",
            "ack-rdma:registryHost is",
        ),
    ),
    "personal registry without its login": (
        {"registryEdition": "personal"},
        ("ack-rdma:registryUsername and ack-rdma:registryPassword are required", "--secret"),
    ),
    "unknown registry edition": (
        {"registryEdition": "premium"},
        ("ack-rdma:registryEdition 'premium' is not an ACR edition",),
    ),
    "prebuilt plugin without a test image": (
        {"pluginImage": "registry.cn-shanghai.aliyuncs.com/acs/rdma-device-plugin:v1"},
        ("ack-rdma:testPodImage is required when ack-rdma:pluginImage is set",),
    ),
    "image without a registry host": (
        {"pluginImage": "rdma-device-plugin:v1", "testPodImage": "tools:v1"},
        (
            "ack-rdma:pluginImage 'rdma-device-plugin:v1' lacks a registry host",
            "ack-rdma:testPodImage 'tools:v1'",
        ),
    ),
    "bad image tag": (
        {"imageVersion": "v1/beta"},
        ("ack-rdma:imageVersion 'v1/beta' is not an image tag",),
    ),
    "metrics port taken by kubelet": (
        {"pluginMetricsPort": 10250},
        ("ack-rdma:pluginMetricsPort 10250 cannot be used on the node",),
    ),
    "bad name prefix": (
        {"namePrefix": "ACK_rdma"},
        ("ack-rdma:namePrefix 'ACK_rdma' is not usable in cloud names",),
    ),
    "bad test pod namespace": (
        {"testPodNamespace": "Default"},
        ("ack-rdma:testPodNamespace 'Default' is not a namespace name",),
    ),
    "test pods in a namespace Kubernetes keeps": (
        {"testPodNamespace": "default"},
        ("ack-rdma:testPodNamespace 'default' is one of Kubernetes' own namespaces", "'rdma-test'"),
    ),
    "expected bandwidth negative": (
        {"checkMinGbits": -1},
        (
            "ack-rdma:checkMinGbits -1 is not a bandwidth ack-rdma-check can expect",
            "a positive number of Gbit/s, or 0 for the share of the instance types' published bandwidth",
        ),
    ),
    "expected bandwidth beyond the instance type": (
        {"checkMinGbits": 40},
        (
            "ack-rdma:checkMinGbits 40 is more than 25 Gbit/s, the most the slowest instance type the pools",
            "Lower it or set it to 0",
        ),
    ),
    "SCC bought": (
        {"instanceTypes": ["ecs.scch5.16xlarge", "ecs.g8i.4xlarge"]},
        (
            "ack-rdma:instanceTypes lists ecs.scch5.16xlarge, which ACK does not take as worker nodes",
            "attach SCC instances you already own with existingInstances",
        ),
    ),
    "instance type outside the catalogue": (
        {"nodePools": [{"name": "a"}, {"name": "b", "instanceTypes": ["ecs.g9z.large"]}]},
        (
            "ack-rdma:nodePools[1].instanceTypes instance type 'ecs.g9z.large' is not in "
            "components/instance_catalogue.py",
            "add it there with its source",
        ),
    ),
    "system disk the instance types do not take": (
        {"systemDiskCategory": "cloud_ssd"},
        (
            "ack-rdma:instanceTypes buys ecs.g8i.4xlarge, ecs.g8ae.4xlarge with system disk 'cloud_ssd'",
            "use one of cloud_essd, cloud_auto",
        ),
    ),
    "GPU and CPU eRDMA types in one pool": (
        {"instanceTypes": ["ecs.g8i.4xlarge", "ecs.gn8is.2xlarge"]},
        ("ack-rdma:instanceTypes a pool mixes GPU eRDMA types (ecs.gn8is.2xlarge)", "pools of their own"),
    ),
    "GPU types without the ofed driver": (
        {"instanceTypes": ["ecs.gn8is.2xlarge"], "erdmaDriver": "compat"},
        ("ack-rdma:erdmaDriver is 'compat', but the RDMA pools buy GPU eRDMA types", "set it to ofed"),
    ),
    "unknown eRDMA driver": (
        {"erdmaDriver": "roce"},
        ("ack-rdma:erdmaDriver 'roce' is not an eRDMA driver mode", "['default', 'compat', 'ofed']"),
    ),
    "eRDMA add-on in the create-time addons": (
        {"addons": [{"name": "csi-plugin"}, {"name": "ack-erdma-controller"}]},
        ("ack-rdma:addons[1] lists ack-erdma-controller", "installs it as an add-on of its own"),
    ),
    "no system node": (
        {"systemPoolSize": 0},
        ("ack-rdma:systemPoolSize 0 is outside 1-1000", "at least one untainted node"),
    ),
    "attach-only pools without a bandwidth": (
        {"existingInstances": ["i-uf6a", "i-uf6b"], "desiredSize": 0},
        ("ack-rdma:checkMinGbits must be set when the RDMA pools only attach existing instances", "Gbit/s"),
    ),
    "image revision with a space": (
        {"imageRevision": "main branch"},
        ("ack-rdma:imageRevision 'main branch' is not a source revision", "commit id or tag"),
    ),
    "image source that is a local path": (
        {"imageSource": "/srv/git/ack-rdma"},
        ("ack-rdma:imageSource '/srv/git/ack-rdma' is not a repository URL", "https://"),
    ),
    "addon without a name": (
        {"addons": [{"config": {"a": 1}}]},
        ("ack-rdma:addons[0].name is missing",),
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CLASSES))
def test_each_error_class_names_its_key_and_fix(case: str) -> None:
    overrides, expected = ERROR_CLASSES[case]
    found = " ".join(problems(**overrides))
    for text in expected:
        assert text in found, f"{case}: {text!r} not in {found!r}"


def test_every_problem_is_reported_at_once_in_one_paragraph() -> None:
    with pytest.raises(StackConfigError) as caught:
        parse(podCidr="192.168.0.0/24", instanceTypes=[], sshIngressCidrs=["nope"], keyName=None)
    error = caught.value
    assert len(error.problems) == 4
    message = str(error)
    assert "\n" not in message
    assert message.startswith(
        "Stack config of stack 'test' is invalid, nothing was declared (4 problems): (1) "
    )
    assert all(f"({index}) " in message for index in range(1, 5))
    assert message.endswith("Fix the keys in stacks/Pulumi.test.yaml or with `pulumi config set`.")
    assert isinstance(error, pulumi.RunError)


def test_bad_config_stops_the_program_before_any_resource() -> None:
    class CountingCloud(MockCloud):
        registered = 0

        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
            CountingCloud.registered += 1
            return super().new_resource(args)

    settings = load_stack_settings(
        "dev", overrides={"ack-rdma:desiredSize": 1, "ack-rdma:vswitchCidr": "10.1.0.0/24"}
    )
    with pytest.raises(StackConfigError) as caught:
        run_program(settings, mocks=CountingCloud())
    assert CountingCloud.registered == 0
    assert [problem.split(" ")[0] for problem in caught.value.problems] == [
        "ack-rdma:vswitchCidr",
        "ack-rdma:testPods",
    ]


def test_every_key_has_its_declared_type_checked() -> None:
    for key in KEYS_BY_NAME.values():
        if key.type in ("integer", "boolean", "array", "object") and not key.secret:
            malformed: dict[str, Any] = {key.name: "{not" if key.type != "integer" else "2.5"}
            with pytest.raises(StackConfigError, match=key.qualified):
                parse(**malformed)


def test_a_misspelt_key_names_the_key_it_meant() -> None:
    found = " ".join(problems(desiredSzie=3, nodeCont=2))
    assert "ack-rdma:desiredSzie is not a config key of this program; did you mean 'desiredSize'?" in found
    assert "ack-rdma:nodeCont is not a config key of this program;" in found


def test_values_of_the_wrong_json_type_name_the_type() -> None:
    found = " ".join(problems(desiredSize="2.5", nodeLabels=["a"], sshIngressCidrs=[1]))
    assert "ack-rdma:desiredSize must be a whole number, not '2.5'." in found
    assert "ack-rdma:nodeLabels must be a YAML mapping in the stack file" in found
    assert "ack-rdma:sshIngressCidrs[0] must be a string, not 1." in found


def test_a_long_value_is_shortened_in_the_error() -> None:
    with pytest.raises(StackConfigError) as caught:
        parse(namePrefix="x" * 20_000)
    message = str(caught.value)
    assert "ack-rdma:namePrefix 'xxxx" in message
    assert "(20002 characters)" in message
    assert len(message) < 400


def test_the_message_stays_bounded_however_many_problems() -> None:
    with pytest.raises(StackConfigError) as caught:
        unknown: dict[str, Any] = {f"unknownKey{index}": "x" * 1000 for index in range(500)}
        parse(**unknown)
    assert len(caught.value.problems) == 500
    message = str(caught.value)
    assert "(and 488 more of the same kinds)" in message
    assert len(message) < 4000


def test_a_kubernetes_version_must_be_an_ack_version() -> None:
    found = " ".join(problems(kubernetesVersion="banana"))
    assert "ack-rdma:kubernetesVersion 'banana' is not an ACK Kubernetes version" in found
    assert parse(kubernetesVersion="1.33.3-aliyun.1").cluster.kubernetes_version == "1.33.3-aliyun.1"
    assert parse(kubernetesVersion="").cluster.kubernetes_version is None


def test_a_secret_key_given_in_plaintext_is_refused() -> None:
    found = " ".join(problems(nodePassword="hunter2", keyName=""))
    assert "ack-rdma:nodePassword is stored in plaintext but must be secret" in found
    assert "hunter2" not in found


def test_the_program_reads_the_config_as_the_language_host_hands_it_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pulumi-language-python puts the config in PULUMI_CONFIG and the secret keys in
    PULUMI_CONFIG_SECRET_KEYS; its exec script loads both with set_all_config before the program runs."""
    config = {f"ack-rdma:{name}": config_value(value) for name, value in BASE.items()}
    config |= {"alicloud:region": "cn-shanghai", "ack-rdma:nodePassword": "pw", "ack-rdma:desiredSzie": "3"}
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["ack-rdma:nodePassword"]))
    runtime_config = pulumi.runtime.config
    runtime_config.set_all_config(
        runtime_config.get_config_env(), runtime_config.get_config_secret_keys_env()
    )
    try:
        with pytest.raises(StackConfigError) as caught:
            stack_config_from(given_config(), runtime_config.is_config_secret, "dev")
    finally:
        runtime_config.set_all_config({}, [])
    # The secret is taken as one (only "set exactly one" of the two logins is wrong), the misspelt key named.
    assert sorted(problem.split(" ")[0] for problem in caught.value.problems) == [
        "ack-rdma:desiredSzie",
        "ack-rdma:keyName",
    ]


def test_control_characters_in_unknown_keys_are_escaped() -> None:
    found = problems(**{"desired\nSize": 3})
    assert found == (
        "ack-rdma:desired\\nSize is not a config key of this program; did you mean 'desiredSize'?",
    )
