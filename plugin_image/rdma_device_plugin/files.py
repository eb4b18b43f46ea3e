"""Reading files the plugin did not write (its config, sysfs attributes): regular files only, never more
than a bound, and never blocking on open."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotRegularFileError(Exception):
    """The path names something other than a regular file (a FIFO, a directory, a device, a socket)."""

    def __init__(self, mode: int) -> None:
        super().__init__(f"{kind_of(mode)}, not a regular file")
        self.mode = mode


def kind_of(mode: int) -> str:
    """What a non-regular file is, as an error message names it."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
    )
    return next((name for test, name in kinds if test(mode)), "a block device")


def read_regular(path: Path, limit: int) -> bytes:
    """At most `limit` + 1 bytes of the regular file `path`: one more than allowed, so that the caller can
    tell a file that is too large. Raises OSError (open, read) or NotRegularFileError.

    Opened non-blocking: opening a FIFO for reading would otherwise wait for a writer, with no timeout.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(mode)
        return os.read(fd, limit + 1)
    finally:
        os.close(fd)
