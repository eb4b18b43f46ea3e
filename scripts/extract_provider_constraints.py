"""Regenerate offline_engine/provider_constraints.yaml from a checkout of aliyun/terraform-provider-alicloud.

    python scripts/extract_provider_constraints.py --provider <git dir> --revision <commit> \
        > offline_engine/provider_constraints.yaml

Reads each schema the program uses (``git show <revision>:alicloud/<file>``), walks its
``map[string]*schema.Schema`` literals (nested blocks too) and writes one row per constraint with the line it
comes from: Required, ConflictsWith, ExactlyOneOf, AtLeastOneOf, RequiredWith, ForceNew and the validators
(StringInSlice, IntBetween, IntInSlice, IntAtLeast, StringLenBetween, StringMatch). Validators it cannot model
are listed under ``unmodelled`` with their source text. Data-source filters the Read function ignores are
curated below (``IGNORED_FILTERS``): each names a line of the source by an anchor text, so the line number
is found, not typed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import yaml

from offline_engine.provider_constraints import pulumi_name, sdk_argument_names

# Pulumi type token -> provider file (alicloud/<file>.go) and Terraform type name.
RESOURCES: dict[str, tuple[str, str]] = {
    "alicloud:vpc/network:Network": ("resource_alicloud_vpc", "alicloud_vpc"),
    "alicloud:vpc/switch:Switch": ("resource_alicloud_vswitch", "alicloud_vswitch"),
    "alicloud:ecs/securityGroup:SecurityGroup": (
        "resource_alicloud_security_group",
        "alicloud_security_group",
    ),
    "alicloud:ecs/securityGroupRule:SecurityGroupRule": (
        "resource_alicloud_security_group_rule",
        "alicloud_security_group_rule",
    ),
    "alicloud:ecs/ecsDeploymentSet:EcsDeploymentSet": (
        "resource_alicloud_ecs_deployment_set",
        "alicloud_ecs_deployment_set",
    ),
    "alicloud:cs/managedKubernetes:ManagedKubernetes": (
        "resource_alicloud_cs_managed_kubernetes",
        "alicloud_cs_managed_kubernetes",
    ),
    "alicloud:cs/nodePool:NodePool": (
        "resource_alicloud_cs_kubernetes_node_pool",
        "alicloud_cs_kubernetes_node_pool",
    ),
    "alicloud:cs/kubernetesAddon:KubernetesAddon": (
        "resource_alicloud_cs_kubernetes_addon",
        "alicloud_cs_kubernetes_addon",
    ),
    "alicloud:cs/registryEnterpriseNamespace:RegistryEnterpriseNamespace": (
        "resource_alicloud_cr_ee_namespace",
        "alicloud_cr_ee_namespace",
    ),
    "alicloud:cs/registryEnterpriseRepo:RegistryEnterpriseRepo": (
        "resource_alicloud_cr_ee_repo",
        "alicloud_cr_ee_repo",
    ),
    "alicloud:cr/namespace:Namespace": ("resource_alicloud_cr_namespace", "alicloud_cr_namespace"),
    "alicloud:cr/repo:Repo": ("resource_alicloud_cr_repo", "alicloud_cr_repo"),
    "alicloud:cr/vpcEndpointLinkedVpc:VpcEndpointLinkedVpc": (
        "resource_alicloud_cr_vpc_endpoint_linked_vpc",
        "alicloud_cr_vpc_endpoint_linked_vpc",
    ),
    "alicloud:cr/endpointAclPolicy:EndpointAclPolicy": (
        "resource_alicloud_cr_endpoint_acl_policy",
        "alicloud_cr_endpoint_acl_policy",
    ),
    "alicloud:cr/internetEndpoint:InternetEndpoint": (
        "resource_alicloud_cr_internet_endpoint",
        "alicloud_cr_internet_endpoint",
    ),
    "alicloud:slb/acl:Acl": ("resource_alicloud_slb_acl", "alicloud_slb_acl"),
    "alicloud:slb/aclEntryAttachment:AclEntryAttachment": (
        "resource_alicloud_slb_acl_entry_attachment",
        "alicloud_slb_acl_entry_attachment",
    ),
}

INVOKES: dict[str, tuple[str, str]] = {
    "alicloud:index/getZones:getZones": ("data_source_alicloud_zones", "alicloud_zones"),
    "alicloud:cs/getKubernetesVersion:getKubernetesVersion": (
        "data_source_alicloud_cs_kubernetes_version",
        "alicloud_cs_kubernetes_version",
    ),
    "alicloud:cs/getClusterCredential:getClusterCredential": (
        "data_source_alicloud_cs_cluster_credential",
        "alicloud_cs_cluster_credential",
    ),
    "alicloud:cs/getRegistryEnterpriseInstances:getRegistryEnterpriseInstances": (
        "data_source_alicloud_cr_ee_instances",
        "alicloud_cr_ee_instances",
    ),
    "alicloud:cs/getKubernetesAddonMetadata:getKubernetesAddonMetadata": (
        "data_source_alicloud_cs_kubernetes_addon_metadata",
        "alicloud_cs_kubernetes_addon_metadata",
    ),
    "alicloud:ecs/getInstanceTypes:getInstanceTypes": (
        "data_source_alicloud_instance_types",
        "alicloud_instance_types",
    ),
    "alicloud:cr/getEndpointAclService:getEndpointAclService": (
        "data_source_alicloud_cr_endpoint_acl_service",
        "alicloud_cr_endpoint_acl_service",
    ),
}


@dataclass(frozen=True)
class IgnoredFilter:
    """A data-source argument value the Read function accepts but never acts on."""

    token: str
    argument: str
    values: tuple[str, ...]
    anchor: str
    """Text of the line the row points at (the Read function's use of the argument)."""
    reason: str


IGNORED_FILTERS = (
    IgnoredFilter(
        token="alicloud:index/getZones:getZones",
        argument="available_resource_creation",
        # The Read function has a branch for PolarDB, KVStore, MongoDB, HBase, ADB, Gpdb, Elasticsearch,
        # FunctionCompute and Slb only; these values pass the validator and change nothing.
        values=("Instance", "Rds", "VSwitch", "Disk", "IoOptimized"),
        anchor='resType := d.Get("available_resource_creation").(string)',
        reason=(
            "the Read function has no branch for this value: zones are filtered by available_instance_type "
            "(zones that list the type in DescribeZones, not zones with stock) and "
            "available_disk_category only"
        ),
    ),
)

HEADER = """\
The Terraform provider's schema constraints for every alicloud resource and data source the program
declares (and those the next changes add), one row per constraint, each with the line of the provider
file it comes from. Generated by scripts/extract_provider_constraints.py from
aliyun/terraform-provider-alicloud at the revision below (master after v1.289.0; the files listed are
identical at the v1.289.0 tag). pulumi-alicloud 4.0.0 wraps a newer release (its SDK documents arguments
'Available since v1.295.0'), which no mirror here holds: every argument below is checked against the
installed pulumi_alicloud 4.0.0 SDK (here and in tests/test_provider_constraints.py); arguments that SDK
no longer has would be left out and listed under not_in_pulumi_sdk; pulumi_names: Terraform names the
bridge does not just camelCase (it pluralizes list names). pulumi_autonames: the bridge fills a
left-out `name` (SetAutonaming in pulumi-alicloud), so its Required row is left out. Validation semantics
and wording: hashicorp/terraform-plugin-sdk v1.17.2 helper/schema/schema.go (the provider's SDK),
alicloud/validators.go (rows with wording: provider), helper/validation (wording: sdk); enforced by
offline_engine/provider_constraints.py. Do not edit rows by hand: rerun the script.
"""

_MAP_START = "map[string]*schema.Schema{"
_VALIDATOR = re.compile(r"^(?:validation\.)?(?P<name>\w+)\((?P<args>.*)\)$", re.S)


def _git_show(provider: str, revision: str, path: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", provider, "show", f"{revision}:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _skip_literal(text: str, index: int) -> int:
    """Index just past a string, raw string, rune or comment starting at ``index`` (else ``index``)."""
    char = text[index]
    if char == "`":
        return text.index("`", index + 1) + 1
    if char in "\"'":
        position = index + 1
        while text[position] != char:
            position += 2 if text[position] == "\\" else 1
        return position + 1
    if text.startswith("//", index):
        end = text.find("\n", index)
        return len(text) if end < 0 else end
    if text.startswith("/*", index):
        return text.index("*/", index) + 2
    return index


def _matching(text: str, open_index: int) -> int:
    """Index of the bracket closing the one at ``open_index``."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    stack = [pairs[text[open_index]]]
    position = open_index + 1
    while stack:
        skipped = _skip_literal(text, position)
        if skipped != position:
            position = skipped
            continue
        char = text[position]
        if char in pairs:
            stack.append(pairs[char])
        elif char == stack[-1]:
            stack.pop()
        position += 1
    return position - 1


def _split_top(text: str, start: int, end: int) -> list[tuple[int, str]]:
    """Comma-separated items of text[start:end] at bracket depth 0, with their start offsets."""
    items: list[tuple[int, str]] = []
    position = item_start = start
    while position < end:
        skipped = _skip_literal(text, position)
        if skipped != position:
            position = skipped
            continue
        char = text[position]
        if char in "{([":
            position = _matching(text, position) + 1
            continue
        if char == ",":
            items.append((item_start, text[item_start:position]))
            item_start = position + 1
        position += 1
    items.append((item_start, text[item_start:end]))
    return [(offset, item) for offset, item in items if _strip_comments(item).strip()]


def _strip_comments(item: str) -> str:
    return re.sub(r"//[^\n]*", "", item)


class _Source:
    def __init__(self, text: str, constants: dict[str, str]) -> None:
        self.text = text
        self.constants = constants
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line(self, offset: int) -> int:
        low, high = 0, len(self._line_starts)
        while high - low > 1:
            middle = (low + high) // 2
            if self._line_starts[middle] <= offset:
                low = middle
            else:
                high = middle
        return low + 1

    def value(self, expression: str) -> Any:
        """A Go literal (string, number, bool, []string{...}, []int{...}, constant) as Python data."""
        expression = _strip_comments(expression).strip()
        wrapped = re.fullmatch(r"string\((.*)\)", expression, re.S)
        if wrapped:
            return self.value(wrapped.group(1))
        list_match = re.fullmatch(r"\[\](?:string|int)\{(.*)\}", expression, re.S)
        if list_match:
            body = list_match.group(1)
            return [self.value(item) for _, item in _split_top(body, 0, len(body))]
        return self._scalar(expression)

    def _scalar(self, expression: str) -> Any:
        if expression.startswith("`"):
            return expression[1:-1]
        if expression.startswith('"') or re.fullmatch(r"-?\d+(\.\d+)?|true|false", expression):
            return yaml.safe_load(expression)
        name = expression.rsplit(".", 1)[-1]
        if name in self.constants:
            return self.constants[name]
        raise ValueError(f"cannot evaluate Go expression {expression!r}")


def _constants(provider: str, revision: str) -> dict[str, str]:
    """String constants of the provider package (``Name = Type("value")`` and ``Name = "value"``)."""
    listing = subprocess.run(
        [
            "git",
            "--git-dir",
            provider,
            "grep",
            "-h",
            "-E",
            r"^\s+[A-Za-z_]\w*\s+(\w+\s+)?=\s+(\w+\()?\"",
            revision,
            "--",
            "alicloud/common.go",
            "alicloud/*.go",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    constants: dict[str, str] = {}
    for line in listing.splitlines():
        match = re.match(r'^\s+([A-Za-z_]\w*)\s+(?:\w+\s+)?=\s+(?:\w+\()?"([^"]*)"\)?\s*(?://.*)?$', line)
        if match:
            constants.setdefault(match.group(1), match.group(2))
    constants.update({"PrePaid": "PrePaid", "PostPaid": "PostPaid"})  # aliyungo common.InstanceChargeType
    return constants


_STATIC_FIELDS = (
    "Required",
    "ForceNew",
    "MaxItems",
    "MinItems",
    "ConflictsWith",
    "ExactlyOneOf",
    "AtLeastOneOf",
    "RequiredWith",
)


def _fields(source: _Source, start: int, end: int) -> dict[str, tuple[int, str]]:
    fields: dict[str, tuple[int, str]] = {}
    for offset, item in _split_top(source.text, start, end):
        match = re.match(r"\s*(?://[^\n]*\s*)*(\w+)\s*:\s*(.*)$", item, re.S)
        if match:
            fields[match.group(1)] = (offset + match.start(2), match.group(2).strip())
    return fields


# Validator functions (alicloud/validators.go, or helper/validation with "validation.") -> row kind and the
# names of their arguments.
_VALIDATOR_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "StringInSlice": ("one_of", ("values", "ignore_case")),
    "IntInSlice": ("int_one_of", ("values",)),
    "IntBetween": ("int_between", ("min", "max")),
    "IntAtLeast": ("int_at_least", ("min",)),
    "FloatAtLeast": ("float_at_least", ("min",)),
    "StringLenBetween": ("string_len_between", ("min", "max")),
    "StringLenAtLeast": ("string_len_at_least", ("min",)),
    "ValidateNullableIntBetween": ("nullable_int_between", ("min", "max")),
}
# Validators used as values, not called.
_PLAIN_VALIDATORS = {
    "validation.StringIsValidRegExp": ("valid_regexp", "sdk"),
    "ValidateNullableBool": ("nullable_bool", "provider"),
}


def _validator_rows(source: _Source, argument: str, offset: int, expression: str) -> list[dict[str, Any]]:
    line = source.line(offset)
    if expression in _PLAIN_VALIDATORS:
        kind, wording = _PLAIN_VALIDATORS[expression]
        return [{"kind": kind, "argument": argument, "wording": wording, "line": line}]
    match = _VALIDATOR.match(expression)
    wording = "sdk" if expression.startswith("validation.") else "provider"
    row: dict[str, Any] = {"argument": argument}
    try:
        name = match.group("name") if match else ""
        args = (
            [item for _, item in _split_top(match.group("args"), 0, len(match.group("args")))]
            if match
            else []
        )
        if name in _VALIDATOR_KINDS:
            kind, parameters = _VALIDATOR_KINDS[name]
            row = {
                "kind": kind,
                **row,
                **{key: source.value(arg) for key, arg in zip(parameters, args, strict=False)},
            }
        elif name == "StringMatch":
            pattern = re.fullmatch(r"regexp\.MustCompile\((.*)\)", args[0].strip(), re.S)
            if pattern:
                row = {"kind": "pattern", **row, "regex": source.value(pattern.group(1))}
                row["message"] = source.value(args[1])
    except ValueError:
        row = {"argument": argument}
    if "kind" not in row:
        return [
            {"kind": "unmodelled", "argument": argument, "source": " ".join(expression.split()), "line": line}
        ]
    return [{**row, "wording": wording, "line": line}]


_GROUPS = (
    ("ConflictsWith", "conflicts_with"),
    ("ExactlyOneOf", "exactly_one_of"),
    ("AtLeastOneOf", "at_least_one_of"),
    ("RequiredWith", "required_with"),
)


def _walk(source: _Source, map_open: int, prefix: str, rows: list[dict[str, Any]]) -> None:
    """Rows of the schema map literal whose ``{`` is at ``map_open``; nested blocks get ``block.`` paths."""
    map_close = _matching(source.text, map_open)
    for offset, item in _split_top(source.text, map_open + 1, map_close):
        entry = re.match(r'\s*(?://[^\n]*\s*)*"(\w+)"\s*:\s*', item)
        if not entry:
            continue
        name = prefix + entry.group(1)
        body_start = offset + entry.end()
        if source.text[body_start] == "{":
            _argument_rows(source, name, body_start, rows)
            continue
        call = item[entry.end() :].strip()
        if call == "tagsSchemaForceNew()":  # alicloud/tags.go: TypeMap, Optional, ForceNew
            rows.append({"kind": "force_new", "argument": name, "line": source.line(body_start)})
        elif call != "tagsSchema()":  # tagsSchema(): TypeMap, Optional, nothing to check
            rows.append(
                {
                    "kind": "unmodelled",
                    "argument": name,
                    "source": call[:120],
                    "line": source.line(body_start),
                }
            )


def _argument_rows(source: _Source, name: str, body_start: int, rows: list[dict[str, Any]]) -> None:
    fields = _fields(source, body_start + 1, _matching(source.text, body_start))
    if "Removed" in fields:
        return  # Not in the Pulumi SDK either: nothing can set it.
    line_of = {key: source.line(position) for key, (position, _) in fields.items()}
    value_of = {key: source.value(text) for key, (_, text) in fields.items() if key in _STATIC_FIELDS}
    for go_name, kind in (("Required", "required"), ("ForceNew", "force_new")):
        if value_of.get(go_name) is True:
            rows.append({"kind": kind, "argument": name, "line": line_of[go_name]})
    rows.extend(
        {"kind": kind, "argument": name, "keys": value_of[go_name], "line": line_of[go_name]}
        for go_name, kind in _GROUPS
        if go_name in value_of
    )
    # MaxItems 1 blocks are single objects in Pulumi: nothing can declare a second one.
    if value_of.get("MaxItems", 1) > 1:
        rows.append(
            {
                "kind": "max_items",
                "argument": name,
                "count": value_of["MaxItems"],
                "line": line_of["MaxItems"],
            }
        )
    if value_of.get("MinItems", 0) > 0:
        rows.append(
            {
                "kind": "min_items",
                "argument": name,
                "count": value_of["MinItems"],
                "line": line_of["MinItems"],
            }
        )
    if "ValidateFunc" in fields:
        rows.extend(_validator_rows(source, name, *fields["ValidateFunc"]))
    if "Elem" in fields:
        _element_rows(source, name, *fields["Elem"], rows)


def _element_rows(
    source: _Source, name: str, position: int, expression: str, rows: list[dict[str, Any]]
) -> None:
    """A block's arguments (``Elem: &schema.Resource``) or a list element's validator (``&schema.Schema``)."""
    nested = source.text.find(_MAP_START, position, position + len(expression))
    if expression.startswith("&schema.Resource") and nested >= 0:
        _walk(source, nested + len(_MAP_START) - 1, f"{name}.", rows)
    elif expression.startswith("&schema.Schema"):
        brace = position + expression.index("{")
        element = _fields(source, brace + 1, _matching(source.text, brace))
        if "ValidateFunc" in element:
            rows.extend(_validator_rows(source, f"{name}.*", *element["ValidateFunc"]))


def _schema_rows(source: _Source, factory: str) -> list[dict[str, Any]]:
    start = source.text.index(f"func {factory}() *schema.Resource")
    map_open = source.text.index(_MAP_START, start) + len(_MAP_START) - 1
    rows: list[dict[str, Any]] = []
    _walk(source, map_open, "", rows)
    return rows


def _autonamed(source: _Source, factory: str) -> bool:
    """pulumi-alicloud calls SetAutonaming(255, "-") (provider/resources.go): the bridge fills a top-level
    input ``name`` of type string with ``<resource name>-<7 hex>`` when the program leaves it out, unless
    the argument is deprecated or a key it conflicts with is set (pkg/tfbridge/info/autonaming.go,
    pkg/tfbridge/schema.go applyDefaults)."""
    start = source.text.index(f"func {factory}() *schema.Resource")
    map_open = source.text.index(_MAP_START, start) + len(_MAP_START) - 1
    for offset, item in _split_top(source.text, map_open + 1, _matching(source.text, map_open)):
        entry = re.match(r'\s*(?://[^\n]*\s*)*"name"\s*:\s*\{', item)
        if entry:
            brace = offset + entry.end() - 1
            fields = _fields(source, brace + 1, _matching(source.text, brace))
            is_input = any(fields.get(key, (0, "false"))[1] == "true" for key in ("Optional", "Required"))
            is_string = fields.get("Type", (0, ""))[1] == "schema.TypeString"
            return is_input and is_string and "Deprecated" not in fields and "Removed" not in fields
    return False


def _factory(text: str) -> str:
    match = re.search(r"^func ((?:resource|dataSource)\w+)\(\) \*schema\.Resource", text, re.M)
    if not match:
        raise ValueError("no schema factory function")
    return match.group(1)


def _entry(
    provider: str, revision: str, constants: dict[str, str], token: str, *, file: str, terraform: str
) -> dict[str, Any]:
    path = f"alicloud/{file}.go"
    source = _Source(_git_show(provider, revision, path), constants)
    sdk_names = sdk_argument_names(token)
    rows, absent, renamed = [], set(), {}
    for row in _schema_rows(source, _factory(source.text)):
        missing = []
        for key in (row["argument"], *row.get("keys", [])):
            for segment in key.split("."):
                if segment == "*" or segment.isdigit() or pulumi_name(segment) in sdk_names:
                    continue
                if pulumi_name(segment) + "s" in sdk_names:  # The bridge pluralizes list names.
                    renamed[segment] = pulumi_name(segment) + "s"
                else:
                    missing.append(segment)
        if missing:
            absent.update(missing)  # Gone from the provider the SDK wraps: nothing can set it.
        else:
            rows.append(row)
    entry: dict[str, Any] = {"terraform": terraform, "file": path, "rows": rows}
    if renamed:
        entry["pulumi_names"] = dict(sorted(renamed.items()))
    if token in RESOURCES and _autonamed(source, _factory(source.text)):
        # The bridge fills a left-out name, so "name is required" can never fail under Pulumi.
        entry["rows"] = [row for row in rows if (row["kind"], row["argument"]) != ("required", "name")]
        entry["pulumi_autonames"] = "name"
    if absent:
        entry["not_in_pulumi_sdk"] = sorted(absent)
    return entry


def build(provider: str, revision: str) -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "--git-dir", provider, "rev-parse", f"{revision}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    constants = _constants(provider, commit)
    resources = {
        token: _entry(provider, commit, constants, token, file=file, terraform=terraform)
        for token, (file, terraform) in RESOURCES.items()
    }
    invokes = {
        token: _entry(provider, commit, constants, token, file=file, terraform=terraform)
        for token, (file, terraform) in INVOKES.items()
    }
    for ignored in IGNORED_FILTERS:
        entry = invokes[ignored.token]
        text = _git_show(provider, commit, entry["file"])
        line = text[: text.index(ignored.anchor)].count("\n") + 1
        entry["rows"].append(
            {
                "kind": "ignored_filter",
                "argument": ignored.argument,
                "values": list(ignored.values),
                "reason": ignored.reason,
                "line": line,
            }
        )
    return {
        "provider": {"repository": "aliyun/terraform-provider-alicloud", "revision": commit},
        "resources": resources,
        "invokes": invokes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--provider", required=True, help="git dir of aliyun/terraform-provider-alicloud")
    parser.add_argument("--revision", required=True, help="commit or tag to read")
    arguments = parser.parse_args()
    table = build(arguments.provider, arguments.revision)
    sys.stdout.write("".join(f"# {line}\n" for line in HEADER.splitlines()))

    class _FlowRows(yaml.SafeDumper):
        pass

    def row_representer(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
        flow = "kind" in data
        return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)

    _FlowRows.add_representer(dict, row_representer)
    sys.stdout.write(yaml.dump(table, Dumper=_FlowRows, sort_keys=False, width=200, allow_unicode=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
