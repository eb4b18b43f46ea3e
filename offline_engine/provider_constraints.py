"""The Terraform provider's schema constraints, enforced on what the program declares, as ``pulumi up`` would.

The rows live in ``provider_constraints.yaml`` (generated from aliyun/terraform-provider-alicloud, each with
its file and line). The checks follow hashicorp/terraform-plugin-sdk v1.17.2 ``helper/schema/schema.go``
(``schemaMap.validate``), the SDK the provider is built on:

- "set" means present in the raw config (``ResourceConfig.Get``), not ``GetOk``: an explicit ``false``, ``0``
  or ``""`` is set; only an absent (``None``) argument is not. So ``is_enterprise_security_group=False``
  still conflicts with ``security_group_id``.
- ExactlyOneOf and AtLeastOneOf are checked whether or not the argument itself is set; Required,
  RequiredWith, ConflictsWith and validators only when it is.
- A value that is unknown (a preview's not-yet-created ids) is not validated, and an unknown conflicting key
  is skipped (it may turn out unset); ExactlyOneOf counts an unknown key as possibly set.

Failures read as the Pulumi CLI shows a provider's check failure ("<type> resource '<name>' has a problem:
<reason>", pulumi/pulumi diag 2002) with the reason as pulumi-terraform-bridge passes it on
(``pkg/tfbridge/adapt_check_failures.go``: the SDK's "required field is not set" becomes "Missing required
property", "conflicts with" gains "Examine values at"); data sources fail as the Python SDK reports a failed
invoke ("invoke of <token> failed: <reason> ()").
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.output import Unknown
from pulumi.runtime import rpc

from ack_rdma_check.input_files import shorten

TABLE_PATH = Path(__file__).with_name("provider_constraints.yaml")
# alicloud/validators.go appends this to every error of its own validators (skipResourceSchemaValidation).
PROVIDER_VALIDATOR_NOTE = (
    "[NOTE] set env variable TF_SKIP_RESOURCE_SCHEMA_VALIDATION to true can skip the error and get a warning"
)
_ECHO_LIMIT = 48
AUTONAME_MAX_LENGTH = 255  # pulumi-alicloud provider/resources.go: prov.SetAutonaming(255, "-")
_ABSENT = object()


@dataclass(frozen=True)
class Row:
    """One constraint of one argument (Terraform path, ``block.argument``; ``*`` for list elements)."""

    kind: str
    argument: str
    line: int
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Schema:
    token: str
    terraform: str
    file: str
    rows: tuple[Row, ...]
    autonames: str | None = None
    """The argument the bridge fills with ``<resource name>-<7 hex>`` when left out (``name``), if any."""
    pulumi_names: Mapping[str, str] = field(default_factory=dict)
    """Terraform names whose Pulumi name is not their camelCase (the bridge pluralizes list names:
    ``entry_list`` -> ``entryLists``)."""


@dataclass(frozen=True)
class ConstraintTable:
    repository: str
    revision: str
    resources: Mapping[str, Schema]
    invokes: Mapping[str, Schema]

    def source(self, schema: Schema, row: Row) -> str:
        return f"{self.repository}@{self.revision[:12]} {schema.file}:{row.line}"


@dataclass(frozen=True)
class Violation:
    row: Row
    reason: str
    """The failure as the provider (through the bridge) words it."""
    pulumi_path: str


class ProviderConstraintError(pulumi.RunError):
    """A declared resource or invoke that the provider's schema refuses, worded as ``pulumi up`` shows it."""

    def __init__(self, message: str, violations: Sequence[Violation]) -> None:
        super().__init__(message)
        self.violations = tuple(violations)


def _schemas(entries: Mapping[str, Any]) -> dict[str, Schema]:
    schemas: dict[str, Schema] = {}
    for token, entry in entries.items():
        rows = tuple(
            Row(
                kind=row["kind"],
                argument=row["argument"],
                line=row["line"],
                params={key: value for key, value in row.items() if key not in ("kind", "argument", "line")},
            )
            for row in entry["rows"]
        )
        schemas[token] = Schema(
            token=token,
            terraform=entry["terraform"],
            file=entry["file"],
            rows=rows,
            autonames=entry.get("pulumi_autonames"),
            pulumi_names=entry.get("pulumi_names", {}),
        )
    return schemas


