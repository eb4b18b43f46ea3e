"""Shared fixtures of the plugin's tests (pytest's pythonpath makes the helper modules here importable)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from sysfs_fixture import SHAPES, FixtureTree


@pytest.fixture
def make_tree(tmp_path: Path) -> Callable[[str], FixtureTree]:
    """Build one of the named fixture hosts (sysfs_fixture.SHAPES) under a fresh temporary directory."""
    counter = itertools.count()

    def build(shape: str) -> FixtureTree:
        return SHAPES[shape](tmp_path / f"{shape}-{next(counter)}")

    return build


@pytest.fixture(scope="session")
def shared_tree(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], FixtureTree]:
    """One tree per named host for the whole session, for tests that only read it (building one costs tens
    of milliseconds of file writes); a test that changes its tree takes make_tree instead."""
    trees: dict[str, FixtureTree] = {}

    def get(shape: str) -> FixtureTree:
        if shape not in trees:
            trees[shape] = SHAPES[shape](tmp_path_factory.mktemp(shape))
        return trees[shape]

    return get
