"""inotify(7) on one directory, through libc with ctypes, delivered on the asyncio loop.

The kernel queues an event for every entry created, deleted or moved in the directory; the loop reads them
when the inotify descriptor becomes readable, so nothing polls and a change is seen within microseconds.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000

WATCH_MASK = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF
APPEARED = IN_CREATE | IN_MOVED_TO
VANISHED = IN_DELETE | IN_MOVED_FROM
# The directory itself went away (or the kernel dropped the watch): no further event will come.
WATCH_LOST = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED

# struct inotify_event { int wd; uint32_t mask; uint32_t cookie; uint32_t len; char name[len]; }
_HEADER = struct.Struct("iIII")
_READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class DirEvent:
    mask: int
    name: str
    """The entry's name in the watched directory; empty for events about the directory itself."""


class WatchError(Exception):
    """The directory cannot be watched; str() is one paragraph naming it and the fix."""


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_init1.restype = ctypes.c_int
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    libc.inotify_add_watch.restype = ctypes.c_int
    return libc


def parse_events(buffer: bytes) -> list[DirEvent]:
    """The events packed in one read() of an inotify descriptor."""
    events = []
    offset = 0
    while offset + _HEADER.size <= len(buffer):
        _wd, mask, _cookie, length = _HEADER.unpack_from(buffer, offset)
        offset += _HEADER.size
        raw = buffer[offset : offset + length]
        offset += length
        events.append(DirEvent(mask, os.fsdecode(raw.split(b"\0", 1)[0])))
    return events


class DirectoryWatch:
    """Calls `on_events` on the running loop with every batch of events about `directory`'s entries."""

    def __init__(self, directory: Path, on_events: Callable[[list[DirEvent]], None]) -> None:
        self.directory = directory
        self._on_events = on_events
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        libc = _libc()
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise WatchError(
                f"cannot create an inotify instance to watch {self.directory}: "
                f"{os.strerror(ctypes.get_errno())}; raise fs.inotify.max_user_instances on the node"
            )
        if libc.inotify_add_watch(fd, os.fsencode(self.directory), WATCH_MASK | IN_ONLYDIR) < 0:
            code = ctypes.get_errno()
            os.close(fd)
            fix = (
                "raise fs.inotify.max_user_watches on the node"
                if code == errno.ENOSPC
                else "point --device-plugin-dir at kubelet's device-plugin directory and mount it"
            )
            raise WatchError(f"cannot watch the directory {self.directory}: {os.strerror(code)}; {fix}")
        self._fd = fd
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._read)

    def _read(self) -> None:
        if self._fd is None:
            return
        try:
            buffer = os.read(self._fd, _READ_SIZE)
        except BlockingIOError:
            return
        events = parse_events(buffer)
        if events:
            self._on_events(events)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            if self._loop is not None:
                self._loop.remove_reader(fd)
            os.close(fd)
