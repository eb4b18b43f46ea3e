"""sysfs reads are bounded (size, file type, time) and a read that fails is not a port that is down: the port
keeps its last known state, the failure is counted (rdma_device_plugin_sysfs_read_failures) and logged once,
and a rediscovery that cannot list the devices keeps the ones it knew."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lifecycle_harness import FAST_POLL, sample, scrape, supervised
from plugin_harness import node, run
from rdma_device_plugin import sysfs
from rdma_device_plugin.discovery import discover
from rdma_device_plugin.health import HcaLinks, PortLink, read_links
from rdma_device_plugin.sysfs import FAILED, MAX_ATTR_BYTES, SysfsReader
from sysfs_fixture import FixtureTree

MakeTree = Callable[[str], FixtureTree]
POOL = {"periodicUpdateInterval": 0, "configList": [{"resourceName": "ib", "rdmaHcaMax": 4, "selectors": {}}]}


def state_file(tree: FixtureTree, ibdev: str) -> Path:
    return tree.sysfs_root / "class/infiniband" / ibdev / "ports/1/state"


# -- the reader ------------------------------------------------------------------------------------------


def test_values_absent_files_and_by_design_refusals(tmp_path: Path) -> None:
    reader = SysfsReader()
    (tmp_path / "vendor").write_text("0x15b3\n")
    (tmp_path / "empty").write_text("")
    assert reader.attr(tmp_path / "vendor") == "0x15b3"
    assert reader.attr(tmp_path / "absent") is None
    assert reader.attr(tmp_path / "empty") is None
    assert reader.attr(tmp_path / "vendor" / "below a file") is None  # ENOTDIR: absent


def test_an_attribute_larger_than_a_page_is_a_failed_read_and_is_never_read_whole(tmp_path: Path) -> None:
    failures: list[str] = []
    reader = SysfsReader(on_failure=failures.append)
    big = tmp_path / "fw_ver"
    big.write_bytes(b"14.32.1010\n" * (8 * 1024 * 1024 // 11))  # 8 MiB
    (tmp_path / "page").write_bytes(b"x" * MAX_ATTR_BYTES)
    assert reader.attr(big) is FAILED
    assert reader.attr(tmp_path / "page") == "x" * MAX_ATTR_BYTES
    assert failures == ["too_large"]


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_file_that_is_not_regular_fails_at_once(tmp_path: Path, kind: str) -> None:
    failures: list[str] = []
    reader = SysfsReader(on_failure=failures.append)
    path = tmp_path / "state"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    started = time.monotonic()
    assert reader.attr(path) is FAILED
    assert time.monotonic() - started < 0.5
    assert failures == ["not_regular_file"]


@pytest.fixture
def blocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[set[str], threading.Event]]:
    """Reads of files whose names are in the returned set block until the event is set, as a read of an
    attribute whose show() waits on a hung firmware command does (no fixture can make a regular file
    block)."""
    names: set[str] = set()
    release = threading.Event()
    original = sysfs._read_file

    def read_file(path: Path) -> str | None:
        if path.name in names or str(path) in names:
            release.wait()
        return original(path)

    monkeypatch.setattr(sysfs, "_read_file", read_file)
    yield names, release
    release.set()


def test_a_read_that_blocks_fails_after_the_timeout_and_at_once_until_it_returns(
    tmp_path: Path, blocked: tuple[set[str], threading.Event]
) -> None:
    names, release = blocked
    failures: list[str] = []
    reader = SysfsReader(timeout=0.2, on_failure=failures.append)
    (tmp_path / "state").write_text("4: ACTIVE\n")
    (tmp_path / "rate").write_text("100 Gb/sec (4X EDR)\n")
    names.add("state")
    started = time.monotonic()
    assert reader.attr(tmp_path / "state") is FAILED
    assert 0.2 <= time.monotonic() - started < 1
    # While the first read is stuck, the same file fails at once; other files read normally.
    started = time.monotonic()
    assert reader.attr(tmp_path / "state") is FAILED
    assert time.monotonic() - started < 0.1
    assert reader.attr(tmp_path / "rate") == "100 Gb/sec (4X EDR)"
    assert failures == ["timeout", "timeout"]
    names.clear()
    release.set()
    deadline = time.monotonic() + 2
    while reader.attr(tmp_path / "state") is FAILED and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reader.attr(tmp_path / "state") == "4: ACTIVE"


def test_stuck_reads_are_bounded_then_every_read_fails_at_once(
    tmp_path: Path, blocked: tuple[set[str], threading.Event]
) -> None:
    names, _ = blocked
    reader = SysfsReader(timeout=0.05)
    before = threading.active_count()
    for index in range(sysfs.MAX_STUCK + 3):
        path = tmp_path / f"attr{index}"
        path.write_text("1\n")
        names.add(path.name)
        assert reader.attr(path) is FAILED
    assert threading.active_count() - before <= sysfs.MAX_STUCK


# -- discovery and the health poll -------------------------------------------------------------------------


def test_discovery_with_a_blocking_attribute_finishes_within_the_timeout(
    make_tree: MakeTree, blocked: tuple[set[str], threading.Event]
) -> None:
    tree = make_tree("ib_two_numa")
    names, _ = blocked
    names.add("fw_ver")
    reader = SysfsReader(timeout=0.2)
    started = time.monotonic()
    hcas = discover(tree.sysfs_root, tree.dev_root, reader=reader)
    # The first fw_ver read times out; the second HCA's fails at once (reads left behind are bounded).
    assert time.monotonic() - started < 2
    assert [(hca.name, hca.fw_ver, hca.healthy) for hca in hcas] == [
        ("mlx5_0", None, True),
        ("mlx5_1", None, True),
    ]


def test_a_failed_state_read_keeps_the_last_known_state_in_the_poll_and_in_rediscovery(
    make_tree: MakeTree,
) -> None:
    tree = make_tree("ib_two_numa")
    reader = SysfsReader()
    hcas = discover(tree.sysfs_root, tree.dev_root, reader=reader)
    state = state_file(tree, "mlx5_1")
    state.unlink()
    os.mkfifo(state)
    links = read_links(tree.sysfs_root, hcas, tree.dev_root, reader)
    # mlx5_1's port is left out (kept as it was), not read as UNKNOWN.
    assert links["mlx5_1"] == HcaLinks(True, {}, {"uverbs1": True, "umad1": True, "issm1": True})
    assert links["mlx5_0"].ports == {1: PortLink("ACTIVE", "LinkUp")}
    again = discover(tree.sysfs_root, tree.dev_root, hcas, reader)
    assert again == hcas
    assert discover(tree.sysfs_root, tree.dev_root, reader=reader)[1].ports[0].state == "UNKNOWN"


EMFILE_PROBE = """
import json, os, resource, sys
from pathlib import Path
from rdma_device_plugin.discovery import discover
from rdma_device_plugin.health import read_links
from rdma_device_plugin.sysfs import SysfsReader
root = Path(sys.argv[1])
failures = []
reader = SysfsReader(on_failure=failures.append)
hcas = discover(root / "sys", root / "dev", reader=reader)
# The lowest free descriptor number becomes the limit: every open() from here on fails with EMFILE.
lowest_free = os.dup(0)
os.close(lowest_free)
resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
links = read_links(root / "sys", hcas, root / "dev", reader)
again = discover(root / "sys", root / "dev", hcas, reader)
print(json.dumps({
    "ports": {name: {n: [l.state, l.phys_state] for n, l in link.ports.items()}
              for name, link in links.items()},
    "rediscovered_same": again == hcas,
    "healthy": [hca.healthy for hca in again],
    "failures": sorted(set(failures)),
}))
"""


def test_emfile_is_a_failed_read_in_a_real_process_at_its_open_file_limit(make_tree: MakeTree) -> None:
    tree = make_tree("ib_two_numa")
    result = subprocess.run(
        [sys.executable, "-c", EMFILE_PROBE, str(tree.root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    # Every read failed with EMFILE: no port is read as UNKNOWN, the rediscovery keeps both HCAs healthy.
    assert outcome == {
        "ports": {"mlx5_0": {}, "mlx5_1": {}},
        "rediscovered_same": True,
        "healthy": [True, True],
        "failures": ["EMFILE"],
    }
    assert result.stderr.count("sysfs read failed (EMFILE") == 1


def test_a_state_file_that_cannot_be_read_leaves_kubelet_undisturbed_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", POOL) as host, supervised(host) as running:
            endpoint = await host.kubelet.wait_registered("rdma/ib")
            assert {d.health for d in await endpoint.next_update()} == {"Healthy"}
            state = state_file(host.tree, "mlx5_1")
            state.unlink()
            os.mkfifo(state)
            # Twenty polls: the port keeps its state, kubelet is told nothing.
            with pytest.raises(TimeoutError):
                await endpoint.next_update(timeout=20 * FAST_POLL)
            failures = sample(
                await scrape(running.port),
                "rdma_device_plugin_sysfs_read_failures_total",
                reason="not_regular_file",
            )
            assert failures >= 10
            assert [p.state for hca in running.supervisor.hcas for p in hca.ports] == ["ACTIVE", "ACTIVE"]
            # Readable again, and down: the change reaches kubelet.
            state.unlink()
            host.tree.set_port_state("mlx5_1")
            update = await endpoint.next_update()
            assert [d.health for d in update] == ["Healthy", "Unhealthy", "Healthy", "Unhealthy"]

    with caplog.at_level(logging.INFO, logger="rdma_device_plugin.sysfs"):
        run(scenario)
    messages = [r.getMessage() for r in caplog.records if r.name == "rdma_device_plugin.sysfs"]
    assert len(messages) == 2, messages
    assert messages[0].startswith("sysfs read failed (not a regular file), e.g. ")
    assert messages[1] == "sysfs reads succeed again (they failed with not_regular_file before)"


def test_an_oversized_state_file_is_a_failed_read_not_an_unhealthy_port(make_tree: MakeTree) -> None:
    tree = make_tree("ib_two_numa")
    reader = SysfsReader()
    hcas = discover(tree.sysfs_root, tree.dev_root, reader=reader)
    state_file(tree, "mlx5_0").write_bytes(b"4: ACTIVE\n" * 1024 * 1024)  # 10 MiB
    assert "mlx5_0" not in {
        n for n, link in read_links(tree.sysfs_root, hcas, reader=reader).items() if link.ports
    }
    assert discover(tree.sysfs_root, tree.dev_root, hcas, reader)[0].healthy


def test_a_port_poll_stuck_on_one_file_still_carries_other_ports_changes(
    blocked: tuple[set[str], threading.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    names, _ = blocked
    monkeypatch.setattr(sysfs, "READ_TIMEOUT", 0.2)

    async def scenario() -> None:
        async with node("ib_two_numa", POOL) as host, supervised(host) as running:
            endpoint = await host.kubelet.wait_registered("rdma/ib")
            await endpoint.next_update()
            names.add(str(state_file(host.tree, "mlx5_0")))
            host.tree.set_port_state("mlx5_1")
            update = await endpoint.next_update(timeout=3)
            assert [d.health for d in update] == ["Healthy", "Unhealthy", "Healthy", "Unhealthy"]
            assert (
                sample(
                    await scrape(running.port),
                    "rdma_device_plugin_sysfs_read_failures_total",
                    reason="timeout",
                )
                >= 1
            )

    run(scenario)
