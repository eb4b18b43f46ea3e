"""What the plugin benchmarks share: process CPU time, the figures table, running one benchmark to JSON."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

Result = dict[str, object]


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
