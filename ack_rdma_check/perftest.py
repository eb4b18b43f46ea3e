"""perftest (`ib_read_bw`, `ib_read_lat`) command lines and report parsing.

The report is a header line of column names followed by data rows. What precedes it (the parameter block,
one ``local address``/``remote address`` line per QP, GIDs) differs between perftest versions and flags, and
a CPU-frequency warning can sit between header and row, so the parser keys on the header and takes the rows
that follow it, never fixed line numbers. Data rows mix spaces and tabs: they are split on any whitespace.

Units as perftest computes them: ``MB/sec`` and ``MiB/sec`` are both 2^20 bytes per second (newer builds
print the honest name), ``Gb/sec`` is 10^9 bits per second.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_PORT = 18515
DEFAULT_QPS = 30
BW_MESSAGE_BYTES = 65536
"""perftest's default message size for bandwidth tests (the report's ``#bytes``)."""

_BYTES_PER_MB = 2**20
GBITS_PER_MB = _BYTES_PER_MB * 8 / 1e9

_COLUMN = re.compile(r"#\w+|(?:\d+(?:\.\d+)?% )?[A-Za-z_]\w*(?: [A-Za-z_]\w*)?\[[^\]]*\]")
_BW_UNIT = re.compile(r"BW average\[(MB|MiB|Gb)/sec\]")


class ReportParseError(Exception):
    """No usable report in perftest's output; ``line`` is the line that could not be read."""

    def __init__(self, message: str, line: str) -> None:
        super().__init__(f"{message}: {line!r}")
        self.line = line


@dataclass(frozen=True)
class PerftestParams:
    """The flags both sides of one run share; the client adds the server's address."""

    device: str | None = None
    gid_index: int | None = None
    rdma_cm: bool = False
    qps: int = DEFAULT_QPS
    port: int = DEFAULT_PORT

    def bw_argv(self, server_address: str | None = None) -> list[str]:
        """``ib_read_bw``: -F so a throttled CPU clock cannot void the report, Gbit/s so no unit guessing."""
        return self._argv("ib_read_bw", ["-q", str(self.qps), "-F", "--report_gbits"], server_address)

    def lat_argv(self, server_address: str | None = None) -> list[str]:
        """``ib_read_lat`` runs one QP: latency of a single outstanding read is what it measures."""
        return self._argv("ib_read_lat", ["-F"], server_address)

    def _argv(self, tool: str, flags: Sequence[str], server_address: str | None) -> list[str]:
        argv = [tool, *flags, "-p", str(self.port)]
        if self.device is not None:
            argv += ["-d", self.device]
        if self.rdma_cm:
            argv.append("-R")
        elif self.gid_index is not None:
            argv += ["-x", str(self.gid_index)]
        if server_address is not None:
            argv.append(server_address)
        return argv


@dataclass(frozen=True)
class BandwidthReport:
    """One row of an ``ib_*_bw`` report, in both unit systems."""

    message_bytes: int
    iterations: int
    peak_gbits: float
    average_gbits: float
    peak_mb_s: float
    """MB/s as perftest counts them: 2^20 bytes."""
    average_mb_s: float
    msg_rate_mpps: float
    unit: str
    """The unit the report was printed in: ``MB``, ``MiB`` or ``Gb`` (per second)."""


@dataclass(frozen=True)
class LatencyReport:
    """One row of an ``ib_*_lat`` report in microseconds; older builds print only min, max and typical."""

    message_bytes: int
    iterations: int
    min_usec: float
    max_usec: float
    typical_usec: float
    average_usec: float | None
    p99_usec: float | None


def parse_bandwidth(text: str) -> BandwidthReport:
    """The last row of the bandwidth report in ``text`` (with ``-a`` that is the largest message size)."""
    header, row, line = _last_row(text, "BW average[")
    unit_match = _BW_UNIT.search(header)
    if unit_match is None:
        raise ReportParseError("unknown bandwidth unit in the report header", header)
    unit = unit_match.group(1)
    peak = _column(row, header, "BW peak[", line)
    average = _column(row, header, "BW average[", line)
    to_gbits = 1.0 if unit == "Gb" else GBITS_PER_MB
    return BandwidthReport(
        message_bytes=int(_column(row, header, "#bytes", line)),
        iterations=int(_column(row, header, "#iterations", line)),
        peak_gbits=peak * to_gbits,
        average_gbits=average * to_gbits,
        peak_mb_s=peak * to_gbits / GBITS_PER_MB,
        average_mb_s=average * to_gbits / GBITS_PER_MB,
        msg_rate_mpps=_column(row, header, "MsgRate[", line),
        unit=unit,
    )


def parse_latency(text: str) -> LatencyReport:
    """The last row of the latency report in ``text``."""
    header, row, line = _last_row(text, "t_typical[")
    return LatencyReport(
        message_bytes=int(_column(row, header, "#bytes", line)),
        iterations=int(_column(row, header, "#iterations", line)),
        min_usec=_column(row, header, "t_min[", line),
        max_usec=_column(row, header, "t_max[", line),
        typical_usec=_column(row, header, "t_typical[", line),
        average_usec=_optional_column(row, header, "t_avg[", line),
        p99_usec=_optional_column(row, header, "99% percentile[", line),
    )


def _last_row(text: str, header_marker: str) -> tuple[str, dict[str, str], str]:
    """The last data row after a header containing ``header_marker``, keyed by column name."""
    columns: list[str] = []
    header = ""
    found: tuple[dict[str, str], str] | None = None
    after_header: str | None = None
    for raw in text.splitlines():
        stripped = raw.strip()
        if header_marker in stripped and stripped.startswith("#"):
            header, columns, after_header = stripped, _COLUMN.findall(stripped), None
            continue
        if not columns or not stripped or set(stripped) == {"-"}:
            continue
        after_header = stripped
        values = stripped.split()
        if not values[0].isdigit():
            continue  # warnings such as "Conflicting CPU frequency values detected" land here
        if len(values) != len(columns):
            raise ReportParseError(f"expected {len(columns)} columns ({header}), got {len(values)}", stripped)
        found = (dict(zip(columns, values, strict=True)), stripped)
    if not columns:
        raise ReportParseError("no perftest report header in the output", last_line(text))
    if found is None:
        raise ReportParseError("no data row after the report header", after_header or header)
    return header, found[0], found[1]


def _column(row: dict[str, str], header: str, prefix: str, line: str) -> float:
    value = _optional_column(row, header, prefix, line)
    if value is None:
        raise ReportParseError(f"the report has no {prefix.rstrip('[')!r} column", header)
    return value


def _optional_column(row: dict[str, str], header: str, prefix: str, line: str) -> float | None:
    for name, value in row.items():
        if name.startswith(prefix):
            try:
                return float(value)
            except ValueError:
                raise ReportParseError(f"{name} is not a number", line) from None
    return None


def last_line(text: str) -> str:
    """The last non-blank line, the one that usually says what went wrong."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
