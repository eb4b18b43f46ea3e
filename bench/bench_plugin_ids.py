"""What a pool's ID count costs a real plugin process: time to the first ListAndWatch update, the update's
size against kubelet's 4 MiB gRPC receive limit, and the process's memory against the DaemonSet's 160 Mi
limit.

For each count: `rdma-device-plugin serve` on a fixture host (two ConnectX-6 HCAs) with one shared pool of
that many IDs, the kubelet stand-in in this process (its gRPC channel keeps grpc's default 4 MiB receive
limit, as kubelet's does); then a port flip, which makes the plugin build and send a second full update.
Peak RSS is the process's VmHWM after the flip. The largest count is config.MAX_IDS_PER_POOL, the bound the
config enforces.

Usage: venv/bin/python bench/bench_plugin_ids.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from benchlib import REPO, print_rows, run_and_record

sys.path.insert(0, str(REPO / "plugin_image" / "tests"))

from plugin_harness import node, start_plugin_process
from rdma_device_plugin.api import api_pb2
from rdma_device_plugin.config import MAX_IDS_PER_POOL

RESULTS = REPO / "bench" / "results" / "plugin_ids.json"
RESOURCE = "rdma/hca"
COUNTS = (1000, 10_000, MAX_IDS_PER_POOL)
KUBELET_RECV_LIMIT = 4 * 1024 * 1024
MEMORY_LIMIT_MIB = 160
# Peak RSS target: at least 60 MiB of the limit left for Allocate bursts and a reload.
TARGETS = {"update_bytes": KUBELET_RECV_LIMIT, "peak_rss_mib": MEMORY_LIMIT_MIB - 60}


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


async def one_count(count: int) -> dict[str, object]:
    pool = {"resourceName": "hca", "rdmaHcaMax": count, "selectors": {}}
    async with node("ib_two_numa", {"periodicUpdateInterval": 0, "configList": [pool]}) as host:
        started = time.perf_counter()
        plugin = await start_plugin_process(host)
        process = plugin.process
        try:
            endpoint = await host.kubelet.wait_registered(RESOURCE, timeout=30)
            first = await endpoint.next_update(timeout=60)
            first_s = time.perf_counter() - started
            assert len(first) == count, len(first)
            rss_first = _status_kib(process.pid, "VmRSS")
            host.tree.set_port_state("mlx5_1", state="1: DOWN", phys_state="3: Disabled")
            flipped = time.perf_counter()
            second = await endpoint.next_update(timeout=60)
            flip_s = time.perf_counter() - flipped
            size = api_pb2.ListAndWatchResponse(devices=second).ByteSize()
            peak = _status_kib(process.pid, "VmHWM")
            status = await plugin.terminate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    return {
        "ids": count,
        "start_to_first_update_s": round(first_s, 3),
        "port_flip_to_update_s": round(flip_s, 3),
        "update_bytes": size,
        "bytes_per_id": round(size / count, 2),
        "rss_after_first_update_mib": round(rss_first / 1024, 1),
        "peak_rss_mib": round(peak / 1024, 1),
        "exit_status": status,
    }


async def bench(root: Path) -> dict[str, object]:
    runs = [await one_count(count) for count in COUNTS]
    return {
        "fixture": "ib_two_numa, one shared pool, rediscovery off, default 1 s port poll",
        "cpus": os.cpu_count(),
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "max_ids_per_pool": MAX_IDS_PER_POOL,
        "runs": runs,
        "targets": TARGETS,
    }


def verdicts(result: dict[str, object]) -> dict[str, bool]:
    runs = result["runs"]
    assert isinstance(runs, list)
    largest = runs[-1]
    return {
        "update_bytes": largest["update_bytes"] <= TARGETS["update_bytes"],
        "peak_rss_mib": largest["peak_rss_mib"] <= TARGETS["peak_rss_mib"],
    }


def print_table(result: dict[str, object], passed: dict[str, bool]) -> None:
    runs = result["runs"]
    assert isinstance(runs, list)
    header = ("IDs", "start -> 1st update", "flip -> update", "update bytes", "RSS", "peak RSS")
    rows = [
        (
            str(run["ids"]),
            f"{run['start_to_first_update_s']:.2f} s",
            f"{run['port_flip_to_update_s']:.2f} s",
            f"{run['update_bytes']} ({run['bytes_per_id']} /ID)",
            f"{run['rss_after_first_update_mib']} MiB",
            f"{run['peak_rss_mib']} MiB",
        )
        for run in runs
    ]
    print_rows(header, rows)
    verdict = ", ".join(f"{key} {'ok' if ok else 'MISSED'}" for key, ok in passed.items())
    print(
        f"\nlargest allowed ({result['max_ids_per_pool']}): update <= {KUBELET_RECV_LIMIT} bytes, "
        f"peak RSS <= {TARGETS['peak_rss_mib']} MiB (60 MiB below the DaemonSet limit): {verdict}"
    )


def main() -> int:
    return run_and_record(bench, verdicts, print_table, RESULTS)


if __name__ == "__main__":
    sys.exit(main())
