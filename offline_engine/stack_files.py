"""A stack's config as the Pulumi CLI hands it to the program: Pulumi.yaml defaults, then Pulumi.<stack>.yaml.

For running the program without the CLI (tests, benchmark, offline plan).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Encrypted values cannot be decrypted without the CLI and the stack's secrets provider. Offline they are
# stand-ins, still marked secret, so the program takes the same path and nothing shows them.
ENCRYPTED_PLACEHOLDER = "[encrypted in the stack file]"


@dataclass(frozen=True)
class StackSettings:
    """Everything the engine needs to run the program for one stack."""

    project: str
    stack: str
    config: Mapping[str, str]
    """Qualified keys (``ack-rdma:vpcCidr``) to values as the CLI passes them (structured ones as JSON)."""
    secret_keys: frozenset[str]
    project_dir: Path

    @property
    def region(self) -> str | None:
        return self.config.get("alicloud:region")


class StackFileError(Exception):
    """A missing or malformed Pulumi.yaml or stack file; the message names the file and the fix."""


def config_value(value: object) -> str:
    """A value the way the Pulumi CLI passes config to a program."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise StackFileError(f"{path}: cannot be read ({error.strerror}).") from None
    except yaml.YAMLError as error:
        raise StackFileError(f"{path}: is not valid YAML ({error}).") from None
    if not isinstance(loaded, dict):
        raise StackFileError(f"{path}: must be a YAML mapping.")
    return loaded


def _qualified(project: str, key: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def stack_names(project_dir: Path = PROJECT_DIR) -> list[str]:
    """The stacks that have a file in the project's stack config directory."""
    project_file = _read_yaml(project_dir / "Pulumi.yaml")
    directory = project_dir / str(project_file.get("stackConfigDir", "."))
    return sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in directory.glob("Pulumi.*.yaml"))


def load_stack_settings(
    stack: str,
    *,
    project_dir: Path = PROJECT_DIR,
    overrides: Mapping[str, object] | None = None,
    secret_overrides: Mapping[str, str] | None = None,
) -> StackSettings:
    """Project defaults, then the stack file, then ``overrides`` (``None`` unsets a key) and
    ``secret_overrides``, all with qualified keys."""
    project_file = _read_yaml(project_dir / "Pulumi.yaml")
    project = str(project_file["name"])
    stack_file = project_dir / str(project_file.get("stackConfigDir", ".")) / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        known = ", ".join(stack_names(project_dir)) or "none"
        raise StackFileError(f"{stack_file}: no such stack file; the stacks here are: {known}.")
    config: dict[str, str] = {}
    secret_keys: set[str] = set()
    for key, declaration in (project_file.get("config") or {}).items():
        if isinstance(declaration, dict) and declaration.get("default") is not None:
            config[_qualified(project, key)] = config_value(declaration["default"])
    for key, value in (_read_yaml(stack_file).get("config") or {}).items():
        qualified = _qualified(project, key)
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[qualified] = ENCRYPTED_PLACEHOLDER
            secret_keys.add(qualified)
        elif value is not None:
            config[qualified] = config_value(value)
    for key, value in (overrides or {}).items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = config_value(value)
    for key, value in (secret_overrides or {}).items():
        config[key] = value
        secret_keys.add(key)
    return StackSettings(project, stack, config, frozenset(secret_keys), project_dir)