@functools.cache
def load_table(path: Path = TABLE_PATH) -> ConstraintTable:
    data = yaml.safe_load(path.read_text())
    return ConstraintTable(
        repository=data["provider"]["repository"],
        revision=data["provider"]["revision"],
        resources=_schemas(data["resources"]),
        invokes=_schemas(data["invokes"]),
    )


def pulumi_name(terraform_name: str) -> str:
    """The bridge's name for a Terraform argument: ``vswitch_ids`` -> ``vswitchIds``."""
    head, *rest = terraform_name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _sdk_module(token: str) -> Path:
    """The pulumi_alicloud module of a type token (``alicloud:cs/nodePool:NodePool``: ``cs/node_pool.py``)."""
    module, name = token.split(":")[1].split("/")
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    root = Path(importlib.import_module("pulumi_alicloud").__file__ or "").parent
    return root / ("" if module == "index" else module) / f"{snake}.py"


_GETTER = re.compile(r'@pulumi\.getter(?:\(name="(\w+)"\))?\n(?:\s+@[^\n]*\n)*\s+def (\w+)\(')


def sdk_argument_names(token: str) -> set[str]:
    """Wire (camelCase) names the installed pulumi_alicloud module of ``token`` and its module's input types
    use: what the engine receives."""
    names: set[str] = set()
    module = _sdk_module(token)
    for path in (module, module.parent / "_inputs.py"):
        if path.exists():
            text = path.read_text()
            names.update(wire or python for wire, python in _GETTER.findall(text))
            names.update(re.findall(r"__args__\['(\w+)'\]", text))
    return names


def _plain(value: Any) -> Any:
    return _plain(rpc.unwrap_rpc_secret(value)) if rpc.is_rpc_secret(value) else value


def _is_known(value: Any) -> bool:
    value = _plain(value)
    if isinstance(value, Unknown) or value == rpc.UNKNOWN:
        return False
    if isinstance(value, list):
        return all(_is_known(item) for item in value)
    if isinstance(value, dict):
        return all(_is_known(item) for item in value.values())
    return True


def _is_set(value: Any) -> bool:
    return value is not _ABSENT and _plain(value) is not None


def _elements(node: Any) -> list[Any]:
    """A block's elements: Pulumi flattens a MaxItems-1 block to one object."""
    node = _plain(node)
    if isinstance(node, list):
        return node
    return [node] if isinstance(node, dict) else []


@dataclass(frozen=True)
class _Location:
    key: str
    """Terraform key as the SDK names it in errors (``taints.0.effect``)."""
    pulumi_path: str
    value: Any
    """``_ABSENT`` when the argument is not in the config."""


def _locations(
    config: Any, segments: Sequence[str], names: Mapping[str, str], key: str = "", path: str = ""
) -> Iterator[_Location]:
    """Every place ``segments`` names in ``config``: one per element of each list-of-blocks on the way.
    ``names``: the schema's Pulumi names that are not plain camelCase (see ``Schema.pulumi_names``)."""
    segment, rest = segments[0], segments[1:]
    node = _plain(config)
    if segment == "*":
        for index, item in enumerate(node if isinstance(node, list) else []):
            yield from _tail(item, rest, names, f"{key}.{index}", f"{path}[{index}]")
        return
    if not isinstance(node, dict):
        return
    name = names.get(segment) or pulumi_name(segment)
    value = node.get(name, _ABSENT)
    here_key = f"{key}.{segment}" if key else segment
    here_path = f"{path}.{name}" if path else name
    if not rest or rest[0] == "*":
        yield from _tail(value, rest, names, here_key, here_path)
        return
    if not _is_set(value) or not _is_known(value):
        return
    plain = _plain(value)
    for index, item in enumerate(_elements(plain)):
        item_path = f"{here_path}[{index}]" if isinstance(plain, list) else here_path
        yield from _locations(item, rest, names, f"{here_key}.{index}", item_path)


def _tail(
    value: Any, rest: Sequence[str], names: Mapping[str, str], key: str, path: str
) -> Iterator[_Location]:
    if rest:
        if _is_set(value) and _is_known(value):
            yield from _locations(value, rest, names, key, path)
        return
    yield _Location(key, path, value)


