"""No invented facts in the plan (issue #11, item 4): what only the cloud knows is unknown in the plan or
drawn from offline_engine/cloud_facts.py; an unknown region or instance type fails as the real API would.

On the code before, the plan showed zoneId "cn-shanghai-b" for any instance type, "mars-north-1-b" for region
mars-north-1, and version "1.33.3-aliyun.1" although the stack set none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.instance_catalogue import CATALOGUE
from offline_engine import cloud_facts, plan
from offline_engine.stack_files import PROJECT_DIR

DEV = (PROJECT_DIR / "stacks" / "Pulumi.dev.yaml").read_text()
ERDMA_TYPES = "    - ecs.g8i.8xlarge\n    - ecs.g8ae.8xlarge\n"


def stack(*, region: str = "cn-shanghai", types: str = ERDMA_TYPES, extra: str = "") -> str:
    """The dev stack file buying ``types`` in ``region``."""
    lines = DEV.splitlines(keepends=True)
    start = next(index for index, line in enumerate(lines) if line.startswith("  ack-rdma:instanceTypes:"))
    end = next(index for index in range(start + 1, len(lines)) if not lines[index].startswith("    - "))
    text = "".join([*lines[: start + 1], types, *lines[end:]]) + extra
    return text.replace("alicloud:region: cn-shanghai", f"alicloud:region: {region}")


def plan_of(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    stack_file = tmp_path / "Pulumi.t.yaml"
    stack_file.write_text(text)
    code = plan.main(["--stack", "t", "--stack-file", str(stack_file), "--out", str(tmp_path), "--json"])
    out, err = capsys.readouterr()
    return code, out, err


def inputs_of(planned: dict[str, Any], type_: str) -> dict[str, Any]:
    (found,) = [item for item in planned["resources"] if item["type"] == type_]
    return dict(found["inputs"])


def test_zone_and_version_are_unknown_in_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = plan_of(tmp_path, stack(), capsys)
    assert code == 0, err
    planned = json.loads(out)
    assert inputs_of(planned, "alicloud:vpc/switch:Switch")["zoneId"] == "[unknown]"
    assert inputs_of(planned, "alicloud:cs/managedKubernetes:ManagedKubernetes")["version"] == "[unknown]"
    assert "cn-shanghai-b" not in out
    assert not any(version in out for version in cloud_facts.KUBERNETES_VERSIONS)


def test_a_zone_or_version_the_stack_sets_is_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = "  ack-rdma:zoneId: cn-shanghai-l\n  ack-rdma:kubernetesVersion: 1.33.3-aliyun.1\n"
    code, out, err = plan_of(tmp_path, stack(extra=extra), capsys)
    assert code == 0, err
    planned = json.loads(out)
    assert inputs_of(planned, "alicloud:vpc/switch:Switch")["zoneId"] == "cn-shanghai-l"
    assert (
        inputs_of(planned, "alicloud:cs/managedKubernetes:ManagedKubernetes")["version"] == "1.33.3-aliyun.1"
    )


def test_an_unknown_region_fails_as_the_api_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = plan_of(tmp_path, stack(region="mars-north-1"), capsys)
    assert code == plan.EXIT_BAD_INPUT
    assert "InvalidRegionId.NotFound: The RegionId provided does not exist in our records." in err
    assert "mars-north-1-b" not in out + err


@pytest.mark.parametrize("instance_type", ["ecs.g8i.9xlarge", "ecs.scch5.16xlarge", "ecs.banana.large"])
def test_an_instance_type_not_sold_stops_the_plan_and_finds_no_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], instance_type: str
) -> None:
    code, _, err = plan_of(tmp_path, stack(types=f"    - {instance_type}\n"), capsys)
    assert code == plan.EXIT_BAD_INPUT
    assert instance_type in err
    # Past the program's own catalogue check, the zone lookup would find nothing either.
    assert cloud_facts.zones_selling("cn-shanghai", instance_type) == ()


@pytest.mark.parametrize("family", ["ecs.g8i", "ecs.g8a", "ecs.c8i", "ecs.r9a", "ecs.gn8is"])
def test_the_erdma_families_are_sold_in_cn_shanghai(family: str) -> None:
    sized = [name for name in CATALOGUE if name.startswith(f"{family}.")] or [f"{family}.8xlarge"]
    for instance_type in sized:
        assert cloud_facts.sold("cn-shanghai", instance_type), instance_type
        assert set(cloud_facts.zones_selling("cn-shanghai", instance_type)) <= set(
            cloud_facts.REGION_ZONES["cn-shanghai"]
        )


def test_the_catalogue_is_consistent() -> None:
    for (region, family), zones in cloud_facts.ZONES_SEEN.items():
        assert set(zones) <= set(cloud_facts.REGION_ZONES[region])
        assert family in cloud_facts.ERDMA_FAMILIES
    for region, zones in cloud_facts.REGION_ZONES.items():
        assert all(zone.startswith(f"{region}-") for zone in zones)
    assert not cloud_facts.ERDMA_FAMILIES & cloud_facts.RETIRED_FAMILIES
