"""What the plugin benchmarks share: process CPU time, the figures table, running one benchmark to JSON, and
the fixture host they run the plugin on."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "plugin_image" / "tests"))

from sysfs_fixture import FixtureTree, ib_two_numa  # noqa: E402 (found through the path set just above)

Result = dict[str, object]


@dataclass(frozen=True)
class BenchHost:
    tree: FixtureTree
    plugin_dir: Path
    serve_args: list[str]
    """`rdma-device-plugin serve` flags for this host."""


def two_hca_host(root: Path) -> BenchHost:
    """Two ConnectX-6 HCAs (sysfs_fixture.ib_two_numa) under `root`, an empty device-plugin directory, and a
    legacy hca mode config (1000 IDs) with rediscovery off."""
    tree = ib_two_numa(root / "host")
    plugin_dir = root / "dp"
    plugin_dir.mkdir()
    config = root / "config.json"
    config.write_text(json.dumps({"mode": "hca", "periodicUpdateInterval": 0}))
    args = ["--config", str(config), "--device-plugin-dir", str(plugin_dir),
            "--sysfs-root", str(tree.sysfs_root), "--dev-root", str(tree.dev_root)]  # fmt: skip
    return BenchHost(tree, plugin_dir, args)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def print_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain left-aligned table with a dashed rule under the header."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def run_and_record(
    bench: Callable[[Path], Coroutine[Any, Any, Result]],
    verdicts: Callable[[Result], dict[str, bool]],
    print_table: Callable[[Result, dict[str, bool]], None],
    results: Path,
) -> int:
    """Run `bench` in a short scratch dir under /tmp (unix socket paths are limited to 107 bytes), print its
    table, and write its figures with the targets it met to `results`."""
    root = Path(tempfile.mkdtemp(prefix="rdp-bench-", dir="/tmp"))
    try:
        result = asyncio.run(bench(root))
    finally:
        shutil.rmtree(root)
    passed = verdicts(result)
    result["met_targets"] = passed
    print_table(result, passed)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten: {results.relative_to(REPO)}")
    return 0
