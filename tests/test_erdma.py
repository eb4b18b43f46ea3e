"""eRDMA without the engine: the instance catalogue, the add-on's config and its offline schema, the rules
about the cluster's other add-ons."""

from __future__ import annotations

import json
import re

import pytest

from components import defaults
from components.erdma import (
    ADDON_NAME,
    DRIVER_MODES,
    ErdmaControllerArgs,
    addon_config,
    cluster_addon_problems,
    terway_whitelist_warning,
)
from components.instance_catalogue import (
    CATALOGUE,
    CatalogueError,
    ceiling_gbits,
    common_disk_categories,
    default_check_min_gbits,
    expected_gbits,
    facts_of,
    required_driver,
    unsupported_by_ack,
)
from offline_engine.addon_config import AddonConfigError, check_addon_config, schema_of


def test_catalogue_holds_the_published_g8i_figures() -> None:
    facts = facts_of("ecs.g8i.4xlarge")
    assert (facts.vcpus, facts.memory_gib, facts.baseline_gbits, facts.burst_gbits) == (16, 64, 12, 25)
    assert facts.family == "ecs.g8i"
    assert facts_of("ecs.g8i.24xlarge").burst_gbits is None
    assert "general-purpose-instance-families" in facts.source


def test_every_catalogued_type_takes_an_essd_system_disk_and_names_its_source() -> None:
    for facts in CATALOGUE.values():
        assert facts.name.startswith("ecs.")
        assert "cloud_essd" in facts.disk_categories
        assert "cloud_efficiency" not in facts.disk_categories
        assert facts.source
        assert facts.burst_gbits is None or facts.burst_gbits > facts.baseline_gbits


def test_an_unknown_type_is_refused_with_the_fix() -> None:
    with pytest.raises(CatalogueError, match=r"'ecs.g9x.large' is not in components/instance_catalogue.py"):
        facts_of("ecs.g9x.large")
    long_name = "ecs." + "x" * 5000
    with pytest.raises(CatalogueError) as error:
        facts_of(long_name)
    assert len(str(error.value)) < 2000


def test_the_check_expects_the_slowest_type_a_pool_may_buy() -> None:
    assert expected_gbits(["ecs.g8i.24xlarge", "ecs.g8ae.32xlarge"]) == 50
    assert expected_gbits(["ecs.g8i.4xlarge", "ecs.g8ae.4xlarge"]) == 12
    assert default_check_min_gbits(["ecs.g8i.4xlarge", "ecs.g8ae.4xlarge"]) == 9
    assert default_check_min_gbits(["ecs.g8i.24xlarge", "ecs.g8ae.32xlarge"]) == 40
    assert ceiling_gbits(["ecs.g8i.4xlarge", "ecs.g8i.24xlarge"]) == 25
    with pytest.raises(CatalogueError, match="at least one"):
        expected_gbits([])


def test_disk_categories_common_to_all_types() -> None:
    assert common_disk_categories(["ecs.g8i.4xlarge", "ecs.gn8is.2xlarge"]) == ("cloud_essd", "cloud_auto")
    assert common_disk_categories([]) == ()


def test_gpu_types_need_ofed_and_do_not_mix_with_cpu_types() -> None:
    assert required_driver(["ecs.gn8is.2xlarge", "ecs.gn8v.4xlarge"]) == "ofed"
    assert required_driver(["ecs.g8i.4xlarge"]) is None
    with pytest.raises(CatalogueError, match="GPU eRDMA instances cannot talk eRDMA"):
        required_driver(["ecs.g8i.4xlarge", "ecs.gn8is.2xlarge"])
    with pytest.raises(CatalogueError) as error:
        required_driver(["ecs.g8i.4xlarge"] + ["ecs.gn8is.2xlarge"] * 5000)
    assert len(str(error.value)) < 400


def test_scc_is_recognised_as_unsupported_by_ack() -> None:
    assert unsupported_by_ack("ecs.scch5.16xlarge")
    assert unsupported_by_ack("ecs.sccg7.32xlarge")
    assert not unsupported_by_ack("ecs.g8i.4xlarge")


@pytest.mark.parametrize("driver", DRIVER_MODES)
@pytest.mark.parametrize("allocate_all", [True, False])
def test_every_config_the_component_renders_passes_the_addon_schema(driver: str, allocate_all: bool) -> None:
    config = addon_config(ErdmaControllerArgs(driver=driver, allocate_all_devices=allocate_all))
    assert config == {"agent": {"preferDriver": driver, "allocateAllDevices": allocate_all}}
    check_addon_config(ADDON_NAME, json.dumps(config))


def test_default_addon_config_is_compat_with_all_devices() -> None:
    assert addon_config(ErdmaControllerArgs()) == {
        "agent": {"preferDriver": defaults.ERDMA_DRIVER, "allocateAllDevices": True}
    }
    with pytest.raises(ValueError, match="not one of default, compat, ofed"):
        addon_config(ErdmaControllerArgs(driver="roce"))


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"agent": {"preferDriver": "roce"}}, "agent/preferDriver"),
        ({"agent": {"allocateAllDevices": "yes"}}, "agent/allocateAllDevices"),
        ({"agent": {"preferDrivers": "compat"}}, "agent"),
        ({"agnet": {"preferDriver": "compat"}}, "(top level)"),
    ],
)
def test_the_offline_schema_refuses_what_the_addon_would_reject_or_ignore(
    config: dict[str, object], where: str
) -> None:
    with pytest.raises(AddonConfigError, match=re.escape(f"ack-erdma-controller: config at {where}:")):
        check_addon_config(ADDON_NAME, json.dumps(config))


def test_addons_without_an_offline_schema_are_not_checked() -> None:
    assert schema_of("flannel") is None
    check_addon_config("flannel", '{"anything": 1}')
    with pytest.raises(AddonConfigError, match="not JSON"):
        check_addon_config(ADDON_NAME, "{agent")


def test_schema_copy_names_its_sources() -> None:
    schema = schema_of(ADDON_NAME)
    assert schema is not None
    assert "alibabacloud-erdma-controller" in schema["$comment"]
    assert schema["properties"]["agent"]["properties"]["preferDriver"]["enum"] == ["", *DRIVER_MODES]


def test_cluster_addons_must_not_repeat_the_addon_or_turn_on_terways_erdma() -> None:
    assert cluster_addon_problems([("flannel", None), ("managed-aliyun-acr-credential-helper", "{}")]) == []
    ((at, repeat),) = cluster_addon_problems([("flannel", None), (ADDON_NAME, None)])
    assert at == 1
    assert "installs it as an add-on of its own" in repeat
    ((at, terway),) = cluster_addon_problems([("terway-eniip", '{"enable_erdma": true}')])
    assert at == 0
    assert "Terway's own eRDMA support" in terway
    assert cluster_addon_problems([("terway-eniip", {"enable_erdma": False})]) == []


def test_terway_gets_the_eni_whitelist_warning_and_flannel_none() -> None:
    assert terway_whitelist_warning(["flannel"]) is None
    warning = terway_whitelist_warning(["terway-eniip", "flannel"])
    assert warning is not None
    assert '{"eni_tag_filter": {"creator": "terway"}}' in warning
    assert "kube-system/eni-config" in warning
