"""Shared pytest set-up for the plugin's tests.

pytest runs with --import-mode=importlib, which does not put this directory on sys.path; the helper modules
that stand in for hardware and for kubelet (sysfs_fixture, kubelet_standin) live here, imported by name.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from sysfs_fixture import SHAPES, FixtureTree  # noqa: E402


@pytest.fixture
def make_tree(tmp_path: Path) -> Callable[[str], FixtureTree]:
    """Build one of the named fixture hosts (sysfs_fixture.SHAPES) under a fresh temporary directory."""
    counter = iter(range(1_000_000))

    def build(shape: str) -> FixtureTree:
        return SHAPES[shape](tmp_path / f"{shape}-{next(counter)}")

    return build
