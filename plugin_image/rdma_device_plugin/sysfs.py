"""Tolerant readers for sysfs attributes: a missing or unreadable file is None, never an exception.

sysfs changes under our feet (hot-unplug, driver rebinds) and some attributes fail on read by design (an
unused GID's ``gid_attrs/ndevs/<i>`` returns EINVAL), so every reader here treats OSError as "absent".
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_DIGITS = re.compile(r"(\d+)")


def read_attr(path: Path) -> str | None:
    """The attribute's value without the kernel's trailing newline; None when absent, unreadable or empty."""
    try:
        value = path.read_text(encoding="utf-8", errors="replace").rstrip("\n")
    except OSError:
        return None
    return value or None


def read_int(path: Path) -> int | None:
    value = read_attr(path)
    try:
        return int(value, 0) if value is not None else None
    except ValueError:
        return None


def read_hex_id(path: Path) -> str | None:
    """A PCI id such as ``0x15b3`` as four lower-case hex digits (``15b3``)."""
    value = read_attr(path)
    if value is None:
        return None
    digits = value.lower().removeprefix("0x")
    return digits if re.fullmatch(r"[0-9a-f]{1,4}", digits) else None


def label(value: str | None) -> str | None:
    """The name in a numbered sysfs value: ``4: ACTIVE`` -> ``ACTIVE``, ``1: CA`` -> ``CA``."""
    if value is None:
        return None
    number, sep, name = value.partition(":")
    return name.strip() if sep and number.strip().isdigit() else value.strip()


def link_name(path: Path) -> str | None:
    """The last component of a symlink's target (``driver`` -> ``mlx5_core``); None when not a symlink."""
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None


def entries(directory: Path, prefix: str = "") -> list[Path]:
    """The directory's entries whose names start with prefix, in natural order; [] when it is absent."""
    try:
        names = [name for name in os.listdir(directory) if name.startswith(prefix)]
    except OSError:
        return []
    return [directory / name for name in sorted(names, key=natural_key)]


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders ``mlx5_2`` before ``mlx5_10``."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(name) if part)
