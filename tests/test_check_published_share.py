"""ack-rdma-check reports the measured rate as a share of what the RDMA instance type publishes (the program's
expectedGbits output), in the table and in JSON; a broken expectedGbits output is bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ack_rdma_check import cli
from ack_rdma_check.transport import Cluster, Kubeconfig
from tests.check_fixtures import pods, stack
from tests.check_fixtures.fake_cluster import FakeCluster


def run(argv: list[str]) -> tuple[int, str, str]:
    def connect(kubeconfig: Kubeconfig) -> Cluster:
        return FakeCluster([pods.roce_pod(0), pods.roce_pod(1)])

    out, err = io.StringIO(), io.StringIO()
    rc = cli.run(argv, {}, connect=connect, stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def test_json_gives_the_published_bandwidth_and_the_share(tmp_path: Path) -> None:
    outputs = stack.write_outputs(tmp_path / "outputs.json", expectedGbits=50)
    rc, stdout, stderr = run(["--outputs", str(outputs), "--json"])
    assert rc == 0, stderr
    document = json.loads(stdout)
    # The stand-in pods measure 46.05 Gbit/s on average.
    assert document["publishedGbits"] == 50.0
    assert document["shareOfPublished"] == pytest.approx(0.921)


def test_table_says_how_much_of_the_published_bandwidth_was_measured(tmp_path: Path) -> None:
    outputs = stack.write_outputs(tmp_path / "outputs.json", expectedGbits=50)
    rc, stdout, _ = run(["--outputs", str(outputs)])
    assert rc == 0
    assert "46.05 Gbit/s average is 92% of the 50 Gbit/s the RDMA instance type publishes" in stdout


def test_without_the_output_no_share_is_claimed(tmp_path: Path) -> None:
    outputs = stack.write_outputs(tmp_path / "outputs.json")
    rc, stdout, _ = run(["--outputs", str(outputs), "--json"])
    document = json.loads(stdout)
    assert rc == 0
    assert document["publishedGbits"] is None and document["shareOfPublished"] is None
    rc, table, _ = run(["--outputs", str(outputs)])
    assert "publishes" not in table


@pytest.mark.parametrize("value", [0, -5, "50", True, "x" * 5000])
def test_a_broken_expected_gbits_output_is_bad_input(tmp_path: Path, value: object) -> None:
    outputs = stack.write_outputs(tmp_path / "outputs.json", expectedGbits=value)
    rc, stdout, stderr = run(["--outputs", str(outputs)])
    assert rc == 2 and stdout == ""
    assert stderr.startswith("ack-rdma-check: The expectedGbits output of ")
    assert "must be a positive number of Gbit/s" in stderr
    assert len(stderr) < 600
