"""The inotify watch on a real directory, and what its events mean for the plugin (kubelet.dispatch)."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from pathlib import Path

import pytest
from plugin_harness import run, short_tempdir
from rdma_device_plugin.inotify import (
    IN_CREATE,
    IN_DELETE,
    IN_DELETE_SELF,
    IN_IGNORED,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_Q_OVERFLOW,
    DirectoryWatch,
    DirEvent,
    WatchError,
    parse_events,
)
from rdma_device_plugin.kubelet import dispatch


async def next_batch(queue: asyncio.Queue[list[DirEvent]]) -> list[DirEvent]:
    return await asyncio.wait_for(queue.get(), 2)


def test_a_watch_sees_sockets_bound_and_entries_deleted_and_moved_without_polling() -> None:
    root = short_tempdir()

    async def scenario() -> None:
        queue: asyncio.Queue[list[DirEvent]] = asyncio.Queue()
        watch = DirectoryWatch(root, queue.put_nowait)
        watch.start()
        try:
            with socket.socket(socket.AF_UNIX) as server:
                server.bind(str(root / "kubelet.sock"))
                assert await next_batch(queue) == [DirEvent(IN_CREATE, "kubelet.sock")]
            (root / "kubelet.sock").rename(root / "aside")
            (root / "aside").rename(root / "kubelet.sock")
            (root / "kubelet.sock").unlink()
            events: list[DirEvent] = []
            while len(events) < 5:
                events += await next_batch(queue)
            assert [(e.mask & ~IN_IGNORED, e.name) for e in events] == [
                (IN_MOVED_FROM, "kubelet.sock"),
                (IN_MOVED_TO, "aside"),
                (IN_MOVED_FROM, "aside"),
                (IN_MOVED_TO, "kubelet.sock"),
                (IN_DELETE, "kubelet.sock"),
            ]
            root.rmdir()
            lost = await next_batch(queue)
            assert lost[0] == DirEvent(IN_DELETE_SELF, "")
        finally:
            watch.close()
            watch.close()

    run(scenario)


def test_watching_a_missing_directory_names_it_and_the_fix() -> None:
    missing = Path("/tmp/rdp-absent-directory")
    watch = DirectoryWatch(missing, lambda events: None)

    async def scenario() -> None:
        with pytest.raises(WatchError) as caught:
            watch.start()
        assert str(caught.value) == (
            f"cannot watch the directory {missing}: No such file or directory; point --device-plugin-dir at "
            "kubelet's device-plugin directory and mount it"
        )

    run(scenario)


def test_parse_events_splits_a_read_into_events_and_strips_the_name_padding() -> None:
    def raw(mask: int, name: bytes, length: int) -> bytes:
        return struct.pack("iIII", 1, mask, 0, length) + name.ljust(length, b"\0")

    buffer = raw(IN_CREATE, b"kubelet.sock", 16) + raw(IN_Q_OVERFLOW, b"", 0) + raw(IN_DELETE, b"a.sock", 16)
    assert parse_events(buffer) == [
        DirEvent(IN_CREATE, "kubelet.sock"),
        DirEvent(IN_Q_OVERFLOW, ""),
        DirEvent(IN_DELETE, "a.sock"),
    ]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def kubelet_started(self) -> None:
        self.calls.append("kubelet started")

    def kubelet_stopped(self) -> None:
        self.calls.append("kubelet stopped")

    def socket_removed(self, name: str) -> None:
        self.calls.append(f"removed {name}")

    def events_lost(self) -> None:
        self.calls.append("events lost")

    def watch_lost(self) -> None:
        self.calls.append("watch lost")

    def watch_restored(self) -> None:
        self.calls.append("watch restored")


def test_dispatch_reads_kubelets_restart_sequence_and_ignores_what_does_not_matter() -> None:
    recorder = Recorder()
    dispatch(
        [
            DirEvent(IN_DELETE, "rdma_hca.sock"),
            DirEvent(IN_DELETE, "kubelet.sock"),
            DirEvent(IN_CREATE, "kubelet.sock"),
            DirEvent(IN_CREATE, "rdma_hca.sock"),
            DirEvent(IN_MOVED_FROM, "other.sock"),
            DirEvent(IN_MOVED_TO, "kubelet.sock"),
            DirEvent(IN_CREATE, "kubelet_internal_checkpoint"),
            DirEvent(IN_Q_OVERFLOW, ""),
            DirEvent(IN_DELETE_SELF, ""),
        ],
        recorder,
    )
    assert recorder.calls == [
        "removed rdma_hca.sock",
        "kubelet stopped",
        "kubelet started",
        "removed other.sock",
        "kubelet started",
        "events lost",
        "watch lost",
    ]


def test_the_watch_descriptor_is_not_inherited_by_child_processes() -> None:
    root = short_tempdir()

    async def scenario() -> None:
        watch = DirectoryWatch(root, lambda events: None)
        watch.start()
        try:
            fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
            inotify = [fd for fd in fds if _link(fd) == "anon_inode:inotify"]
            assert inotify
            assert all(not os.get_inheritable(fd) for fd in inotify)
        finally:
            watch.close()
            root.rmdir()

    run(scenario)


def _link(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""
