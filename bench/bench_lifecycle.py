"""Benchmark of the plugin's lifecycle as kubelet meets it: a real `rdma-device-plugin serve` process at
default settings (port poll every 1 s) on a fixture host (two ConnectX-6 HCAs, legacy hca mode), the kubelet
stand-in in this process, real unix sockets.

Measures:
- kubelet restart -> registered again, over 20 restarts done the way kubelet does them (stop; then on start
  delete every socket in the directory, create kubelet.sock, serve Registration). Timed from just before
  the new kubelet deletes the sockets and creates kubelet.sock to the moment it has the plugin registered
  (Register received, dialled back, GetDevicePluginOptions answered, ListAndWatch opened).
- the same after restart bursts, timed from the last restart of the burst: 40 pairs of restarts 2-5 ms
  apart, and 5 bursts of 100 restarts each 2-5 ms after the previous one (a crash-looping kubelet); the
  plugin must register with the last kubelet, whatever it was doing for the earlier ones.
- port flip -> ListAndWatch update: a port's state files rewritten in the fixture, timed until kubelet's
  stream delivers the changed health. Flips alternate down and up and start at a random point of the poll
  period (fixed seed), so the figures sample the whole period.
- the plugin's CPU use while idle (the port poll's cost).
Prints a table and writes bench/results/lifecycle.json.

Usage: venv/bin/python bench/bench_lifecycle.py
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import statistics
import sys
import time
from pathlib import Path

from benchlib import REPO, cpu_seconds, print_rows, run_and_record, two_hca_host

sys.path.insert(0, str(REPO / "plugin_image" / "tests"))

from kubelet_standin import KubeletStandin

RESULTS = REPO / "bench" / "results" / "lifecycle.json"
PLUGIN_CLI = Path(sys.executable).parent / "rdma-device-plugin"
RESOURCE = "rdma/hca"
RESTARTS = 20
PAIRS = 40
BURSTS = 10
BURST_RESTARTS = 100
GAP_MS = (2.0, 5.0)
FLIPS = 20
POLL_INTERVAL = 1.0  # the default of --health-poll-interval, stated here to time flips against it
IDLE_SECONDS = 10.0
REGISTER_PATTERNS = ("restart_to_registered_ms", "pair_to_registered_ms", "burst_to_registered_ms")
TARGETS = {**{pattern: 50.0 for pattern in REGISTER_PATTERNS}, "port_flip_to_update_s": 2.0}


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))]


def summarize(samples: list[float], digits: int) -> dict[str, object]:
    return {
        "runs": len(samples),
        "p50": round(statistics.median(samples), digits),
        "p99": round(percentile(samples, 0.99), digits),
        "max": round(max(samples), digits),
        "min": round(min(samples), digits),
        "samples": [round(sample, digits) for sample in samples],
    }


async def restarts(kubelet: KubeletStandin) -> tuple[list[float], list[float]]:
    """Per restart, milliseconds from the new kubelet's start to the plugin's Register arriving, and to the
    plugin registered with it."""
    arrived, registered = [], []
    for _ in range(RESTARTS):
        await kubelet.stop()
        started = time.perf_counter()
        await kubelet.start()
        endpoint = await kubelet.wait_registered(RESOURCE, timeout=10)
        registered.append((time.perf_counter() - started) * 1000)
        arrived.append((kubelet.arrivals[-1] - started) * 1000)
        assert len(await endpoint.next_update()) == 1000
    return arrived, registered


async def bursts(kubelet: KubeletStandin, runs: int, restarts: int, rng: random.Random) -> list[float]:
    """Per run, `restarts` kubelet restarts each 2-5 ms after the previous one; milliseconds from the last
    restart to the plugin registered with that last kubelet."""
    registered = []
    for _ in range(runs):
        for _ in range(restarts - 1):
            await kubelet.restart()
            await asyncio.sleep(rng.uniform(*GAP_MS) / 1000)
        await kubelet.stop()
        started = time.perf_counter()
        await kubelet.start()
        endpoint = await kubelet.wait_registered(RESOURCE, timeout=30)
        registered.append((time.perf_counter() - started) * 1000)
        assert len(await endpoint.next_update()) == 1000
    return registered


async def bench(root: Path) -> dict[str, object]:
    host = two_hca_host(root)
    tree, plugin_dir = host.tree, host.plugin_dir
    log_path = root / "plugin.log"
    load_before = round(os.getloadavg()[0], 2)
    kubelet = KubeletStandin(plugin_dir)
    await kubelet.start()
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            str(PLUGIN_CLI),
            "serve",
            *host.serve_args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        endpoint = await kubelet.wait_registered(RESOURCE, timeout=10)
        assert len(await endpoint.next_update()) == 1000
        arrived_ms, restart_ms = await restarts(kubelet)
        rng = random.Random(4)
        pair_ms = await bursts(kubelet, PAIRS, 2, rng)
        burst_ms = await bursts(kubelet, BURSTS, BURST_RESTARTS, rng)
        endpoint = kubelet.endpoints[RESOURCE]

        cpu_before = cpu_seconds(process.pid)
        await asyncio.sleep(IDLE_SECONDS)
        idle_cpu_percent = (cpu_seconds(process.pid) - cpu_before) / IDLE_SECONDS * 100

        flip_s = []
        for index in range(FLIPS):
            await asyncio.sleep(rng.uniform(0, POLL_INTERVAL))
            down = index % 2 == 0
            started = time.perf_counter()
            if down:
                tree.set_port_state("mlx5_1", state="1: DOWN", phys_state="3: Disabled")
            else:
                tree.set_port_state("mlx5_1", state="4: ACTIVE", phys_state="5: LinkUp")
            devices = await endpoint.next_update(timeout=10)
            flip_s.append(time.perf_counter() - started)
            expected = {"Healthy", "Unhealthy"} if down else {"Healthy"}
            assert {device.health for device in devices} == expected
        process.send_signal(signal.SIGTERM)
        exit_status = await asyncio.wait_for(process.wait(), 5)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await kubelet.stop()
    log_text = log_path.read_text()
    return {
        "fixture": "ib_two_numa, legacy hca mode (1000 IDs over 2 HCAs), rediscovery off, default port poll",
        "cpus": os.cpu_count(),
        "loadavg_1min": {"before": load_before, "after": round(os.getloadavg()[0], 2)},
        "restart_to_register_call_ms": summarize(arrived_ms, 2),
        "restart_to_registered_ms": summarize(restart_ms, 2),
        "pair_to_registered_ms": summarize(pair_ms, 2),
        "burst_to_registered_ms": summarize(burst_ms, 2),
        "port_flip_to_update_s": {**summarize(flip_s, 3), "poll_interval_s": POLL_INTERVAL},
        "idle_cpu_percent": round(idle_cpu_percent, 2),
        "register_calls": len(
            [line for line in log_text.splitlines() if f"registered {RESOURCE} with kubelet" in line]
        ),
        "tracebacks_in_log": log_text.count("Traceback"),
        "exit_status_on_sigterm": exit_status,
        "targets": TARGETS,
    }


def verdicts(result: dict[str, object]) -> dict[str, bool]:
    flip = result["port_flip_to_update_s"]
    assert isinstance(flip, dict)
    passed = {"port_flip_to_update_s": flip["max"] <= TARGETS["port_flip_to_update_s"]}
    for pattern in REGISTER_PATTERNS:
        figures = result[pattern]
        assert isinstance(figures, dict)
        passed[pattern] = figures["p99"] <= TARGETS[pattern]
    return passed


def register_rows(result: dict[str, object], pattern: str, label: str, verdict: str) -> list[tuple[str, ...]]:
    figures = result[pattern]
    assert isinstance(figures, dict)
    return [
        (f"{label}, p50", f"{figures['p50']:.2f} ms", "", ""),
        (f"{label}, p99", f"{figures['p99']:.2f} ms", "<= 50 ms", verdict),
        (f"{label}, max", f"{figures['max']:.2f} ms", "", ""),
    ]


def print_table(result: dict[str, object], passed: dict[str, bool]) -> None:
    flip, load = result["port_flip_to_update_s"], result["loadavg_1min"]
    arrived = result["restart_to_register_call_ms"]
    assert isinstance(flip, dict) and isinstance(load, dict)
    assert isinstance(arrived, dict)

    def mark(key: str) -> str:
        return "ok" if passed[key] else "MISSED"

    rows = [
        (f"kubelet restart -> Register arrives, p50 of {RESTARTS}", f"{arrived['p50']:.2f} ms", "", ""),
        (f"kubelet restart -> Register arrives, max of {RESTARTS}", f"{arrived['max']:.2f} ms", "", ""),
        *[
            row
            for pattern, label in (
                ("restart_to_registered_ms", f"kubelet restart -> registered ({RESTARTS} paced)"),
                ("pair_to_registered_ms", f"2nd of 2 restarts 2-5 ms apart -> registered ({PAIRS} pairs)"),
                ("burst_to_registered_ms",
                 f"last of {BURST_RESTARTS} restarts 2-5 ms apart -> registered ({BURSTS} bursts)"),
            )
            for row in register_rows(result, pattern, label, mark(pattern))
        ],
        (f"port flip -> ListAndWatch update, p50 of {FLIPS}", f"{flip['p50']:.3f} s", "", ""),
        (f"port flip -> ListAndWatch update, max of {FLIPS}", f"{flip['max']:.3f} s", "<= 2 s",
         mark("port_flip_to_update_s")),
        ("plugin CPU while idle (1 s port poll)", f"{result['idle_cpu_percent']:.2f} %", "", ""),
        ("registrations logged (start, restarts, bursts)", str(result["register_calls"]), "", ""),
        ("exit status on SIGTERM", str(result["exit_status_on_sigterm"]), "0", ""),
        ("load average (1 min) before / after", f"{load['before']} / {load['after']}", "", ""),
    ]  # fmt: skip
    header = ("measure", "value", "target", "")
    print_rows(header, rows)


def main() -> int:
    return run_and_record(bench, verdicts, print_table, RESULTS)


if __name__ == "__main__":
    sys.exit(main())
