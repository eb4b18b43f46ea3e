"""The device plugin's config.json, checked by the plugin's own validator before the program ships it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from rdma_device_plugin.config import ConfigError, parse_config

__all__ = ["ConfigError", "ValidatedPluginConfig", "validate_plugin_config"]


@dataclass(frozen=True)
class ValidatedPluginConfig:
    """``config.json`` as the ConfigMap carries it, and the resources the plugin will advertise from it."""

    json_text: str
    resource_names: tuple[str, ...]


def validate_plugin_config(config: Mapping[str, object]) -> ValidatedPluginConfig:
    """Render and validate; raises the plugin's ``ConfigError`` (one paragraph) when it is rejected."""
    json_text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    parsed = parse_config(json_text, source="ack-rdma:pluginConfig")
    return ValidatedPluginConfig(json_text, tuple(resource.resource_name for resource in parsed.resources))