def _absolute(config: Mapping[str, Any], key: str, names: Mapping[str, str]) -> Any:
    """The value at an SDK key such as ``security_group_id`` or ``scaling_config.0.min_size``."""
    node: Any = config
    for segment in key.split("."):
        node = _plain(node)
        if segment.isdigit():
            elements = _elements(node)
            node = elements[int(segment)] if int(segment) < len(elements) else _ABSENT
        elif isinstance(node, dict):
            node = node.get(names.get(segment) or pulumi_name(segment), _ABSENT)
        else:
            return _ABSENT
    return node


def _echo(value: Any) -> str:
    return shorten(value if isinstance(value, str) else json.dumps(value), _ECHO_LIMIT)


def _go_list(values: Sequence[Any]) -> str:
    """Go's ``%v`` of a slice: ``[a b c]``."""
    return "[" + " ".join(str(value) for value in values) + "]"


def _number(value: Any) -> float | int | None:
    """The bridge hands the SDK numbers per the schema's type; digit strings (TypeString ints) count too."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if float(value).is_integer() else value
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return _number(float(value))
    return None


def _worded(row: Row, message: str) -> str:
    return f"{message} {PROVIDER_VALIDATOR_NOTE}" if row.params.get("wording") == "provider" else message


# Each validator gets a set, known value and returns the error the provider's validator would, or None.
Validator = Callable[[Row, str, Any], "str | None"]


def _one_of(row: Row, key: str, value: Any) -> str | None:
    allowed, text = row.params["values"], str(value)
    if text in allowed or (row.params["ignore_case"] and text.lower() in [item.lower() for item in allowed]):
        return None
    return _worded(row, f"expected {key} to be one of {_go_list(allowed)}, got {_echo(text)}")


def _pattern(row: Row, key: str, value: Any) -> str | None:
    if re.search(row.params["regex"], str(value)):
        return None
    if row.params.get("message"):
        return _worded(row, f"invalid value for {key} ({row.params['message']})")
    quoted = json.dumps(row.params["regex"])
    if row.params["wording"] == "sdk":
        return f"expected value of {key} to match regular expression {quoted}, got {_echo(str(value))}"
    return _worded(row, f"expected value of {key} to match regular expression {quoted}")


def _string_len_between(row: Row, key: str, value: Any) -> str | None:
    low, high, text = row.params["min"], row.params["max"], str(value)
    if low <= len(text) <= high:
        return None
    return _worded(row, f"expected length of {key} to be in the range ({low} - {high}), got {_echo(text)}")


def _string_len_at_least(row: Row, key: str, value: Any) -> str | None:
    length = len(str(value).strip())
    if length >= row.params["min"]:
        return None
    return _worded(row, f"expected length of {key} to be at least ({row.params['min']}), got ({length})")


def _nullable_bool(row: Row, key: str, value: Any) -> str | None:
    if value in ("", "true", "false"):
        return None
    return _worded(
        row, f'expected {key} to be an empty string or lowercase "true"/"false", got {_echo(value)}'
    )


def _nullable_int_between(row: Row, key: str, value: Any) -> str | None:
    text = str(value)
    if text == "":
        return None
    if not re.fullmatch(r"-?\d+", text):
        return f"expected {key} to be empty or an integer string, got {_echo(text)}"
    if str(int(text)) != text:
        return f'expected {key} to be a canonical decimal integer string (e.g. "10"), got {_echo(text)}'
    return _int_between(row, key, int(text))


def _valid_regexp(row: Row, key: str, value: Any) -> str | None:
    try:
        re.compile(str(value))
    except re.error as error:
        # Go's regexp.Compile error, with Python's description of the fault.
        return f'"{key}": error parsing regexp: {error}'
    return None


def _int_between(row: Row, key: str, value: Any) -> str | None:
    number, low, high = _number(value), row.params["min"], row.params["max"]
    if number is None or low <= number <= high:
        return None  # (Not a number: the SDK's type check refuses it, not this validator.)
    return _worded(row, f"expected {key} to be in the range ({low} - {high}), got {number}")


def _at_least(row: Row, key: str, value: Any) -> str | None:
    number, low = _number(value), row.params["min"]
    if number is None or number >= low:
        return None
    if row.kind == "float_at_least":
        return _worded(row, f"expected {key} to be at least ({low:f}), got {float(number):f}")
    return _worded(row, f"expected {key} to be at least ({low}), got {number}")


def _int_one_of(row: Row, key: str, value: Any) -> str | None:
    number = _number(value)
    if number is None or number in row.params["values"]:
        return None
    return _worded(row, f"expected {key} to be one of {_go_list(row.params['values'])}, got {number}")


def _item_count(row: Row, key: str, value: Any) -> str | None:
    count, limit = (len(value) if isinstance(value, list) else 1), row.params["count"]
    if row.kind == "max_items" and count > limit:
        return f"{key}: attribute supports {limit} item maximum, config has {count} declared"
    if row.kind == "min_items" and count < limit:
        return f"{key}: attribute supports {limit} item as a minimum, config has {count} declared"
    return None


VALIDATORS: Mapping[str, Validator] = {
    "one_of": _one_of,
    "pattern": _pattern,
    "string_len_between": _string_len_between,
    "string_len_at_least": _string_len_at_least,
    "nullable_bool": _nullable_bool,
    "nullable_int_between": _nullable_int_between,
    "valid_regexp": _valid_regexp,
    "int_between": _int_between,
    "int_at_least": _at_least,
    "float_at_least": _at_least,
    "int_one_of": _int_one_of,
    "max_items": _item_count,
    "min_items": _item_count,
}


def _group(row: Row, key: str, config: Mapping[str, Any], names: Mapping[str, str]) -> str | None:
    """ExactlyOneOf, AtLeastOneOf, RequiredWith over absolute keys (sorted, as the SDK lists them)."""
    all_keys = sorted({*row.params["keys"], key})
    values = {name: _absolute(config, name, names) for name in all_keys}
    specified = [name for name, value in values.items() if _is_set(value) and _is_known(value)]
    unknown = [name for name, value in values.items() if _is_set(value) and not _is_known(value)]
    joined = ",".join(all_keys)
    if row.kind == "required_with":
        missing = [name for name in all_keys if not _is_set(values[name])]
        return f'"{key}": all of `{joined}` must be specified' if missing else None
    if not specified and not unknown:
        return f'"{key}": one of `{joined}` must be specified'
    if row.kind == "exactly_one_of" and len(specified) > 1:
        listed = ",".join(specified)
        return f'"{key}": only one of `{joined}` can be specified, but `{listed}` were specified.'
    return None


def violations(schema: Schema, config: Mapping[str, Any], name: str) -> list[Violation]:
    """Every row of ``schema`` that ``config`` (Pulumi inputs, camelCase) breaks; ``name``: the resource's."""
    found: list[Violation] = []
    for row in schema.rows:
        for location in _locations(config, row.argument.split("."), schema.pulumi_names):
            reason = _check(row, location, config, name, schema.pulumi_names)
            if reason is not None:
                # One paragraph: some provider messages carry newlines and tabs.
                flat = " ".join(reason.split())
                found.append(Violation(row=row, reason=flat, pulumi_path=location.pulumi_path))
    return found


