"""The ack-rdma-check command line: inputs from flags, stack outputs (file or the Pulumi CLI, here a stand-in
executable) and KUBECONFIG; bad input exits 2 with one paragraph; results as a table or JSON."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from ack_rdma_check import cli
from ack_rdma_check.transport import Cluster, Kubeconfig
from tests.check_fixtures import pods, stack
from tests.check_fixtures.fake_cluster import FakeCluster, FakePod

ENTRY_POINT = Path(sys.executable).parent / "ack-rdma-check"


class Run:
    def __init__(self, rc: int, stdout: str, stderr: str, kubeconfigs: list[Kubeconfig]) -> None:
        self.rc, self.stdout, self.stderr, self.kubeconfigs = rc, stdout, stderr, kubeconfigs


def run(argv: list[str], environ: Mapping[str, str] | None = None, cluster: FakeCluster | None = None) -> Run:
    """The CLI in process, with the cluster connection replaced by the stand-in cluster."""
    seen: list[Kubeconfig] = []

    def connect(kubeconfig: Kubeconfig) -> Cluster:
        seen.append(kubeconfig)
        return cluster or FakeCluster([pods.roce_pod(0), pods.roce_pod(1)])

    out, err = io.StringIO(), io.StringIO()
    rc = cli.run(argv, environ or {}, connect=connect, stdout=out, stderr=err)
    return Run(rc, out.getvalue(), err.getvalue(), seen)


def assert_usage_error(result: Run, *fragments: str) -> None:
    assert result.rc == 2
    assert result.stdout == ""
    message = result.stderr
    assert message.startswith("ack-rdma-check: ") and message.endswith("\n")
    assert "\n" not in message.rstrip("\n"), "one paragraph"
    assert "Traceback" not in message
    for fragment in fragments:
        assert fragment in message
    assert not result.kubeconfigs, "no cluster contact on bad input"


def kubeconfig_file(directory: Path) -> Path:
    path = directory / "kubeconfig"
    path.write_text(stack.KUBECONFIG_YAML, encoding="utf-8")
    return path


@pytest.fixture
def no_pulumi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A PATH with the usual tools but no pulumi."""
    empty = tmp_path / "no-pulumi-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", f"{empty}:/usr/bin:/bin")


def test_entry_point_without_any_kubeconfig_explains_the_three_ways(tmp_path: Path) -> None:
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [str(ENTRY_POINT)], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(
        "ack-rdma-check: No kubeconfig found: pass --kubeconfig PATH, set KUBECONFIG"
    )
    assert "--outputs FILE" in done.stderr and "--stack NAME" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


