"""Bounded readers for sysfs attributes.

Reading an attribute has three outcomes:
- its value (without the kernel's trailing newline);
- absent (None): the file does not exist (the device or port is gone), or the kernel refuses it by design (an
  unused GID's ``gid_attrs/ndevs/<i>`` fails with EINVAL);
- FAILED: the read says nothing about the device (EMFILE, EIO, a file larger than a page, not a regular file,
  no answer within the timeout). Callers keep what they knew before; the reader counts the failure (the
  ``on_failure`` callback, a metric) and logs it once per reason until reads succeed again.

Every read is bounded: regular files only, opened non-blocking (a FIFO planted in the tree does not wait for
a writer), at most MAX_ATTR_BYTES (the kernel's show() fills at most one page; real attributes are a few
dozen bytes), and within READ_TIMEOUT: an attribute whose show() waits on firmware, or a file on a hung
filesystem, would otherwise stop discovery or the health poll with nothing to show for it. The read runs on
a worker thread; one that does not answer in time is left behind (its thread ends when the read returns)
and its path fails at once until then, so a stuck file costs one timeout, not one per poll.
"""

from __future__ import annotations

import enum
import errno
import logging
import os
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rdma_device_plugin.files import NotRegularFileError, read_regular

log = logging.getLogger(__name__)

_DIGITS = re.compile(r"(\d+)")
# The kernel's sysfs show() writes at most PAGE_SIZE bytes (4 KiB on x86-64 and on arm64 with 4 KiB pages).
MAX_ATTR_BYTES = 4096
# Real attribute reads take microseconds; firmware-backed ones milliseconds. A second is far beyond both.
READ_TIMEOUT = 1.0
# Reads left behind at once; past this every read fails at once (and says so) instead of adding threads.
MAX_STUCK = 8
# A worker with nothing to read for this long ends; the next read starts one again.
IDLE_EXIT = 30.0
# Errors that mean "not there" rather than "could not read".
_ABSENT = {errno.ENOENT, errno.ENOTDIR, errno.EINVAL, errno.ENODEV, errno.ENXIO}


class Read(enum.Enum):
    FAILED = "failed"


FAILED: Literal[Read.FAILED] = Read.FAILED
Attr = str | None | Literal[Read.FAILED]


# Why a read failed, as the failure metric labels it: an errno name (EMFILE, EIO, ...) or one of these.
NOT_REGULAR = "not_regular_file"
TOO_LARGE = "too_large"
TIMEOUT = "timeout"


class _ReadError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _errno_failure(error: OSError) -> _ReadError:
    name = errno.errorcode.get(error.errno or 0, "OSError")
    return _ReadError(name, f"{name}: {error.strerror or error}")


def _read_file(path: Path) -> str | None:
    """One bounded read; None when absent; raises _ReadError when it failed."""
    try:
        data = read_regular(path, MAX_ATTR_BYTES)
    except NotRegularFileError:
        raise _ReadError(NOT_REGULAR, "not a regular file") from None
    except OSError as error:
        if error.errno in _ABSENT:
            return None
        raise _errno_failure(error) from None
    if len(data) > MAX_ATTR_BYTES:
        raise _ReadError(TOO_LARGE, f"larger than {MAX_ATTR_BYTES} bytes")
    return data.decode("utf-8", errors="replace").rstrip("\n") or None


@dataclass
class _Job:
    path: Path
    done: threading.Event = field(default_factory=threading.Event)
    value: str | None = None
    failure: _ReadError | None = None
    finished: bool = False
    abandoned: bool = False


class _Worker(threading.Thread):
    def __init__(self, reader: SysfsReader) -> None:
        super().__init__(name="sysfs read", daemon=True)
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._reader = reader

    def run(self) -> None:
        while True:
            try:
                job = self.jobs.get(timeout=IDLE_EXIT)
            except queue.Empty:
                if self._reader._retire(self):
                    return
                continue
            try:
                value, failure = _read_file(job.path), None
            except _ReadError as error:
                value, failure = None, error
            self._reader._finished(self, job, value, failure)