def _conflict(
    row: Row, location: _Location, config: Mapping[str, Any], name: str, names: Mapping[str, str]
) -> str | None:
    for other in row.params["keys"]:
        other_value = _absolute(config, other, names)
        if _is_set(other_value) and _is_known(other_value):
            where = f"{name}.{location.pulumi_path}"
            return f"\"{location.key}\": conflicts with {other}. Examine values at '{where}'."
    return None


def _ignored(row: Row, location: _Location) -> str | None:
    value = _plain(location.value)
    if not _is_set(value) or not _is_known(value) or value not in row.params["values"]:
        return None
    return (
        f'{location.key}="{value}" is accepted but ignored by the provider ({row.params["reason"]}), so the '
        "result is not filtered by it."
    )


def _check(
    row: Row, location: _Location, config: Mapping[str, Any], name: str, names: Mapping[str, str]
) -> str | None:
    """schemaMap.validate's order: ExactlyOneOf/AtLeastOneOf, Required, then (set only) RequiredWith, then
    (known only) ConflictsWith and the validator."""
    kind, value = row.kind, location.value
    if kind in ("exactly_one_of", "at_least_one_of"):
        return _group(row, location.key, config, names)
    if kind in ("required", "ignored_filter"):
        return _missing(location) if kind == "required" else _ignored(row, location)
    if kind == "force_new" or not _is_set(value):
        return None
    if kind == "required_with":
        return _group(row, location.key, config, names)
    return _known(row, location, config, name, names) if _is_known(value) else None


