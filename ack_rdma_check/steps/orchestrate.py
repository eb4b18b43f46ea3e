"""The whole check in order: pods, devices, plan, bandwidth (and latency), verdict, cleanup."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from ack_rdma_check.errors import SetupError
from ack_rdma_check.perftest import DEFAULT_PORT, DEFAULT_QPS, BandwidthReport, LatencyReport, PerftestParams
from ack_rdma_check.steps.perf import RunTiming, measure_bandwidth, measure_latency
from ack_rdma_check.steps.plan import RunPlan, make_plan
from ack_rdma_check.steps.pods import PodTarget, delete_created, locate, wait_on_two_nodes
from ack_rdma_check.steps.rdma import ProbeOptions, inspect
from ack_rdma_check.steps.record import StepLog, StepObserver, StepResult
from ack_rdma_check.transport import Cluster

EXIT_PASS = 0
EXIT_BELOW = 1
EXIT_SETUP = 2


@dataclass(frozen=True)
class CheckOptions:
    min_gbits: float
    resource_name: str = "rdma/hca"
    rdma_cm: bool = False
    latency: bool = False
    device: str | None = None
    netdev: str | None = None
    qps: int = DEFAULT_QPS
    port: int = DEFAULT_PORT
    pod_timeout: float = 300.0
    exec_timeout: float = 30.0
    timing: RunTiming = field(default_factory=RunTiming)


@dataclass(frozen=True)
class Verdict:
    exit_code: int
    reason: str


@dataclass(frozen=True)
class CheckResult:
    verdict: Verdict
    min_gbits: float
    steps: list[StepResult]
    plan: RunPlan | None = None
    bandwidth: BandwidthReport | None = None
    latency: LatencyReport | None = None


@dataclass
class _Findings:
    plan: RunPlan | None = None
    bandwidth: BandwidthReport | None = None
    latency: LatencyReport | None = None


def run_check(
    cluster: Cluster, target: PodTarget, options: CheckOptions, observer: StepObserver
) -> CheckResult:
    """Never raises SetupError: that is the exit-2 verdict. Objects created here are deleted in any case."""
    log = StepLog(observer)
    created: list[Mapping[str, Any]] = []
    findings = _Findings()
    try:
        verdict = _measure(cluster, target, options, log, created=created, out=findings)
    except SetupError as error:
        verdict = Verdict(EXIT_SETUP, error.reason)
    finally:
        if created:
            # A failed delete shows as a failed step; the verdict stays the measurement's.
            with suppress(SetupError):
                delete_created(cluster, created, log)
    return CheckResult(
        verdict, options.min_gbits, log.results, findings.plan, findings.bandwidth, findings.latency
    )


def _measure(
    cluster: Cluster,
    target: PodTarget,
    options: CheckOptions,
    log: StepLog,
    *,
    created: list[Mapping[str, Any]],
    out: _Findings,
) -> Verdict:
    refs = locate(cluster, target, log, created)
    pods = wait_on_two_nodes(cluster, refs, options.pod_timeout, log)
    probe = ProbeOptions(
        options.resource_name, options.qps, options.device, options.netdev, options.exec_timeout
    )
    endpoints = inspect(cluster, pods, probe, log)
    shared = PerftestParams(rdma_cm=options.rdma_cm, qps=options.qps, port=options.port)
    out.plan = make_plan(cluster, endpoints, shared, options.exec_timeout, log)
    out.bandwidth = measure_bandwidth(cluster, out.plan, options.timing, log)
    if options.latency:
        out.latency = measure_latency(cluster, out.plan, options.timing, log)
    return judge(out.bandwidth, options.min_gbits)


def judge(report: BandwidthReport, min_gbits: float) -> Verdict:
    measured = f"average {report.average_gbits:.2f} Gbit/s ({report.average_mb_s:.0f} MB/s)"
    if report.average_gbits >= min_gbits:
        return Verdict(EXIT_PASS, f"{measured} meets the expected {min_gbits:g} Gbit/s")
    return Verdict(EXIT_BELOW, f"{measured} is below the expected {min_gbits:g} Gbit/s")
