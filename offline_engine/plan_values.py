"""Values as a plan shows them: secrets and values known only after deployment replaced by markers.

Works on the wire form the engine records (``offline_engine.offline_run``): secrets carry their markers,
unknowns are ``pulumi.output.Unknown``, and every number arrived as a float.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from offline_engine.offline_run import is_secret
from offline_engine.plan_preview import is_unknown


class Marker(str):
    """Stands for a value the plan does not show; JSON writes it as its text, the text plan unquoted."""

    __slots__ = ()


SECRET = Marker("[secret]")
UNKNOWN = Marker("[unknown]")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# Longer strings (base64 user data, YAML documents) are cut: the plan is read, the full value is in the code.
MAX_TEXT = 160
SHOWN_OF_LONG_TEXT = 60


def masked(value: Any) -> Any:
    """``value`` with secrets and unknowns replaced by markers, and integral numbers as ints again.

    A secret hides everything inside it, even its shape; a number is an int when it has no fraction (the wire
    carries only doubles, and every number the program sets is a count, a size or a port).
    """
    if is_secret(value):
        return SECRET
    if is_unknown(value):
        return UNKNOWN
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def contains(value: Any, marker: Marker) -> bool:
    """True if a ``masked`` value holds ``marker`` anywhere."""
    if isinstance(value, dict):
        return any(contains(item, marker) for item in value.values())
    if isinstance(value, list):
        return any(contains(item, marker) for item in value)
    return value is marker


def path_of(parent: str, key: str) -> str:
    if _PLAIN_KEY.fullmatch(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{json.dumps(key)}]"


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """A ``masked`` value as (path, value) pairs: nested mappings and lists of mappings are walked, with keys
    sorted; a list of plain values stays one leaf, and so does an empty mapping below the top."""
    if isinstance(value, dict) and (value or not path):
        for key in sorted(value):
            yield from leaves(value[key], path_of(path, key))
    elif isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        for index, item in enumerate(value):
            yield from leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def _text(value: str) -> str:
    if len(value) <= MAX_TEXT:
        return json.dumps(value, ensure_ascii=False)
    shown = json.dumps(value[:SHOWN_OF_LONG_TEXT], ensure_ascii=False)[:-1]
    lines = value.count("\n") + (not value.endswith("\n"))
    size = f"{len(value)} chars, {lines} lines" if lines > 1 else f"{len(value)} chars"
    return f'{shown}…" ({size})'


def shown(value: Any) -> str:
    """One leaf of ``leaves`` as the text plan prints it."""
    if isinstance(value, Marker):
        return str(value)
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, list):
        return "[" + ", ".join(shown(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{}"
    return json.dumps(value)