class SysfsReader:
    """Reads attributes with the bounds above; reports failed reads to `on_failure(reason)` and the log.
    Thread-safe: discovery and the health poll read through one reader from their own threads."""

    def __init__(self, timeout: float | None = None, on_failure: Callable[[str], None] | None = None) -> None:
        self.timeout = READ_TIMEOUT if timeout is None else timeout
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._stuck: set[Path] = set()
        self._logged: set[str] = set()
        self._round: set[str] = set()

    # -- reading -------------------------------------------------------------------------------------

    def attr(self, path: Path) -> Attr:
        """The attribute's value, None when absent or empty, FAILED when the read failed."""
        with self._lock:
            if path in self._stuck:
                failure: _ReadError | None = _ReadError(TIMEOUT, "an earlier read of it has not returned yet")
            elif len(self._stuck) >= MAX_STUCK:
                failure = _ReadError(TIMEOUT, f"{MAX_STUCK} reads have not returned yet")
            else:
                failure = None
                worker = self._idle.pop() if self._idle else None
        if failure is not None:
            return self._failed(path, failure)
        if worker is None:
            worker = _Worker(self)
            worker.start()
        job = _Job(path)
        worker.jobs.put(job)
        if not job.done.wait(self.timeout):
            with self._lock:
                if not job.finished:
                    job.abandoned = True
                    self._stuck.add(path)
            if job.abandoned:
                return self._failed(path, _ReadError(TIMEOUT, f"no answer within {self.timeout:g} s"))
        if job.failure is not None:
            return self._failed(path, job.failure)
        return job.value

    def _retire(self, worker: _Worker) -> bool:
        """True if the idle `worker` may end; False if a read was just handed to it."""
        with self._lock:
            if worker in self._idle:
                self._idle.remove(worker)
                return True
            return False

    def _finished(self, worker: _Worker, job: _Job, value: str | None, failure: _ReadError | None) -> None:
        with self._lock:
            job.value, job.failure, job.finished = value, failure, True
            if job.abandoned:
                self._stuck.discard(job.path)
            self._idle.append(worker)
        job.done.set()

    def value(self, path: Path) -> str | None:
        """The attribute's value; None when absent or when the read failed (the failure is reported)."""
        read = self.attr(path)
        return None if read is FAILED else read

    def int_value(self, path: Path) -> int | None:
        value = self.value(path)
        try:
            return int(value, 0) if value is not None else None
        except ValueError:
            return None

    def hex_id(self, path: Path) -> str | None:
        """A PCI id such as ``0x15b3`` as four lower-case hex digits (``15b3``)."""
        value = self.value(path)
        if value is None:
            return None
        digits = value.lower().removeprefix("0x")
        return digits if re.fullmatch(r"[0-9a-f]{1,4}", digits) else None

    def entries(self, directory: Path, prefix: str = "") -> list[Path] | Literal[Read.FAILED]:
        """The directory's entries whose names start with prefix, in natural order; [] when it is absent,
        FAILED when it could not be listed (EMFILE, EIO, ...)."""
        try:
            names = [name for name in os.listdir(directory) if name.startswith(prefix)]
        except OSError as error:
            if error.errno in _ABSENT:
                return []
            return self._failed(directory, _errno_failure(error))
        return [directory / name for name in sorted(names, key=natural_key)]

    # -- reporting -----------------------------------------------------------------------------------

    def _failed(self, path: Path, failure: _ReadError) -> Literal[Read.FAILED]:
        reason = failure.reason
        with self._lock:
            self._round.add(reason)
            first = reason not in self._logged
            self._logged.add(reason)
        if self._on_failure is not None:
            self._on_failure(reason)
        if first:
            log.warning(
                "sysfs read failed (%s), e.g. %s; keeping the last known values; not logged again until "
                "reads stop failing this way",
                failure.detail,
                path,
                extra={"path": str(path), "reason": reason},
            )
        return FAILED

    def end_round(self) -> None:
        """One pass over the files is done (a poll): reasons that did not come up in it are over."""
        with self._lock:
            over = sorted(self._logged - self._round)
            self._logged -= set(over)
            self._round.clear()
        for reason in over:
            log.info("sysfs reads succeed again (they failed with %s before)", reason)


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


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders ``mlx5_2`` before ``mlx5_10``."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(name) if part)
