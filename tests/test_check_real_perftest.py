"""Debian's real perftest and rdma-core tools on this machine, which has no RDMA device: their real error
output must become the check's exit-2 verdict with the right one-line reason."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ack_rdma_check import devinfo
from ack_rdma_check.perftest import PerftestParams
from ack_rdma_check.perftest_errors import Failure, diagnose
from ack_rdma_check.steps.orchestrate import CheckOptions, run_check
from ack_rdma_check.steps.perf import RunTiming
from ack_rdma_check.steps.pods import PodTarget
from ack_rdma_check.steps.record import StepResult
from tests.check_fixtures import pods
from tests.check_fixtures.fake_cluster import FakeCluster

NAMED = PodTarget("rdma-test", names=("rdma-test-0", "rdma-test-1"))


class Quiet:
    def begin(self, name: str) -> None:
        pass

    def end(self, result: StepResult) -> None:
        pass


@pytest.fixture(autouse=True)
def _no_rdma_here() -> None:
    for tool in ("ib_read_bw", "ibv_devinfo"):
        assert shutil.which(tool), (
            f"{tool} is missing: install perftest and ibverbs-utils (scripts/system-packages.txt; "
            "`make test` installs them as root and prints the apt-get line otherwise)"
        )
    devices = Path("/sys/class/infiniband")
    if devices.is_dir() and any(devices.iterdir()):
        pytest.skip("this machine has RDMA devices; the no-device error cannot be produced here")


def test_real_ib_read_bw_error_is_diagnosed_as_no_device() -> None:
    done = subprocess.run(PerftestParams().bw_argv(), capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode != 0
    diagnosis = diagnose(done.stdout + done.stderr)
    assert diagnosis is not None and diagnosis.failure is Failure.NO_DEVICE
    assert diagnosis.line in done.stderr


def test_check_turns_the_real_ib_read_bw_error_into_exit_2() -> None:
    real = frozenset({"ib_read_bw"})
    cluster = FakeCluster([pods.roce_pod(0, real_tools=real), pods.roce_pod(1, real_tools=real)])
    result = run_check(
        cluster, NAMED, CheckOptions(min_gbits=40.0, timing=RunTiming(retry_interval=0.0)), Quiet()
    )
    assert result.verdict.exit_code == 2
    reason = result.verdict.reason
    assert reason.startswith(f"ib_read_bw client in pod rdma-test-1 on {pods.NODES[1]}: ")
    assert "the pod has no usable RDMA device" in reason and "\n" not in reason
    quoted = reason.split(": ")[1]
    assert (
        quoted.strip("'\"")
        in subprocess.run(["ib_read_bw"], capture_output=True, text=True, timeout=30, check=False).stderr
    )  # the real binary's own words


def test_check_turns_the_real_ibv_devinfo_error_into_exit_2() -> None:
    real = frozenset({"ibv_devinfo"})
    cluster = FakeCluster([pods.roce_pod(0, real_tools=real), pods.roce_pod(1)])
    result = run_check(cluster, NAMED, CheckOptions(min_gbits=40.0), Quiet())
    assert result.verdict.exit_code == 2
    assert result.verdict.reason.startswith(f"pod rdma-test-0 on {pods.NODES[0]}: ibv_devinfo: ")
    assert "the pod has no usable RDMA device" in result.verdict.reason
    assert result.steps[-1].name == "Active RDMA port"
    assert (
        devinfo.parse(subprocess.run(devinfo.ARGV, capture_output=True, text=True, check=False).stdout) == []
    )
