"""Untrusted text made safe to send on: a gRPC status detail, a log line, a metric label.

Names read from sysfs are decoded with surrogateescape (os.fsdecode), so a name holding bytes that are not
UTF-8 carries lone surrogates, which no UTF-8 encoder accepts; and a value a client sent can be of any length.
Error text must neither fail to encode nor grow with the input.
"""

from __future__ import annotations

from collections.abc import Sequence

# Long enough for any real ID, device name or path; short enough that a hostile one costs nothing.
SHORT_CHARS = 64
# How many offending values an error message quotes before it only counts them.
EXAMPLES = 3


def printable(text: str) -> str:
    """`text` with every character UTF-8 cannot encode (lone surrogates) written as a \\udcXX escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def shorten(text: str, limit: int = SHORT_CHARS) -> str:
    """`text` made printable and cut to `limit` characters, saying how many were left out."""
    safe = printable(text[: limit + 1])
    if len(text) <= limit and len(safe) <= limit:
        return safe
    return f"{safe[:limit]}... ({len(text)} characters)"


def examples(values: Sequence[str], count: int = EXAMPLES) -> str:
    """`repr`s of the first `count` values, shortened, and how many more there are: never grows with input."""
    shown = ", ".join(repr(shorten(value)) for value in values[:count])
    more = len(values) - count
    return f"{shown} and {more} more" if more > 0 else shown
