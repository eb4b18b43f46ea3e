"""The Pulumi CLI's checks of Pulumi.yaml and a stack's config, in the CLI's own words, before a program runs.

Read from pulumi/pulumi at commit 1b59498 (the file and line of each rule are given where it is applied):
- ``sdk/go/common/workspace/project.go`` ``(*Project).Validate``: what a declaration under ``config:`` says;
- ``sdk/go/common/resource/config/key.go`` ``ParseKey``: the form of a key;
- ``sdk/go/common/workspace/loaders.go`` ``stackConfigNamespacedWithProject``: a stack key without a namespace
  is the project's;
- ``pkg/workspace/config.go`` ``mergeConfig`` and ``validateStackConfigValue(s)``: required keys, secret keys,
  declared types.
The CLI stops at its first error but for missing keys, which it lists together; here every error is listed,
each in the CLI's wording, so that one run shows all of them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Set
from typing import Any

_TYPES = ("string", "integer", "boolean", "array", "object")


def qualified(project: str, key: str) -> str:
    """A stack file key as the CLI reads it: without a namespace it is the project's (loaders.go line 78)."""
    return key if ":" in key else f"{project}:{key}"


def key_error(key: str) -> str | None:
    """The CLI's refusal of a malformed key (key.go lines 44-70): one colon, or ``<ns>:config:<name>``."""
    colons = key.count(":")
    if colons == 1 or (colons == 2 and key.split(":")[1] == "config"):
        return None
    return (
        f"could not parse {key} as a configuration key "
        "(configuration keys should be of the form `<namespace>:<name>`)"
    )


def full_type_name(declaration: Mapping[str, Any]) -> str:
    """``InferFullTypeName`` (project.go line 760): ``array<string>`` for arrays."""
    items = declaration.get("items")
    if isinstance(items, Mapping):
        return f"array<{full_type_name(items)}>"
    return str(declaration.get("type"))


def _is_integer(value: object) -> bool:
    if isinstance(value, str):
        # Go's strconv.Atoi: optional sign, decimal digits, within 64 bits.
        digits = value[1:] if value[:1] in "+-" else value
        return digits.isascii() and digits.isdigit() and -(2**63) <= int(value) < 2**63
    if isinstance(value, float):
        return math.isfinite(value) and value == math.trunc(value)
    return isinstance(value, int) and not isinstance(value, bool)


def _is_string(value: object) -> bool:
    return isinstance(value, str)


def _is_boolean(value: object) -> bool:
    return value in ("true", "false") or isinstance(value, bool)


def _is_object(value: object) -> bool:
    return isinstance(value, dict)


_SCALAR_CHECKS: dict[str, Callable[[object], bool]] = {
    "string": _is_string,
    "integer": _is_integer,
    "boolean": _is_boolean,
    "object": _is_object,
}


def value_has_type(type_name: str, items: Mapping[str, Any] | None, value: object) -> bool:
    """``ValidateConfigValue`` (project.go lines 771-830) on a value as the CLI holds it: a string for a
    scalar stack value, decoded JSON for a structured one, decoded YAML for a default."""
    check = _SCALAR_CHECKS.get(type_name)
    if check is not None:
        return check(value)
    if not isinstance(value, list) or items is None:
        return False
    return all(value_has_type(str(items.get("type")), items.get("items"), item) for item in value)


def project_errors(project: Mapping[str, Any]) -> list[str]:
    """``(*Project).Validate`` on the ``config:`` declarations (project.go lines 837-885)."""
    name = str(project.get("name") or "")
    if not name:
        return ["project is missing a 'name' attribute"]
    errors: list[str] = []
    for key, declaration in (project.get("config") or {}).items():
        if not isinstance(declaration, Mapping):
            continue  # a bare value: the CLI takes it as the key's value
        if "default" in declaration and "value" in declaration:
            errors.append(f"project config '{key}' cannot have both a 'default' and 'value' attribute")
        typed = "type" in declaration
        if ":" not in key or key.startswith(f"{name}:"):
            if typed and declaration["type"] not in _TYPES:
                # Rejected by the project schema (project.json ``simpleConfigType``); the words are ours.
                errors.append(
                    f"The configuration key '{key}' has type {declaration['type']!r}; Pulumi.yaml allows "
                    f"{', '.join(_TYPES)}"
                )
            elif typed and declaration["type"] == "array" and "items" not in declaration:
                errors.append(
                    f"The configuration key '{key}' declares an array but does not specify the underlying "
                    "type via the 'items' attribute"
                )
            elif (
                typed
                and declaration.get("default") is not None
                and not value_has_type(declaration["type"], declaration.get("items"), declaration["default"])
            ):
                errors.append(
                    f"The default value specified for configuration key '{key}' is not of the expected type "
                    f"'{full_type_name(declaration)}'"
                )
        elif typed:
            errors.append(
                f"Configuration key '{key}' is not namespaced by the project and should not define a type"
            )
        elif declaration.get("default") is not None:
            errors.append(
                f"Configuration key '{key}' is not namespaced by the project and should not define a default "
                "value. Did you mean to use the 'value' attribute instead of 'default'?"
            )
    return errors


def _missing_keys_error(stack: str, missing: list[str]) -> str:
    """``missingStackConfigurationKeysError`` and ``formatMissingKeys`` (config.go lines 30-64)."""
    keys = sorted(missing)
    if len(keys) == 1:
        listed = f"'{keys[0]}'"
    else:
        listed = ", ".join(f"'{key}'" for key in keys[:-2])
        listed += (", " if len(keys) > 2 else "") + f"'{keys[-2]}' and '{keys[-1]}'"
    return f"Stack '{stack}' is missing configuration {'values' if len(keys) > 1 else 'value'} {listed}"


def stack_errors(
    project: Mapping[str, Any], stack: str, config: Mapping[str, object], secure: Set[str]
) -> list[str]:
    """``mergeConfig`` and ``validateStackConfigValues`` (config.go lines 255-365, 66-161).

    ``config``: the stack's qualified keys with their values as the CLI holds them (scalars as strings,
    structured values decoded); ``secure``: the keys stored encrypted, whose values cannot be read here.
    """
    name = str(project.get("name") or "")
    missing: list[str] = []
    errors: list[str] = []
    for key, given in sorted((project.get("config") or {}).items()):
        declaration = given if isinstance(given, Mapping) else {"value": given}
        full = qualified(name, key)
        has_default = declaration.get("default") is not None or declaration.get("value") is not None
        if full not in config:
            # config.go line 319: declared, no default or value, not set, in the project's namespace.
            if not has_default and full.split(":", 1)[0] == name:
                missing.append(key)
            continue
        if "type" not in declaration:
            continue
        if declaration.get("secret") and full not in secure:
            # config.go line 130.
            errors.append(f"Stack '{stack}' with configuration key '{key}' must be encrypted as it's secret")
        elif full not in secure and not value_has_type(
            str(declaration["type"]), declaration.get("items"), config[full]
        ):
            # config.go line 148.
            type_name = full_type_name(declaration)
            errors.append(f"Stack '{stack}' with configuration key '{key}' must be of type '{type_name}'")
    if missing:
        errors.insert(0, _missing_keys_error(stack, missing))
    return errors


def cli_value(value: object) -> object:
    """A stack file value as the CLI holds it for validation: scalars become their text (``createConfigValue``
    / ``object.MarshalString``), structured values stay decoded (config.go line 140)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return value
