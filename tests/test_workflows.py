"""The GitHub workflows: actionlint finds nothing, and they keep their promises about who deploys what."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github/workflows"
ACTIONLINT = Path(sys.executable).parent / "actionlint"
STACKS = {path.name.split(".")[1] for path in (REPO / "stacks").glob("Pulumi.*.yaml")}


def actionlint(*files: Path, cwd: Path = REPO) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(ACTIONLINT), "-no-color", "-format", "{{json .}}", *map(str, files)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    assert (result.returncode == 1) == bool(findings)
    return findings


def load(name: str) -> dict[str, Any]:
    raw: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as the boolean true.
    return {"on" if key is True else key: value for key, value in raw.items()}


def conjuncts(condition: str) -> set[str]:
    assert "||" not in condition, f"expected a plain conjunction, got {condition!r}"
    return {part.strip() for part in condition.split("&&")}


def test_actionlint_finds_nothing() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {path.name for path in files} == {"preview.yml", "deploy.yml", "pulumi-stack.yml"}
    findings = actionlint(*files)
    assert findings == [], "\n".join(f"{f['filepath']}:{f['line']}: {f['message']}" for f in findings)


def test_actionlint_does_report_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github/workflows/broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: pull_request\njobs:\n  p:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: pulumi/actions@v7\n"
        "        with:\n          comand: preview\n          stack-name: dev\n"
    )
    messages = [finding["message"] for finding in actionlint(broken, cwd=tmp_path)]
    assert any('"comand" is not defined' in message for message in messages), messages


def test_every_workflow_token_is_read_only_unless_a_job_needs_more() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        workflow = load(path.name)
        assert workflow["permissions"] == {"contents": "read"}, path.name
        for name, job in workflow["jobs"].items():
            extra = {key: value for key, value in job.get("permissions", {}).items() if value != "read"}
            assert extra in ({}, {"pull-requests": "write"}), f"{path.name}:{name} {extra}"


def test_prod_is_updated_only_by_hand_from_main_inside_the_prod_environment() -> None:
    deploy = load("deploy.yml")
    assert set(deploy["on"]) == {"push", "workflow_dispatch"}
    assert deploy["on"]["push"] == {"branches": ["main"]}
    prod = deploy["jobs"]["prod"]
    assert conjuncts(prod["if"]) >= {
        "github.event_name == 'workflow_dispatch'",
        "inputs.stack == 'prod'",
        "github.ref == 'refs/heads/main'",
    }
    assert prod["uses"] == "./.github/workflows/pulumi-stack.yml"
    assert prod["with"] == {"command": "up", "stack": "prod", "environment": "prod"}
    stack_job = load("pulumi-stack.yml")["jobs"]["pulumi"]
    assert stack_job["environment"] == "${{ inputs.environment }}"


def test_dev_is_updated_on_every_push_to_main() -> None:
    dev = load("deploy.yml")["jobs"]["dev"]
    assert dev["if"].startswith("github.event_name == 'push' ||")
    assert dev["with"] == {"command": "up", "stack": "dev", "environment": "dev"}


def test_one_update_per_stack_at_a_time_and_none_cancelled() -> None:
    jobs = load("deploy.yml")["jobs"]
    groups = {name: job["concurrency"] for name, job in jobs.items()}
    assert groups == {
        stack: {"group": f"pulumi-up-{stack}", "cancel-in-progress": False} for stack in ("dev", "prod")
    }


def test_pulumi_runs_through_the_official_action_with_the_policy_pack() -> None:
    steps = load("pulumi-stack.yml")["jobs"]["pulumi"]["steps"]
    [pulumi] = [step for step in steps if step.get("uses", "").startswith("pulumi/actions@")]
    assert re.fullmatch(r"pulumi/actions@v\d+", pulumi["uses"])
    assert pulumi["with"]["policyPacks"] == "policy"
    assert (REPO / pulumi["with"]["policyPacks"] / "PulumiPolicy.yaml").is_file()
    assert pulumi["with"]["comment-on-pr"] == "${{ inputs.comment-on-pr }}"
    assert set(pulumi["env"]) == {
        "PULUMI_ACCESS_TOKEN",
        "ALICLOUD_ACCESS_KEY",
        "ALICLOUD_SECRET_KEY",
        "ALICLOUD_REGION",
    }


def test_pull_requests_preview_every_stack_and_get_a_comment() -> None:
    preview = load("preview.yml")
    assert set(preview["on"]) == {"pull_request"}
    assert {"dev", "prod"} == STACKS
    job = preview["jobs"]["pulumi-preview"]
    assert set(job["strategy"]["matrix"]["stack"]) == STACKS
    assert job["with"] == {"command": "preview", "stack": "${{ matrix.stack }}", "comment-on-pr": True}
    assert job["permissions"]["pull-requests"] == "write"


def test_pull_requests_get_the_offline_plan_and_its_manifests_of_every_stack() -> None:
    job = load("preview.yml")["jobs"]["offline-plan"]
    assert set(job["strategy"]["matrix"]["stack"]) == STACKS
    runs = [step.get("run") for step in job["steps"]]
    assert "make setup" in runs
    assert "make preview STACK=${{ matrix.stack }}" in runs
    assert "make scan STACK=${{ matrix.stack }}" in runs
    [upload] = [step for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["path"] == "build/${{ matrix.stack }}/manifests"
    assert upload["with"]["if-no-files-found"] == "error"
    setup_python = [step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-python@")]
    assert [step["with"]["python-version"] for step in setup_python] == ["3.11"]


@pytest.mark.parametrize("kind", ["secrets", "vars"])
def test_every_secret_and_variable_the_workflows_use_is_documented(kind: str) -> None:
    used = {
        name
        for path in WORKFLOWS.glob("*.yml")
        for name in re.findall(rf"\b{kind}\.([A-Z_]+)", path.read_text())
    }
    assert used, kind
    documented = (REPO / "docs/ci-workflows.md").read_text()
    assert {name for name in used if f"`{name}`" not in documented} == set()
