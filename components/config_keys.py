"""The keys Pulumi.yaml declares, derived from the schema (``components.config_schema``).

The Pulumi CLI treats a declared key with neither ``default`` nor ``value`` that a stack does not set as
required and stops before the program runs (pulumi/pulumi ``pkg/workspace/config.go``, ``mergeConfig``, the
``!foundOnStack && !hasValue && !hasDefault`` branch, line 319 at commit 1b59498). So every declared key has
a default, and an optional key's default is one the program reads as "unset" ("" for strings).

Secret keys are not declared: the CLI merges a default into the stack config as plaintext and then requires
every ``secret: true`` key to be encrypted ("must be encrypted as it's secret", same file,
``validateStackConfigValues`` -> ``validateStackConfigValue``, line 130), so a secret key could only be
required, and a stack that logs in with a key pair would then need a node password. The program itself
refuses a plaintext value for them (``components.config``).
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from components.config_schema import PROJECT, StackConfigModel

__all__ = ["KEYS", "KEYS_BY_NAME", "PROJECT", "ConfigKey", "ConfigType"]

ConfigType = Literal["string", "integer", "boolean", "array", "object"]


@dataclass(frozen=True)
class ConfigKey:
    """One project-level config key as Pulumi.yaml declares it."""

    name: str
    type: ConfigType
    description: str
    default: object
    items: ConfigType | None = None
    """Item type of an array."""
    secret: bool = False

    @property
    def qualified(self) -> str:
        return f"{PROJECT}:{self.name}"

    @property
    def declared(self) -> bool:
        """Pulumi.yaml declares it (secret keys are not: see the module's docstring)."""
        return not self.secret

    def declaration(self) -> dict[str, object]:
        """The key's entry under ``config:`` in Pulumi.yaml."""
        entry: dict[str, object] = {"type": self.type, "description": self.description}
        if self.items is not None:
            entry["items"] = {"type": self.items}
        entry["default"] = self.default
        return entry


def _pulumi_type(annotation: Any) -> tuple[ConfigType, ConfigType | None]:
    """The Pulumi config type (and item type) of a field's Python type."""
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        (inner,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _pulumi_type(inner)
    if origin is list:
        (item,) = typing.get_args(annotation)
        return "array", _pulumi_type(item)[0]
    if origin is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return "object", None
    scalar: dict[object, ConfigType] = {str: "string", int: "integer", bool: "boolean"}
    return scalar.get(annotation, "string"), None


def _is_secret(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("secret"))


def _default(field: FieldInfo) -> object:
    """The default as Pulumi.yaml writes it (models as plain mappings, without their unset fields)."""
    value = field.default
    if isinstance(value, list):
        return [
            item.model_dump(by_alias=True, exclude_defaults=True) if isinstance(item, BaseModel) else item
            for item in value
        ]
    return value


def _key(name: str, field: FieldInfo) -> ConfigKey:
    type_, items = _pulumi_type(field.annotation)
    return ConfigKey(
        name=field.alias or name,
        type=type_,
        description=field.description or "",
        default=_default(field),
        items=items,
        secret=_is_secret(field),
    )


KEYS: tuple[ConfigKey, ...] = tuple(
    _key(name, field) for name, field in StackConfigModel.model_fields.items()
)
KEYS_BY_NAME = {key.name: key for key in KEYS}
