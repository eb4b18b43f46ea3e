"""Pulumi.yaml declares exactly the keys the program reads, and the stack files use only declared keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components import defaults
from components.cluster import AckClusterArgs
from components.config import parse_stack_config
from components.config_keys import KEYS, PROJECT
from components.erdma import ErdmaControllerArgs
from components.instance_catalogue import default_check_min_gbits
from components.network import NetworkArgs
from components.node_pool import RdmaNodePoolArgs, SystemNodePoolArgs
from offline_engine.stack_files import PROJECT_DIR, config_value, stack_names

PROVIDER_NAMESPACES = ("alicloud:", "pulumi:")


def read(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def test_pulumi_yaml_declares_every_key_with_type_description_and_default() -> None:
    project = read(PROJECT_DIR / "Pulumi.yaml")
    assert project["name"] == PROJECT
    assert project["runtime"]["name"] == "python"
    assert project["stackConfigDir"] == "stacks"
    assert project["config"] == {key.name: key.declaration() for key in KEYS if key.declared}
    for declaration in project["config"].values():
        assert declaration["type"] in ("string", "integer", "boolean", "array", "object")
        assert declaration["description"]
        # The CLI stops on a declared key without a default that a stack does not set.
        assert "default" in declaration


@pytest.mark.parametrize("stack", stack_names())
def test_stack_files_use_only_declared_keys(stack: str) -> None:
    declared = {key.qualified for key in KEYS if key.declared}
    for key in read(PROJECT_DIR / "stacks" / f"Pulumi.{stack}.yaml")["config"]:
        assert key in declared or key.startswith(PROVIDER_NAMESPACES), f"{stack}: {key} is not declared"


def test_stack_files_cover_the_issue() -> None:
    assert set(stack_names()) >= {"dev", "prod"}


def test_declared_defaults_are_the_components_defaults() -> None:
    """Config made of nothing but Pulumi.yaml's defaults gives the args dataclasses' own defaults."""
    plain = {key.name: config_value(key.default) for key in KEYS if key.declared}
    config = parse_stack_config(
        {
            **plain,
            "keyName": "k",
            "registryInstanceId": "cri-x",
            "registryHost": "x-registry.cn-shanghai.cr.aliyuncs.com",
        },
        {},
        stack="defaults",
        region="cn-shanghai",
    )
    tags = config.tags
    assert config.network == NetworkArgs(tags=tags)
    assert config.cluster == AckClusterArgs(tags=tags)
    assert config.node_pools == (RdmaNodePoolArgs(),)
    assert config.system_pool == SystemNodePoolArgs()
    assert config.erdma == ErdmaControllerArgs()
    assert config.device_plugin.spec.metrics_port == defaults.PLUGIN_METRICS_PORT
    assert config.test_pods_enabled is defaults.TEST_PODS
    assert config.check_min_gbits == default_check_min_gbits(defaults.INSTANCE_TYPES)