@pytest.mark.usefixtures("no_pulumi")
def test_unreadable_outputs_file(tmp_path: Path) -> None:
    missing = tmp_path / "outputs.json"
    assert_usage_error(run(["--outputs", str(missing)]), f"--outputs {missing} cannot be read (No such file")
    assert_usage_error(
        run(["--outputs", str(tmp_path)]), f"--outputs {tmp_path} is a directory, not a regular file"
    )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "is not JSON (Expecting property name enclosed in double quotes at line 1)"),
        ('["kubeconfig"]', "must be a JSON object of stack outputs"),
    ],
)
def test_outputs_file_that_is_not_stack_outputs(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(content, encoding="utf-8")
    assert_usage_error(run(["--outputs", str(path)]), fragment, "pulumi stack output --json --show-secrets")


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf", ""])
def test_bad_min_gbits(tmp_path: Path, value: str) -> None:
    outputs = stack.write_outputs(tmp_path / "outputs.json")
    assert_usage_error(
        run(["--outputs", str(outputs), "--min-gbits", value]),
        f"Argument --min-gbits: expected a positive number of Gbit/s such as 44, got {value!r}",
    )


def test_bad_check_min_gbits_output(tmp_path: Path) -> None:
    outputs = stack.write_outputs(tmp_path / "outputs.json", checkMinGbits="fast")
    assert_usage_error(run(["--outputs", str(outputs)]), "The checkMinGbits output", "'fast'", "--min-gbits")


def test_hidden_kubeconfig_output(tmp_path: Path) -> None:
    outputs = stack.write_outputs(tmp_path / "outputs.json", kubeconfig="[secret]")
    assert_usage_error(run(["--outputs", str(outputs)]), "hidden as [secret]", "--show-secrets")


def test_missing_kubeconfig_file(tmp_path: Path) -> None:
    assert_usage_error(
        run(["--kubeconfig", str(tmp_path / "nope")]),
        f"--kubeconfig {tmp_path / 'nope'} cannot be read (No such file or directory)",
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("apiVersion: v1\nkind: Config\nclusters: []\n", "The kubeconfig --kubeconfig {} cannot be used: "),
        ("garbage: [\n", "--kubeconfig {} is not usable YAML (while parsing a flow node"),
        ("- just\n- a list\n", "--kubeconfig {} is not a kubeconfig (a YAML mapping)"),
    ],
)
def test_kubeconfig_the_client_cannot_load(tmp_path: Path, content: str, problem: str) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text(content, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    rc = cli.run(["--kubeconfig", str(broken), "--selector", "app=x"], {}, stdout=out, stderr=err)
    assert rc == 2
    message = err.getvalue()
    assert message.startswith(f"ack-rdma-check: {problem.format(broken)}")
    assert message.count("\n") == 1 and "Traceback" not in message


@pytest.mark.usefixtures("no_pulumi")
def test_pod_choice_errors(tmp_path: Path) -> None:
    kubeconfig = {"KUBECONFIG": str(kubeconfig_file(tmp_path))}
    assert_usage_error(run([], kubeconfig), "No test pods known", "--create", "--selector")
    assert_usage_error(run(["--create", "--selector", "a=b"], kubeconfig), "exclude each other")
    assert_usage_error(run(["--create"], kubeconfig), "--create needs the test pod image", "--image")
    pods_off = {"enabled": False, "namespace": "rdma-test", "names": ["rdma-test-0", "rdma-test-1"]}
    off = stack.write_outputs(tmp_path / "off.json", testPods=pods_off)
    assert_usage_error(run(["--outputs", str(off)]), "test pods are off", "--create", "testPods: true")
    bad = stack.write_outputs(tmp_path / "bad.json", testPods={"names": ["only-one"]})
    assert_usage_error(run(["--outputs", str(bad)]), "The testPods output", "Re-export")


def test_unknown_flag_and_exclusive_sources() -> None:
    assert_usage_error(run(["--bandwidth", "44"]), "Unrecognized arguments: --bandwidth 44", "--help")
    assert_usage_error(run(["--outputs", "a.json", "--stack", "dev"]), "not allowed with argument")


def test_outputs_file_end_to_end_as_json(tmp_path: Path) -> None:
    outputs = stack.write_outputs(tmp_path / "outputs.json")
    result = run(["--outputs", str(outputs), "--json"], {"KUBECONFIG": "/ignored/when/outputs/have/one"})
    assert result.rc == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["exitCode"] == 0 and document["verdict"] == "PASS"
    assert document["minGbits"] == 40.0
    assert document["bandwidth"]["averageGbits"] == pytest.approx(46.05)
    assert document["run"]["clientCommand"][-3:] == ["-x", "3", pods.POD_IPS[0]]
    assert [step["outcome"] for step in document["steps"]] == ["ok"] * 8
    [kubeconfig] = result.kubeconfigs
    assert kubeconfig.content == yaml.safe_load(stack.KUBECONFIG_YAML)
    assert "ok Test pods" in result.stderr  # progress goes to stderr


def test_table_output_and_below_expectation(tmp_path: Path) -> None:
    outputs = stack.write_outputs(tmp_path / "outputs.json", checkMinGbits=50)
    result = run(["--outputs", str(outputs)])
    assert result.rc == 1
    assert (
        "BELOW EXPECTATION: average 46.05 Gbit/s (5490 MB/s) is below the expected 50 Gbit/s" in result.stdout
    )
    assert "server: ib_read_bw -q 30 -F --report_gbits -p 18515 -d mlx5_bond_0 -x 3" in result.stdout
    assert "Transport and GID" in result.stdout


def test_pulumi_cli_stand_in_gives_the_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    stack.pulumi_stand_in(bin_dir, stack.write_outputs(tmp_path / "outputs.json", checkMinGbits=44))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    result = run(["--stack", "dev", "--json"])
    assert result.rc == 0, result.stderr
    args = (bin_dir / "pulumi.args").read_text(encoding="utf-8").split()
    assert args == ["stack", "output", "--json", "--show-secrets", "--stack", "dev"]
    assert json.loads(result.stdout)["minGbits"] == 44
    assert result.kubeconfigs[0].origin.startswith(
        "from the kubeconfig output of `pulumi stack output` --stack dev"
    )


def test_current_stack_wins_over_kubeconfig_in_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    stack.pulumi_stand_in(bin_dir, stack.write_outputs(tmp_path / "outputs.json"))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    result = run([], {"KUBECONFIG": "/home/me/.kube/other-cluster"})
    assert result.rc == 0
    assert (bin_dir / "pulumi.args").read_text(encoding="utf-8").split() == [
        "stack",
        "output",
        "--json",
        "--show-secrets",
    ]
    assert result.kubeconfigs[0].content == yaml.safe_load(stack.KUBECONFIG_YAML)


def failing_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stderr: str) -> None:
    empty = tmp_path / "empty"
    empty.write_text("", encoding="utf-8")
    stack.pulumi_stand_in(tmp_path / "bin", empty, rc=255, stderr=stderr)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")