def _missing(location: _Location) -> str | None:
    return None if _is_set(location.value) else f"Missing required property '{location.pulumi_path}'"


def _known(
    row: Row, location: _Location, config: Mapping[str, Any], name: str, names: Mapping[str, str]
) -> str | None:
    if row.kind == "conflicts_with":
        return _conflict(row, location, config, name, names)
    validator = VALIDATORS.get(row.kind)
    if validator is None:
        raise ValueError(f"unknown constraint kind {row.kind!r} in {TABLE_PATH.name}")
    return validator(row, location.key, _plain(location.value))


_FIXES: Mapping[str, str] = {
    "conflicts_with": "leave one of the two arguments out (None, not false: false counts as set)",
    "exactly_one_of": "set exactly one of the listed arguments",
    "at_least_one_of": "set one of the listed arguments",
    "required": "set the argument",
    "required_with": "set all of the listed arguments together, or none",
    "ignored_filter": "drop the argument and do not rely on it",
}


def _report(table: ConstraintTable, schema: Schema, found: Sequence[Violation], prefix: str) -> str:
    first = found[0]
    fix = _FIXES.get(first.row.kind, "give a value the provider accepts")
    more = f" The provider reports {len(found) - 1} more problems with it." if len(found) > 1 else ""
    return (
        f"{prefix}{first.reason} Fix: {fix} (Pulumi argument '{first.pulumi_path}'; rule: {schema.terraform} "
        f"{first.row.kind} from {table.source(schema, first.row)}).{more}"
    )


def with_autoname(schema: Schema, inputs: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """``inputs`` as the bridge validates them: a left-out autonamed ``name`` filled with the resource's name
    and a suffix (pulumi-terraform-bridge AutoName: 7 random hex digits, here derived from the name so runs
    repeat), unless an argument it conflicts with is set (``applyDefaults`` skips it then)."""
    field = schema.autonames
    if field is None or _is_set(inputs.get(pulumi_name(field), _ABSENT)):
        return inputs
    related = {
        key
        for row in schema.rows
        if row.kind in ("conflicts_with", "exactly_one_of")
        for key in (
            row.params["keys"]
            if row.argument == field
            else [row.argument]
            if field in row.params["keys"]
            else []
        )
    } - {field}
    if any(_is_set(_absolute(inputs, key, schema.pulumi_names)) for key in related):
        return inputs
    suffix = hashlib.sha256(name.encode()).hexdigest()[:7]
    return {**inputs, pulumi_name(field): f"{name[: AUTONAME_MAX_LENGTH - 8]}-{suffix}"}


def check_resource(
    token: str, name: str, inputs: Mapping[str, Any], table: ConstraintTable | None = None
) -> None:
    """Refuse a registration the provider's schema refuses (no-op for types outside the table)."""
    table = table or load_table()
    schema = table.resources.get(token)
    if schema is None:
        return
    found = violations(schema, with_autoname(schema, inputs, name), name)
    if found:
        raise ProviderConstraintError(
            _report(table, schema, found, f"{token} resource '{name}' has a problem: "), found
        )


def check_invoke(token: str, args: Mapping[str, Any], table: ConstraintTable | None = None) -> None:
    """Refuse a data-source call the provider's schema refuses, or one relying on a filter it ignores."""
    table = table or load_table()
    schema = table.invokes.get(token)
    if schema is None:
        return
    found = violations(schema, args, token)
    if found:
        raise ProviderConstraintError(_report(table, schema, found, f"invoke of {token} failed: "), found)


def forces_replacement(token: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The create-only (ForceNew) arguments whose value differs between two declarations of a resource."""
    schema = load_table().resources.get(token)
    if schema is None:
        return []
    changed: list[str] = []
    for row in schema.rows:
        if row.kind != "force_new":
            continue
        segments = row.argument.split(".")
        before = {where.key: where.value for where in _locations(old, segments, schema.pulumi_names)}
        after = {where.key: where.value for where in _locations(new, segments, schema.pulumi_names)}
        for key in before.keys() | after.keys():
            was, now = (
                _plain(side.get(key)) if _is_set(side.get(key, _ABSENT)) else None for side in (before, after)
            )
            if _is_known(was) and _is_known(now) and was != now:
                changed.append(row.argument)
                break
    return changed
