"""The provider's schema constraints (offline_engine/provider_constraints.yaml) and their enforcement.

Every row can fail: for each one a minimal input that breaks it is refused with the provider's wording. Every
alicloud resource type and data source the stacks declare has its schema in the table, and every argument the
table names exists, under the name the engine looks for, in the pulumi_alicloud 4.0.0 SDK the program runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi_alicloud as alicloud
import pytest
from pulumi.output import Unknown

from offline_engine import plan as plan_cli
from offline_engine.offline_run import ProgramRun
from offline_engine.provider_constraints import (
    PROVIDER_VALIDATOR_NOTE,
    ProviderConstraintError,
    Row,
    Schema,
    check_invoke,
    check_resource,
    forces_replacement,
    load_table,
    pulumi_name,
    sdk_argument_names,
    violations,
    with_autoname,
)
from offline_engine.stack_files import StackSettings, load_stack_settings
from tests.conftest import RunStack

TABLE = load_table()
CLUSTER = "alicloud:cs/managedKubernetes:ManagedKubernetes"
ZONES = "alicloud:index/getZones:getZones"
UNKNOWN = Unknown()  # type: ignore[no-untyped-call]


def _rows() -> list[Any]:
    cases = []
    for section, schemas in (("resource", TABLE.resources), ("invoke", TABLE.invokes)):
        for token, schema in schemas.items():
            for index, row in enumerate(schema.rows):
                identifier = f"{token.split(':')[-1]}-{row.kind}-{row.argument}-{index}"
                cases.append(pytest.param(section, schema, row, id=identifier))
    return cases


def _put(config: dict[str, Any], key: str, value: Any, names: Mapping[str, str]) -> None:
    """Set ``key`` (``a.b``, ``a.0.b`` or ``a.*``; Terraform names) in Pulumi-shaped inputs."""
    segments = [segment for segment in key.split(".") if not segment.isdigit()]
    node = config
    for position, segment in enumerate(segments):
        name = names.get(segment) or pulumi_name(segment)
        rest = segments[position + 1 :]
        if not rest:
            node[name] = value
        elif rest == ["*"]:
            node[name] = [value]
            return
        else:
            element = node.setdefault(name, [{}])[0]
            node = element


def _breaking_value(row: Row) -> Any:
    params = row.params
    kind = row.kind
    if kind == "one_of":
        return "not-" + "-".join(params["values"])[:20]
    if kind == "int_one_of":
        return max(params["values"]) + 7
    if kind == "int_between":
        return params["max"] + 1
    if kind in ("int_at_least", "float_at_least"):
        return params["min"] - 1
    if kind == "string_len_between":
        return "x" * (params["max"] + 1)
    if kind == "string_len_at_least":
        return " " * params["min"]
    if kind == "pattern":
        return "!!"
    if kind == "nullable_int_between":
        return str(params["min"] - 1) if params["min"] > 0 else str(params["max"] + 1)
    if kind == "nullable_bool":
        return "yes"
    if kind == "max_items":
        return ["x"] * (params["count"] + 1)
    if kind == "min_items":
        return []
    if kind == "ignored_filter":
        return params["values"][0]
    if kind == "valid_regexp":
        return "(unclosed"
    raise AssertionError(f"no breaking value for {kind}")


def _breaking_config(schema: Schema, row: Row) -> dict[str, Any]:
    names = schema.pulumi_names
    config: dict[str, Any] = {}
    if row.kind == "required":
        if "." in row.argument:
            _put(config, row.argument.rsplit(".", 1)[0] + ".unrelated", "x", names)
        return config
    if row.kind in ("exactly_one_of", "at_least_one_of"):
        if row.kind == "exactly_one_of":
            for key in {*row.params["keys"], row.argument}:
                _put(config, key, False, names)  # false is set (raw config), so two set keys break the row
        elif "." in row.argument:
            _put(config, row.argument.rsplit(".", 1)[0] + ".unrelated", "x", names)
        return config
    if row.kind == "conflicts_with":
        _put(config, row.argument, False, names)
        _put(config, row.params["keys"][0], False, names)
        return config
    if row.kind == "required_with":
        _put(config, row.argument, "x", names)
        return config
    _put(config, row.argument, _breaking_value(row), names)
    return config


WORDING: dict[str, str] = {
    "required": r"^Missing required property '[\w\[\]\.]+'$",
    "conflicts_with": r'^"[\w.]+": conflicts with [\w.]+\. Examine values at \'[^\']+\'\.$',
    "exactly_one_of": r'^"[\w.]+": (only one of `[\w.,]+` can be specified, but `[\w.,]+` were specified\.'
    r"|one of `[\w.,]+` must be specified)$",
    "at_least_one_of": r'^"[\w.]+": one of `[\w.,]+` must be specified$',
    "required_with": r'^"[\w.]+": all of `[\w.,]+` must be specified$',
    "one_of": r"^expected [\w.]+ to be one of \[[^\]]*\], got \S+",
    "int_one_of": r"^expected [\w.]+ to be one of \[[\d ]+\], got -?\d+",
    "int_between": r"^expected [\w.]+ to be in the range \(-?\d+ - \d+\), got -?\d+",
    "nullable_int_between": r"^expected [\w.]+ to be in the range \(-?\d+ - \d+\), got -?\d+",
    "int_at_least": r"^expected [\w.]+ to be at least \(-?\d+\), got -?\d+",
    "float_at_least": r"^expected [\w.]+ to be at least \(-?\d+\.\d{6}\), got -?\d+\.\d{6}",
    "string_len_between": r"^expected length of [\w.]+ to be in the range \(\d+ - \d+\), got x+",
    "string_len_at_least": r"^expected length of [\w.]+ to be at least \(\d+\), got \(\d+\)",
    "pattern": r"^(invalid value for [\w.]+ \(.+\)"
    r"|expected value of [\w.]+ to match regular expression \".+\")",
    "nullable_bool": r'^expected [\w.]+ to be an empty string or lowercase "true"/"false", got yes',
    "max_items": r"^[\w.]+: attribute supports \d+ item maximum, config has \d+ declared$",
    "min_items": r"^[\w.]+: attribute supports \d+ item as a minimum, config has 0 declared$",
    "ignored_filter": r'^[\w.]+="[^"]+" is accepted but ignored by the provider',
    "valid_regexp": r'^"[\w.]+": error parsing regexp: ',
}


@pytest.mark.parametrize(("section", "schema", "row"), _rows())
def test_every_row_can_fail(section: str, schema: Schema, row: Row) -> None:
    if row.kind == "force_new":
        # Create-only: a change of the argument means a new resource (a protected one cannot be replaced).
        old: dict[str, Any] = {}
        new: dict[str, Any] = {}
        _put(old, row.argument, "before", schema.pulumi_names)
        _put(new, row.argument, "after", schema.pulumi_names)
        assert row.argument in forces_replacement(schema.token, old, new)
        assert forces_replacement(schema.token, old, old) == []
        return
    config = _breaking_config(schema, row)
    check: Callable[[], None] = (
        (lambda: check_resource(schema.token, "subject", config))
        if section == "resource"
        else (lambda: check_invoke(schema.token, config))
    )
    with pytest.raises(ProviderConstraintError) as refused:
        check()
    mine = [found for found in refused.value.violations if found.row == row]
    assert mine, f"{row} did not fire on {config}; others did: {refused.value.violations}"
    reason = mine[0].reason
    assert re.search(WORDING[row.kind], reason), reason
    if row.params.get("wording") == "provider":
        assert reason.endswith(PROVIDER_VALIDATOR_NOTE)
    # The message says where the rule comes from, and does not grow with the input.
    if mine[0] is refused.value.violations[0]:
        assert f"{schema.file}:{row.line}" in str(refused.value)
    assert len(str(refused.value)) < 900


def test_false_counts_as_set_for_conflicts_and_none_does_not() -> None:
    with pytest.raises(ProviderConstraintError, match=r'"is_enterprise_security_group": conflicts with'):
        check_resource(
            CLUSTER,
            "c",
            {"isEnterpriseSecurityGroup": False, "securityGroupId": "sg-1", "vswitchIds": ["vsw-a"]},
        )
    check_resource(
        CLUSTER, "c", {"isEnterpriseSecurityGroup": None, "securityGroupId": "sg-1", "vswitchIds": ["vsw-a"]}
    )


def test_unknown_values_are_not_checked_as_in_the_provider() -> None:
    # A preview: the group's id is not known yet, so the conflict cannot be decided (the SDK skips it).
    check_resource(
        CLUSTER,
        "c",
        {"isEnterpriseSecurityGroup": False, "securityGroupId": UNKNOWN, "vswitchIds": [UNKNOWN]},
    )
    check_resource(CLUSTER, "c", {"proxyMode": UNKNOWN, "vswitchIds": ["vsw-a"]})
    with pytest.raises(ProviderConstraintError, match="expected proxy_mode to be one of"):
        check_resource(CLUSTER, "c", {"proxyMode": "ipvs2", "vswitchIds": [UNKNOWN]})


def test_echoed_values_are_shortened() -> None:
    with pytest.raises(ProviderConstraintError) as refused:
        check_resource(CLUSTER, "c", {"proxyMode": "x" * 5000, "vswitchIds": ["vsw-a"]})
    assert len(str(refused.value)) < 900


@pytest.mark.parametrize(
    "token", sorted(TABLE.resources) + sorted(TABLE.invokes), ids=lambda token: token.split(":")[-1]
)
def test_every_argument_exists_in_the_pulumi_sdk_under_the_engines_name(token: str) -> None:
    schema = TABLE.resources.get(token) or TABLE.invokes[token]
    names = sdk_argument_names(token)
    assert names, f"{token}: no pulumi_alicloud module"
    missing = {
        segment
        for row in schema.rows
        for key in (row.argument, *row.params.get("keys", []))
        for segment in key.split(".")
        if segment != "*"
        and not segment.isdigit()
        and schema.pulumi_names.get(segment, pulumi_name(segment)) not in names
    }
    assert not missing, f"{token}: {sorted(missing)} not in the SDK under these names"


def test_every_declared_alicloud_type_and_data_source_is_in_the_table(
    program_runs: dict[str, ProgramRun],
) -> None:
    declared = {
        resource.type
        for run in program_runs.values()
        for resource in run.resources
        if resource.custom and resource.type.startswith("alicloud:")
    }
    invoked = {
        call.token
        for run in program_runs.values()
        for call in run.invocations
        if call.token.startswith("alicloud:")
    }
    assert declared and invoked
    assert declared - set(TABLE.resources) == set()
    assert invoked - set(TABLE.invokes) == set()


def test_the_stacks_declare_nothing_the_provider_refuses(program_runs: dict[str, ProgramRun]) -> None:
    """As `pulumi up` would see them: every value known (the mock's ids), no row broken."""
    for run in program_runs.values():
        for resource in run.resources:
            if resource.type in TABLE.resources:
                assert violations(TABLE.resources[resource.type], resource.inputs, resource.name) == []
        for call in run.invocations:
            if call.token in TABLE.invokes:
                assert violations(TABLE.invokes[call.token], call.args, call.token) == []


# -- regressions: what the stacks broke before ----------------------------------------------------------
def test_cluster_with_its_own_security_group_does_not_set_is_enterprise_security_group(
    run_stack: RunStack,
) -> None:
    """Failed before: `is_enterprise_security_group=False` with `security_group_id` (ConflictsWith)."""
    run = run_stack("dev")
    cluster = run.one(CLUSTER)
    assert cluster.inputs["securityGroupId"]
    assert "isEnterpriseSecurityGroup" not in cluster.inputs


def test_zone_lookup_does_not_rely_on_the_ignored_vswitch_filter(run_stack: RunStack) -> None:
    """Failed before: get_zones(available_resource_creation="VSwitch"), a value the data source ignores."""
    run = run_stack("prod")
    lookups = [call for call in run.invocations if call.token == ZONES]
    assert lookups
    for lookup in lookups:
        assert "availableResourceCreation" not in lookup.args
    with pytest.raises(
        ProviderConstraintError, match='available_resource_creation="VSwitch" is accepted but ignored'
    ):
        check_invoke(
            ZONES, {"availableInstanceType": "ecs.g8i.8xlarge", "availableResourceCreation": "VSwitch"}
        )


# A value the stack config lets through and only the provider refuses: 101 instances for one pool (the
# config's own checks, such as the catalogue's system disks, stop other broken values before the provider).
TOO_MANY_INSTANCES = {
    "ack-rdma:existingInstances": [f"i-uf6{n:04d}" for n in range(101)],
    "ack-rdma:checkMinGbits": 10,
}


def test_the_program_run_fails_like_up_on_a_broken_row(run_stack: RunStack) -> None:
    with pytest.raises(
        ProviderConstraintError,
        match=r"NodePool resource '[^']+' has a problem: instances: attribute supports 100 item maximum",
    ):
        run_stack("dev", **TOO_MANY_INSTANCES)


def test_make_preview_exits_2_with_the_providers_wording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(stack: str) -> StackSettings:
        return load_stack_settings(stack, overrides=TOO_MANY_INSTANCES)

    monkeypatch.setattr(plan_cli, "load_stack_settings", broken)
    status = plan_cli.main(["--stack", "dev", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert status == plan_cli.EXIT_BAD_INPUT
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert "instances: attribute supports 100 item maximum" in lines[0]
    assert "resource_alicloud_cs_kubernetes_node_pool.go:1042" in lines[0]


def test_make_preview_fails_where_only_up_knows_the_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The old program: in a preview the new group's id is unknown and the provider skips the conflict;
    `pulumi up` refuses it. `make preview` must say so, not pass."""
    original = alicloud.cs.ManagedKubernetes

    def old_cluster(*args: Any, **kwargs: Any) -> Any:
        return original(*args, **{**kwargs, "is_enterprise_security_group": False})

    monkeypatch.setattr(alicloud.cs, "ManagedKubernetes", old_cluster)
    status = plan_cli.main(["--stack", "dev", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == plan_cli.EXIT_BAD_INPUT
    assert "`pulumi up` would fail" in err
    assert '"is_enterprise_security_group": conflicts with security_group_id' in err


def test_a_left_out_name_is_autonamed_as_the_bridge_does_and_then_validated() -> None:
    namespace = "alicloud:cr/namespace:Namespace"
    assert TABLE.resources[namespace].autonames == "name"
    # No "Missing required property 'name'": the bridge fills it with <resource name>-<7 hex>.
    check_resource(namespace, "images", {"autoCreate": False, "defaultVisibility": "PRIVATE"})
    filled = with_autoname(TABLE.resources[namespace], {}, "images")
    assert re.fullmatch(r"images-[0-9a-f]{7}", filled["name"])
    # ...and the filled name must pass the provider's checks: ACR namespaces take 2-30 characters.
    with pytest.raises(
        ProviderConstraintError, match=r"expected length of name to be in the range \(2 - 30\)"
    ):
        check_resource(namespace, "registry-namespace-for-rdma-images", {"autoCreate": False})


def test_no_autoname_next_to_an_argument_it_conflicts_with() -> None:
    cluster = TABLE.resources[CLUSTER]
    assert with_autoname(cluster, {"namePrefix": "ack"}, "c") == {"namePrefix": "ack"}
    check_resource(CLUSTER, "c", {"namePrefix": "ack", "vswitchIds": ["vsw-a"]})
