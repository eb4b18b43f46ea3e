"""What the user sees: each step as it runs (rich), a final table and verdict, or one JSON document."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.status import Status
from rich.table import Table

from ack_rdma_check.errors import UsageError
from ack_rdma_check.input_files import echo
from ack_rdma_check.inputs import StackOutputs
from ack_rdma_check.perftest import BandwidthReport, LatencyReport
from ack_rdma_check.steps.orchestrate import EXIT_BELOW, EXIT_PASS, CheckResult
from ack_rdma_check.steps.record import Outcome, StepResult

_VERDICT_WORD = {EXIT_PASS: "PASS", EXIT_BELOW: "BELOW EXPECTATION"}
_MARK = {Outcome.OK: "[green]ok[/]", Outcome.FAILED: "[red]failed[/]"}


class RichProgress:
    """A spinner while a step runs, then one line with its outcome (on stderr, so stdout stays the result)."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._status: Status | None = None

    def begin(self, name: str) -> None:
        self._status = self._console.status(f"{name} ...")
        self._status.start()

    def end(self, result: StepResult) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        self._console.print(
            f"{_MARK[result.outcome]} {result.name} ({result.seconds:.1f} s): {result.detail}", soft_wrap=True
        )


def published_gbits(outputs: StackOutputs) -> float | None:
    """The bandwidth the RDMA nodes' instance type publishes (the program's ``expectedGbits`` output: the
    slowest baseline among the types the RDMA pools buy), or ``None`` when the outputs do not say."""
    value = outputs.get("expectedGbits")
    if value is None:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value <= 0:
        raise UsageError(
            f"The expectedGbits output of {outputs.origin} is {echo(value)}; it must be a positive number of "
            "Gbit/s (the published bandwidth of the RDMA instance type). Re-run `pulumi up` and export the "
            "outputs again."
        )
    return float(value)


def share_of_published(result: CheckResult, published: float | None) -> float | None:
    if result.bandwidth is None or published is None:
        return None
    return result.bandwidth.average_gbits / published


def share_line(result: CheckResult, published: float | None) -> str | None:
    """The measured average as a share of what the instance type publishes, for the summary."""
    share = share_of_published(result, published)
    if share is None or result.bandwidth is None or published is None:
        return None
    return (
        f"{result.bandwidth.average_gbits:.2f} Gbit/s average is {share:.0%} of the {published:g} Gbit/s "
        "the RDMA instance type publishes (VPC baseline, which eRDMA traffic shares)"
    )


def verdict_line(result: CheckResult) -> str:
    word = _VERDICT_WORD.get(result.verdict.exit_code, "SETUP ERROR")
    return f"{word}: {result.verdict.reason}"


def print_summary(result: CheckResult, console: Console, published: float | None = None) -> None:
    table = Table(title="ack-rdma-check", show_lines=False)
    table.add_column("step")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for step in result.steps:
        table.add_row(step.name, _MARK[step.outcome], step.detail)
    console.print(table)
    if result.plan is not None:
        plan = result.plan
        commands = {
            "server": plan.server_params.bw_argv(),
            "client": plan.client_params.bw_argv(plan.address),
        }
        for side, argv in commands.items():
            console.print(f"{side}: {' '.join(argv)}", markup=False, soft_wrap=True)
    share = share_line(result, published)
    if share is not None:
        console.print(share, markup=False, soft_wrap=True)
    console.print(verdict_line(result), markup=False, soft_wrap=True)


def to_json(result: CheckResult, published: float | None = None) -> dict[str, Any]:
    plan = result.plan
    share = share_of_published(result, published)
    return {
        "exitCode": result.verdict.exit_code,
        "verdict": _VERDICT_WORD.get(result.verdict.exit_code, "SETUP ERROR"),
        "reason": result.verdict.reason,
        "minGbits": result.min_gbits,
        "publishedGbits": published,
        "shareOfPublished": None if share is None else round(share, 3),
        "bandwidth": None if result.bandwidth is None else _bandwidth_json(result.bandwidth),
        "latency": None if result.latency is None else _latency_json(result.latency),
        "run": None
        if plan is None
        else {
            "server": {
                "pod": str(plan.server.pod.ref),
                "node": plan.server.pod.node,
                "device": plan.server.device,
            },
            "client": {
                "pod": str(plan.client.pod.ref),
                "node": plan.client.pod.node,
                "device": plan.client.device,
            },
            "address": plan.address,
            "network": plan.network,
            "mode": plan.mode,
            "serverCommand": plan.server_params.bw_argv(),
            "clientCommand": plan.client_params.bw_argv(plan.address),
        },
        "steps": [
            {"name": s.name, "outcome": s.outcome.value, "detail": s.detail, "seconds": round(s.seconds, 3)}
            for s in result.steps
        ],
    }


def _bandwidth_json(report: BandwidthReport) -> dict[str, Any]:
    """MB is perftest's: 2^20 bytes; Gbit is 10^9 bits."""
    return {
        "messageBytes": report.message_bytes,
        "iterations": report.iterations,
        "peakGbits": report.peak_gbits,
        "averageGbits": report.average_gbits,
        "peakMBps": report.peak_mb_s,
        "averageMBps": report.average_mb_s,
        "msgRateMpps": report.msg_rate_mpps,
        "reportUnit": f"{report.unit}/sec",
    }


def _latency_json(report: LatencyReport) -> dict[str, Any]:
    return {
        "messageBytes": report.message_bytes,
        "iterations": report.iterations,
        "minUsec": report.min_usec,
        "maxUsec": report.max_usec,
        "typicalUsec": report.typical_usec,
        "averageUsec": report.average_usec,
        "p99Usec": report.p99_usec,
    }
