"""Running perftest: the server in one pod, the client in the other, retried until the server listens."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ack_rdma_check import erdma
from ack_rdma_check.errors import SetupError
from ack_rdma_check.perftest import (
    BandwidthReport,
    LatencyReport,
    ReportParseError,
    last_line,
    parse_bandwidth,
    parse_latency,
)
from ack_rdma_check.perftest_errors import Diagnosis, diagnose
from ack_rdma_check.steps.plan import RunPlan
from ack_rdma_check.steps.rdma import run_in
from ack_rdma_check.steps.record import StepLog
from ack_rdma_check.transport import Background, Cluster, ExecResult

Report = TypeVar("Report", BandwidthReport, LatencyReport)


@dataclass(frozen=True)
class RunTiming:
    connect_timeout: float = 30.0
    """How long the client keeps retrying while the server is not listening yet."""
    retry_interval: float = 1.0
    """Pause between client attempts; the server's exit ends it early."""
    run_timeout: float = 120.0
    """One client run, connection to report."""
    server_exit_timeout: float = 15.0
    """How long the server may take to exit after the client has its report."""


def measure_bandwidth(cluster: Cluster, plan: RunPlan, timing: RunTiming, log: StepLog) -> BandwidthReport:
    name = f"ib_read_bw -q {plan.client_params.qps}"
    with log.step(name) as note:
        argvs = (plan.server_params.bw_argv(), plan.client_params.bw_argv(plan.address))
        report, attempts = _measure(cluster, plan, argvs, parse_bandwidth, timing)
        note.detail = (
            f"average {report.average_gbits:.2f} Gbit/s ({report.average_mb_s:.0f} MB/s), peak "
            f"{report.peak_gbits:.2f} Gbit/s, {report.msg_rate_mpps:.6f} Mpps{_attempts(attempts)}"
        )
    return report


def measure_latency(cluster: Cluster, plan: RunPlan, timing: RunTiming, log: StepLog) -> LatencyReport:
    with log.step("ib_read_lat") as note:
        argvs = (plan.server_params.lat_argv(), plan.client_params.lat_argv(plan.address))
        report, attempts = _measure(cluster, plan, argvs, parse_latency, timing)
        average = "" if report.average_usec is None else f", average {report.average_usec:.2f} us"
        note.detail = (
            f"typical {report.typical_usec:.2f} us{average}, min {report.min_usec:.2f} us"
            + _attempts(attempts)
        )
    return report


def _measure(
    cluster: Cluster,
    plan: RunPlan,
    argvs: tuple[Sequence[str], Sequence[str]],
    parse: Callable[[str], Report],
    timing: RunTiming,
) -> tuple[Report, int]:
    """Server argv first, then the client's; returns the parsed client report and the client attempts."""
    server_argv, client_argv = argvs
    tool = client_argv[0]
    server = cluster.start(plan.server.pod.ref, server_argv)
    try:
        result, attempts = _client_until_served(cluster, plan, server, client_argv, timing)
        server.wait(timing.server_exit_timeout)
    finally:
        server.stop()
    try:
        return parse(result.stdout), attempts
    except ReportParseError as error:
        raise SetupError(f"could not parse the {tool} report from {plan.client.where}: {error}") from None


def _client_until_served(
    cluster: Cluster, plan: RunPlan, server: Background, client_argv: Sequence[str], timing: RunTiming
) -> tuple[ExecResult, int]:
    tool = client_argv[0]
    deadline = time.monotonic() + timing.connect_timeout
    attempts = 0
    while True:
        attempts += 1
        result = run_in(cluster, plan.client.pod, client_argv, timing.run_timeout)
        if result.rc == 0:
            return result, attempts
        diagnosis = diagnose(result.output)
        client = f"{tool} client in {plan.client.where}"
        if diagnosis is None:
            raise SetupError(f"{client} exited {result.rc}: {last_line(result.output)!r}")
        if not diagnosis.retryable:
            raise SetupError(_reason(diagnosis, client, plan))
        ended = server.wait(timing.retry_interval)
        if ended is not None:
            raise SetupError(_server_failure(tool, plan, ended))
        if time.monotonic() >= deadline:
            raise SetupError(
                f"server unreachable after {attempts} attempts in {timing.connect_timeout:g} s: "
                + _reason(diagnosis, f"{client} -> {plan.address}", plan)
            )


def _server_failure(tool: str, plan: RunPlan, ended: ExecResult) -> str:
    server = f"{tool} server in {plan.server.where}"
    diagnosis = diagnose(ended.output)
    if diagnosis is not None:
        return _reason(diagnosis, server, plan)
    return f"{server} exited {ended.rc} before the client connected: {last_line(ended.output)!r}"


def _reason(diagnosis: Diagnosis, where: str, plan: RunPlan) -> str:
    """perftest's failure and its generic fix, then what it means on the eRDMA driver mode in use."""
    reason = diagnosis.reason(where)
    mode = plan.server.erdma_mode
    if mode is None:
        return reason
    gid_index = plan.server.gid.index if plan.server.gid else None
    fix = erdma.failure_fix(diagnosis.failure, mode, plan.server.netdev, gid_index)
    return reason if fix is None else f"{reason}; {fix}"


def _attempts(count: int) -> str:
    return "" if count == 1 else f" ({count} client attempts)"
