"""Benchmark of what hostile calls on the plugin socket cost: a real `rdma-device-plugin serve` process on a
fixture host (two ConnectX-6 HCAs, legacy hca mode, 1000 IDs), the kubelet stand-in in this process, real
unix sockets.

Measures, each with the plugin's RSS after it:
- one Allocate naming 200,000 containers (the answer time, its status, and the answer's size when answered);
- one Allocate naming 1024 containers, the most a call may carry;
- one Allocate naming 10,000 unknown IDs: the status and the length of its detail;
- a client resetting 20,000 HTTP/2 streams while kubelet's stand-in makes rounds of 30 concurrent Allocates:
  how many of kubelet's calls failed.
Prints a table and writes bench/results/hostile.json. To measure another tree of the plugin (e.g. before a
change), put its plugin_image/ first on PYTHONPATH: the plugin process inherits it.

Usage: venv/bin/python bench/bench_hostile.py
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import grpc
from bench_plugin import rss_mib, start_plugin, stop_plugin
from benchlib import REPO, print_rows, run_and_record, two_hca_host

sys.path.insert(0, str(REPO / "plugin_image" / "tests"))

from kubelet_standin import KubeletStandin, PluginEndpoint
from test_socket_abuse import ALLOCATES, flood

RESULTS = REPO / "bench" / "results" / "hostile.json"
RESOURCE = "rdma/hca"
CALL_TIMEOUT = 60.0


async def one_call(endpoint: PluginEndpoint, containers: list[list[str]], pid: int) -> dict[str, object]:
    started = time.perf_counter()
    try:
        response = await asyncio.wait_for(endpoint.allocate(*containers), CALL_TIMEOUT)
        code, detail, size = "OK", "", response.ByteSize()
    except grpc.aio.AioRpcError as error:
        code, detail, size = error.code().name, error.details() or "", 0
    except TimeoutError:
        code, detail, size = "no answer", "", 0
    seconds = time.perf_counter() - started
    return {
        "status": code,
        "seconds": round(seconds, 4),
        "answer_bytes": size,
        "detail_chars": len(detail),
        "rss_mib_after": round(rss_mib(pid)[0], 1),
    }


async def flood_round(endpoint: PluginEndpoint, socket_path: Path) -> dict[str, object]:
    done = asyncio.Event()
    flooder = asyncio.create_task(flood(str(socket_path), done))
    codes: list[str] = []

    async def allocate() -> str:
        try:
            await endpoint.allocate(["0"])
        except grpc.aio.AioRpcError as error:
            return error.code().name
        return "OK"

    while not done.is_set() or not codes:
        codes += await asyncio.gather(*(allocate() for _ in range(ALLOCATES)))
    await flooder
    return {"kubelet_calls": len(codes), "failed": len([c for c in codes if c != "OK"])}


async def bench(root: Path) -> dict[str, object]:
    host = two_hca_host(root)
    plugin_dir = host.plugin_dir
    kubelet = KubeletStandin(plugin_dir)
    await kubelet.start()
    process = await start_plugin(root, host.serve_args, root / "plugin.log")
    try:
        endpoint = await kubelet.wait_registered(RESOURCE, timeout=10)
        await endpoint.next_update()
        result: dict[str, object] = {"rss_mib_at_start": round(rss_mib(process.pid)[0], 1)}
        result["flood"] = await flood_round(endpoint, plugin_dir / "rdma_hca.sock")
        result["flood"]["rss_mib_after"] = round(rss_mib(process.pid)[0], 1)  # type: ignore[index]
        result["unknown_ids_10000"] = await one_call(
            endpoint, [[f"x{i}" for i in range(10_000)]], process.pid
        )
        result["containers_1024"] = await one_call(endpoint, [["0"]] * 1024, process.pid)
        result["containers_200000"] = await one_call(endpoint, [["0"]] * 200_000, process.pid)
        try:
            result["exit_status_on_sigterm"] = await stop_plugin(process)
        except TimeoutError:
            result["exit_status_on_sigterm"] = "still running 5 s after SIGTERM"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await kubelet.stop()
    result["tracebacks_in_log"] = (root / "plugin.log").read_text().count("Traceback")
    return result


def verdicts(result: dict[str, object]) -> dict[str, bool]:
    flood_figures = result["flood"]
    assert isinstance(flood_figures, dict)
    return {"flood": flood_figures["failed"] == 0}


def print_table(result: dict[str, object], passed: dict[str, bool]) -> None:
    rows = []
    for key, label in (
        ("containers_200000", "Allocate, 200,000 containers"),
        ("containers_1024", "Allocate, 1024 containers"),
        ("unknown_ids_10000", "Allocate, 10,000 unknown IDs"),
    ):
        figures = result[key]
        assert isinstance(figures, dict)
        rows.append((label, figures["status"], f"{figures['seconds']:.3f} s", f"{figures['answer_bytes']} B",
                     f"{figures['detail_chars']} chars", f"{figures['rss_mib_after']} MiB"))  # fmt: skip
    flood_figures = result["flood"]
    assert isinstance(flood_figures, dict)
    failed = f"{flood_figures['failed']} of {flood_figures['kubelet_calls']}"
    rss = f"{flood_figures['rss_mib_after']} MiB"
    rows.append(("20,000 reset streams: kubelet calls failed", failed, "", "", "", rss))
    print_rows(("measure", "status", "time", "answer", "detail", "RSS after"), rows)
    print(f"RSS at start {result['rss_mib_at_start']} MiB; tracebacks in log {result['tracebacks_in_log']}")


def main() -> int:
    return run_and_record(bench, verdicts, print_table, RESULTS)


if __name__ == "__main__":
    sys.exit(main())
