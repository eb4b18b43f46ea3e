"""inotify(7) on one directory, through libc with ctypes, delivered on the asyncio loop.

The kernel queues an event for every entry created, deleted or moved in the directory; the loop reads them
when the inotify descriptor becomes readable, so nothing polls and a change is seen within microseconds.
The directory's parent is watched too: a directory removed and created again is watched again.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
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
IN_ISDIR = 0x40000000

WATCH_MASK = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF
APPEARED = IN_CREATE | IN_MOVED_TO
VANISHED = IN_DELETE | IN_MOVED_FROM
# The directory itself went away (or the kernel dropped the watch): no further event will come.
WATCH_LOST = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED
# Not a kernel bit (inotify never reports IN_ONESHOT in an event): this module's own event for "the directory
# exists again and is watched again", after WATCH_LOST.
WATCH_RESTORED = 0x80000000

# struct inotify_event { int wd; uint32_t mask; uint32_t cookie; uint32_t len; char name[len]; }
_HEADER = struct.Struct("iIII")
_READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class DirEvent:
    mask: int
    name: str
    """The entry's name in the watched directory; empty for events about the directory itself."""
    wd: int = field(default=-1, compare=False)
    """The watch the event came from (an old watch's last events can arrive after a new one is set up)."""


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
        wd, mask, _cookie, length = _HEADER.unpack_from(buffer, offset)
        offset += _HEADER.size
        raw = buffer[offset : offset + length]
        offset += length
        events.append(DirEvent(mask, os.fsdecode(raw.split(b"\0", 1)[0]), wd))
    return events


class DirectoryWatch:
    """Calls `on_events` on the running loop with every batch of events about `directory`'s entries; after a
    WATCH_LOST event, a DirEvent(WATCH_RESTORED, "") once the directory exists again."""

    def __init__(self, directory: Path, on_events: Callable[[list[DirEvent]], None]) -> None:
        self.directory = directory
        self._on_events = on_events
        self._libc: ctypes.CDLL | None = None
        self._fd: int | None = None
        self._parent_fd: int | None = None
        self._wd: int | None = None
        """The directory's current watch; None while the directory is gone."""
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._libc = _libc()
        fd = self._instance()
        self._wd = self._add_watch(fd, self.directory, WATCH_MASK)
        try:
            parent_fd = self._instance()
        except WatchError:
            os.close(fd)
            raise
        self._add_watch(parent_fd, self.directory.parent, IN_CREATE | IN_MOVED_TO)
        self._fd, self._parent_fd = fd, parent_fd
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._read)
        self._loop.add_reader(parent_fd, self._read_parent)

    def _instance(self) -> int:
        assert self._libc is not None
        fd = int(self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
        if fd < 0:
            raise WatchError(
                f"cannot create an inotify instance to watch {self.directory}: "
                f"{os.strerror(ctypes.get_errno())}; raise fs.inotify.max_user_instances on the node"
            )
        return fd

    def _add_watch(self, fd: int, directory: Path, mask: int) -> int:
        assert self._libc is not None
        wd = int(self._libc.inotify_add_watch(fd, os.fsencode(directory), mask | IN_ONLYDIR))
        if wd < 0:
            code = ctypes.get_errno()
            os.close(fd)
            fix = (
                "raise fs.inotify.max_user_watches on the node"
                if code == errno.ENOSPC
                else "point --device-plugin-dir at kubelet's device-plugin directory and mount it"
            )
            raise WatchError(f"cannot watch the directory {directory}: {os.strerror(code)}; {fix}")
        return wd

    @staticmethod
    def _events(fd: int | None) -> list[DirEvent]:
        if fd is None:
            return []
        try:
            return parse_events(os.read(fd, _READ_SIZE))
        except BlockingIOError:
            return []

    def _read(self) -> None:
        events = []
        for event in self._events(self._fd):
            if event.mask & IN_Q_OVERFLOW:
                events.append(event)
            elif event.wd != self._wd:
                continue  # the last words of a watch already replaced
            else:
                if event.mask & WATCH_LOST:
                    self._wd = None
                events.append(event)
        if events:
            self._on_events(events)

    def _read_parent(self) -> None:
        appeared = any(
            (event.name == self.directory.name and event.mask & IN_ISDIR) or event.mask & IN_Q_OVERFLOW
            for event in self._events(self._parent_fd)
        )
        if appeared and self._wd is None and self._fd is not None and self._libc is not None:
            wd = int(
                self._libc.inotify_add_watch(self._fd, os.fsencode(self.directory), WATCH_MASK | IN_ONLYDIR)
            )
            if wd >= 0:  # else it went away again: the next creation is another chance
                self._wd = wd
                self._on_events([DirEvent(WATCH_RESTORED, "", wd)])

    def close(self) -> None:
        fds, self._fd, self._parent_fd = (self._fd, self._parent_fd), None, None
        for fd in fds:
            if fd is not None:
                if self._loop is not None:
                    self._loop.remove_reader(fd)
                os.close(fd)
