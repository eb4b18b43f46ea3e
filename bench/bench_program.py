"""Wall time of the whole Pulumi program under the mock engine: the dev stack, and 10 pools of 100 nodes.

Each scenario runs in a fresh interpreter ("cold": imports included, what a `make preview` pays) and then
again in the same interpreter ("warm": the program alone). Prints a table; writes bench/results/program.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "program.json"
TARGET_DEV_SECONDS = 3.0
COLD_REPEATS = 3
WARM_REPEATS = 5
BIG_POOLS = [{"name": f"rdma-{index:02d}", "desiredSize": 100} for index in range(10)]
SCENARIOS: dict[str, dict[str, object]] = {
    "dev": {},
    "10 pools x 100 nodes": {"ack-rdma:nodePools": BIG_POOLS, "ack-rdma:testPods": True},
}


def child(scenario: str) -> dict[str, Any]:
    """One cold run, then warm runs, in this interpreter; timings in seconds."""
    started = time.perf_counter()
    cpu_started = time.process_time()
    # Imported here, inside the timing: a cold run pays for them.
    from offline_engine.offline_run import run_program  # noqa: PLC0415
    from offline_engine.stack_files import load_stack_settings  # noqa: PLC0415

    imported = time.perf_counter()
    settings = load_stack_settings("dev", overrides=SCENARIOS[scenario])
    run = run_program(settings)
    cold_done = time.perf_counter()
    cold_cpu = time.process_time() - cpu_started
    warm = []
    for _ in range(WARM_REPEATS):
        begin = time.perf_counter()
        run_program(settings)
        warm.append(time.perf_counter() - begin)
    return {
        "import_s": imported - started,
        "cold_run_s": cold_done - imported,
        "cold_total_s": cold_done - started,
        "cold_cpu_s": cold_cpu,
        "warm_s": warm,
        "resources": len(run.resources),
        "nodes": sum(
            int(pool.inputs.get("desiredSize", 0)) for pool in run.of_type("alicloud:cs/nodePool:NodePool")
        ),
    }


def measure(scenario: str) -> dict[str, Any]:
    samples = []
    for _ in range(COLD_REPEATS):
        begin = time.perf_counter()
        output = subprocess.run(
            [sys.executable, __file__, "--child", scenario],
            check=True,
            capture_output=True,
            text=True,
            cwd=REPO,
        ).stdout
        process_s = time.perf_counter() - begin
        samples.append({**json.loads(output), "process_s": process_s})
    warm = [value for sample in samples for value in sample["warm_s"]]
    return {
        "scenario": scenario,
        "resources": samples[0]["resources"],
        "nodes": samples[0]["nodes"],
        "process_median_s": statistics.median(sample["process_s"] for sample in samples),
        "cold_total_median_s": statistics.median(sample["cold_total_s"] for sample in samples),
        "cold_cpu_median_s": statistics.median(sample["cold_cpu_s"] for sample in samples),
        "import_median_s": statistics.median(sample["import_s"] for sample in samples),
        "warm_median_s": statistics.median(warm),
        "warm_min_s": min(warm),
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    results = [measure(scenario) for scenario in SCENARIOS]
    header = (
        f"{'scenario':<22}{'resources':>10}{'nodes':>7}{'process':>10}{'cold':>8}{'cold cpu':>10}"
        f"{'import':>8}{'warm':>8}"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        print(
            f"{result['scenario']:<22}{result['resources']:>10}{result['nodes']:>7}"
            f"{result['process_median_s']:>9.2f}s{result['cold_total_median_s']:>7.2f}s"
            f"{result['cold_cpu_median_s']:>9.2f}s{result['import_median_s']:>7.2f}s"
            f"{result['warm_median_s']:>7.2f}s"
        )
    dev = results[0]
    verdict = "meets" if dev["cold_total_median_s"] <= TARGET_DEV_SECONDS else "MISSES"
    print(
        f"\ncold = imports + one program run in a fresh interpreter (median of {COLD_REPEATS}); "
        f"process = the same plus interpreter start and exit; warm = the program again in-process "
        f"(median of {WARM_REPEATS * COLD_REPEATS})."
        f"\ndev cold {dev['cold_total_median_s']:.2f} s {verdict} the {TARGET_DEV_SECONDS:.0f} s target."
        f" Load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs."
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "target_dev_seconds": TARGET_DEV_SECONDS,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_average_1m": os.getloadavg()[0],
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