def test_outside_the_project_kubeconfig_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing_pulumi(tmp_path, monkeypatch, "error: no Pulumi.yaml project file found")
    path = str(kubeconfig_file(tmp_path))
    result = run(["--selector", "app.kubernetes.io/name=rdma-test"], {"KUBECONFIG": f"/absent:{path}"})
    assert result.rc == 0
    assert result.kubeconfigs == [Kubeconfig("from KUBECONFIG", path=f"/absent:{path}")]
    assert_usage_error(run([]), "`pulumi stack output` failed: error: no Pulumi.yaml project file found.")


def test_pulumi_cli_failure_is_quoted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing_pulumi(tmp_path, monkeypatch, "error: no stack named 'prod' found")
    assert_usage_error(
        run(["--stack", "prod"]),
        "`pulumi stack output` --stack prod failed: error: no stack named 'prod' found.",
    )


@pytest.mark.usefixtures("no_pulumi")
def test_stack_without_the_pulumi_cli() -> None:
    assert_usage_error(run(["--stack", "dev"]), "--stack dev needs the pulumi CLI, which is not on PATH")


def _scheduler(manifests: list[Mapping[str, Any]]) -> FakeCluster:
    def schedule(manifest: Mapping[str, Any]) -> FakePod:
        manifests.append(manifest)
        index = int(manifest["metadata"]["name"].rsplit("-", 1)[1])
        host = bool(manifest["spec"].get("hostNetwork"))
        return pods.roce_pod(index, host_network=host, name=manifest["metadata"]["name"])

    return FakeCluster([], on_create=schedule)


def test_create_takes_the_image_from_the_manifest_output(tmp_path: Path) -> None:
    outputs = stack.write_outputs(
        tmp_path / "outputs.json",
        testPods={"enabled": False, "namespace": "rdma-test", "names": ["rdma-test-0", "rdma-test-1"]},
    )
    created: list[Mapping[str, Any]] = []
    cluster = _scheduler(created)
    result = run(["--outputs", str(outputs), "--create"], cluster=cluster)
    assert result.rc == 0, result.stdout
    assert [m["metadata"]["name"] for m in created] == ["rdma-test-0", "rdma-test-1"]
    assert {m["spec"]["containers"][0]["image"] for m in created} == {stack.TOOLS_IMAGE}
    assert cluster.deleted == [
        "Pod/rdma-test-1",
        "Pod/rdma-test-0",
        "ServiceAccount/rdma-test",
        "Namespace/rdma-test",
    ]


def test_create_with_rdma_cm_makes_host_network_pods(tmp_path: Path) -> None:
    outputs = stack.write_outputs(tmp_path / "outputs.json")
    created: list[Mapping[str, Any]] = []
    cluster = _scheduler(created)
    result = run(
        ["--outputs", str(outputs), "--create", "--rdma-cm", "--image", "my/tools:1", "--json"],
        cluster=cluster,
    )
    assert result.rc == 0, result.stdout
    assert [m["metadata"]["name"] for m in created] == ["rdma-test-hostnet-0", "rdma-test-hostnet-1"]
    assert all(m["spec"]["hostNetwork"] is True for m in created)
    assert {m["spec"]["containers"][0]["image"] for m in created} == {"my/tools:1"}
    assert json.loads(result.stdout)["run"]["address"] == pods.NODE_IPS[0]
