"""A stack's config as the Pulumi CLI hands it to the program: Pulumi.yaml defaults, then Pulumi.<stack>.yaml.

For running the program without the CLI (tests, benchmark, offline plan). The files are read as the CLI reads
them (``offline_engine.stack_yaml``) and checked as the CLI checks them before any program runs
(``offline_engine.cli_config_rules``), plus what the CLI lets through in silence but never means well: a stack
file without a ``config:`` section (or with ``confg:``), other unknown top-level keys, and keys without a
value (``null``, which the CLI passes as an empty string with a warning).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.config_schema import printable
from offline_engine import cli_config_rules
from offline_engine.stack_yaml import YamlFileError, load_yaml_file

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Encrypted values cannot be decrypted without the CLI and the stack's secrets provider. Offline they are
# stand-ins, still marked secret, so the program takes the same path and nothing shows them.
ENCRYPTED_PLACEHOLDER = "[encrypted in the stack file]"
# The fields of a stack file (pulumi/pulumi sdk/go/common/workspace/project.go, ProjectStack, lines 1229-1241
# at commit 1b59498); the CLI ignores any other top-level key.
STACK_FILE_KEYS = ("secretsprovider", "encryptedkey", "encryptionsalt", "config", "environment")
MAX_LISTED = 12
"""Problems spelt out in one error; the rest are counted."""
_FIX = "Fix the file (see stacks/Pulumi.dev.yaml for the layout)."


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

    def __init__(self, message: str) -> None:
        super().__init__(printable(message))


def config_value(value: object) -> str:
    """A value the way the Pulumi CLI passes config to a program."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def _read_yaml(path: Path, *, empty_ok: bool = False) -> dict[str, Any]:
    try:
        loaded = load_yaml_file(str(path), _FIX)
    except YamlFileError as error:
        raise StackFileError(str(error)) from None
    if loaded is None and empty_ok:
        return {}  # the CLI reads an empty stack file as one without config (loaders.go line 186)
    if not isinstance(loaded, dict):
        raise StackFileError(f"{path}: must be a YAML mapping. {_FIX}")
    return loaded


def _raise_for(path: Path, problems: list[str], fix: str) -> None:
    if not problems:
        return
    listed = " ".join(
        f"({index}) {text}{'' if text.endswith(('.', '?')) else '.'}"
        for index, text in enumerate(problems[:MAX_LISTED], start=1)
    )
    if len(problems) > MAX_LISTED:
        listed += f" (and {len(problems) - MAX_LISTED} more)"
    count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
    raise StackFileError(f"{path}: {count}: {listed} {fix}")


def stack_names(project_dir: Path = PROJECT_DIR) -> list[str]:
    """The stacks that have a file in the project's stack config directory."""
    project_file = _read_yaml(project_dir / "Pulumi.yaml")
    directory = project_dir / str(project_file.get("stackConfigDir", "."))
    return sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in directory.glob("Pulumi.*.yaml"))


def _shown_key(key: object) -> str:
    text = str(key)
    return text if len(text) <= 80 else f"{text[:70]}...({len(text)} characters)"


def _stack_file_problems(document: Mapping[Any, Any]) -> list[str]:
    problems: list[str] = []
    unknown = [str(key) for key in document if key not in STACK_FILE_KEYS]
    if "config" not in document:
        close = difflib.get_close_matches("config", unknown, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}:?" if close else "; the keys of the stack go under config:."
        problems.append(f"no config: section{hint}")
        unknown = [key for key in unknown if key not in close]
    elif not isinstance(document["config"], dict | None):
        problems.append("config: must be a mapping of keys to values.")
    problems.extend(
        f"{_shown_key(key)}: is not a stack file field (the Pulumi CLI ignores it); "
        + (
            f"did you mean {close[0]}:?"
            if (close := difflib.get_close_matches(key, STACK_FILE_KEYS, n=1))
            else f"a stack file holds {', '.join(STACK_FILE_KEYS)}."
        )
        for key in unknown
    )
    return problems


def _stack_values(
    project: str, section: Mapping[Any, Any], problems: list[str]
) -> tuple[dict[str, object], set[str]]:
    """The stack file's values by qualified key, and the keys stored encrypted; ``problems`` gets the rest."""
    values: dict[str, object] = {}
    secret_keys: set[str] = set()
    for key, value in section.items():
        qualified = cli_config_rules.qualified(project, str(key))
        if (key_error := cli_config_rules.key_error(qualified)) is not None:
            problems.append(key_error)
        elif value is None:
            # The CLI warns "No value for configuration key" and passes "" (loaders.go lines 379-409).
            problems.append(
                f"{_shown_key(qualified)} has no value (null; the Pulumi CLI would pass an empty string); "
                "give it one, or remove the line to take the key's default."
            )
        elif isinstance(value, dict) and set(value) == {"secure"}:
            values[qualified] = ENCRYPTED_PLACEHOLDER
            secret_keys.add(qualified)
        else:
            values[qualified] = value
    return values, secret_keys


def load_stack_settings(
    stack: str,
    *,
    project_dir: Path = PROJECT_DIR,
    stack_file: Path | None = None,
    overrides: Mapping[str, object] | None = None,
    secret_overrides: Mapping[str, str] | None = None,
) -> StackSettings:
    """Project defaults, then the stack file (``stack_file``, else the project's file of ``stack``), then
    ``overrides`` (``None`` unsets a key) and ``secret_overrides``, all with qualified keys. Raises
    StackFileError for what the Pulumi CLI would refuse, and for what it would let through by mistake."""
    project_path = project_dir / "Pulumi.yaml"
    project_file = _read_yaml(project_path)
    _raise_for(project_path, cli_config_rules.project_errors(project_file), "Fix the config: declarations.")
    project = str(project_file["name"])
    if stack_file is None:
        stack_file = project_dir / str(project_file.get("stackConfigDir", ".")) / f"Pulumi.{stack}.yaml"
        if not stack_file.exists():
            known = ", ".join(stack_names(project_dir)) or "none"
            raise StackFileError(f"{stack_file}: no such stack file; the stacks here are: {known}.")
    document = _read_yaml(stack_file, empty_ok=True)
    problems = _stack_file_problems(document)
    stack_values: dict[str, object] = {}
    secret_keys: set[str] = set()
    if not problems:
        stack_values, secret_keys = _stack_values(project, document.get("config") or {}, problems)
    if not problems:
        held = {key: cli_config_rules.cli_value(value) for key, value in stack_values.items()}
        problems.extend(cli_config_rules.stack_errors(project_file, stack, held, secret_keys))
    _raise_for(stack_file, problems, f"Fix the file or set the keys with `pulumi config set -s {stack}`.")
    config: dict[str, str] = {}
    for key, declaration in (project_file.get("config") or {}).items():
        if isinstance(declaration, dict) and declaration.get("default") is not None:
            config[cli_config_rules.qualified(project, key)] = config_value(declaration["default"])
    config.update({key: config_value(value) for key, value in stack_values.items()})
    for key, override in (overrides or {}).items():
        if override is None:
            config.pop(key, None)
        else:
            config[key] = config_value(override)
    for key, secret in (secret_overrides or {}).items():
        config[key] = secret
        secret_keys.add(key)
    return StackSettings(project, stack, config, frozenset(secret_keys), project_dir)
