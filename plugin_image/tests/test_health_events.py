"""The verbs async-event source: used only where libibverbs can open a device, otherwise a clean fallback to
the sysfs port poll with the reason logged. The fallback runs against the real libibverbs on fixture trees,
inside a private mount namespace (see test_pyverbs), where devices are listed but cannot be opened."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from lifecycle_harness import supervised
from plugin_harness import node, run
from rdma_device_plugin.discovery import discover
from rdma_device_plugin.verbs_events import VerbsEvents
from sysfs_fixture import FixtureTree
from test_pyverbs import SYSTEM_PYTHON, needs_libibverbs, run_in_namespace

MakeTree = Callable[[str], FixtureTree]
OPEN_SCRIPT = """
import asyncio, sys
from pathlib import Path
from rdma_device_plugin.discovery import discover
from rdma_device_plugin.verbs_events import VerbsEvents

async def main():
    sysfs = Path(sys.argv[1])
    events = VerbsEvents(lambda: None)
    print(events.open(discover(sysfs, Path("/dev")), sysfs, Path("/dev")))
    events.close()

asyncio.run(main())
"""


def never() -> None:
    raise AssertionError("no event can arrive here")


def test_a_dev_root_other_than_dev_is_not_for_libibverbs(make_tree: MakeTree) -> None:
    tree = make_tree("ib_two_numa")
    events = VerbsEvents(never)
    hcas = discover(tree.sysfs_root, tree.dev_root)
    assert events.open(hcas, tree.sysfs_root, tree.dev_root) == (
        f"not used: libibverbs opens /dev/infiniband, not {tree.dev_root}/infiniband"
    )
    assert events.devices == []


def test_without_pyverbs_the_poll_alone_is_used(make_tree: MakeTree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyverbs", None)
    monkeypatch.setitem(sys.modules, "pyverbs.device", None)
    tree = make_tree("ib_two_numa")
    events = VerbsEvents(never)
    hcas = discover(tree.sysfs_root, tree.dev_root)
    assert events.open(hcas, tree.sysfs_root, Path("/dev")) == (
        "not used: pyverbs is not importable (Debian package python3-pyverbs)"
    )


@needs_libibverbs
def test_listed_but_unopenable_devices_fall_back_naming_each_device_and_error(make_tree: MakeTree) -> None:
    tree = make_tree("ib_two_numa")
    result = run_in_namespace(tree, SYSTEM_PYTHON, "-c", OPEN_SCRIPT, str(tree.sysfs_root))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "not used: no device could be opened (mlx5_0: Failed to open device mlx5_0. Errno: 2, No such file "
        "or directory; mlx5_1: Failed to open device mlx5_1. Errno: 2, No such file or directory)\n"
    )


def test_the_plugin_logs_its_health_sources_once_at_start(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> Path:
        async with node("erdma", {"mode": "hca"}) as host, supervised(host, poll=0.25):
            await host.kubelet.wait_registered("rdma/hca")
            return host.tree.dev_root

    with caplog.at_level(logging.INFO, logger="rdma_device_plugin.app"):
        dev_root = run(scenario)
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("health:")]
    assert line == (
        "health: port states read from sysfs every 0.25 s (--health-poll-interval); verbs async events not "
        f"used: libibverbs opens /dev/infiniband, not {dev_root}/infiniband"
    )
