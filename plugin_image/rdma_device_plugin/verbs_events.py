"""Asynchronous port and device events from libibverbs, for the HCAs this process can open.

An event (port active, port error, device fatal, ...) makes the port poll read sysfs at once instead of at
its next tick; sysfs stays the one source of port state, so events only shorten the delay. Opening an HCA
needs its uverbs node usable inside the container; the unprivileged DaemonSet usually cannot, and then the
poll alone is used (the reason is logged once at start).

pyverbs' ``Context.get_async_event()`` reads the event descriptor while holding the GIL, which would stall
the whole process until an event came. So the descriptor — the ``anon_inode:[infinibandevent]`` file that
opening the device adds to the process — is made non-blocking and read only when the loop reports it
readable.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdma_device_plugin.discovery import Hca
from rdma_device_plugin.pyverbs_backend import VerbsListError, list_devices

log = logging.getLogger(__name__)

ASYNC_EVENT_FILE = "anon_inode:[infinibandevent]"
# enum ibv_event_type values of the events about ports and devices (verbs.h).
DEVICE_FATAL = 8
EVENT_NAMES = {
    8: "DEVICE_FATAL",
    9: "PORT_ACTIVE",
    10: "PORT_ERR",
    11: "LID_CHANGE",
    12: "PKEY_CHANGE",
    13: "SM_CHANGE",
    16: "CLIENT_REREGISTER",
    18: "GID_CHANGE",
}


def _open_fds() -> dict[int, str]:
    links = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            links[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the descriptor used to list the directory, already closed
    return links


@dataclass
class _Opened:
    name: str
    context: Any
    fd: int


class VerbsEvents:
    """Calls `on_event` whenever an opened HCA reports an asynchronous event."""

    def __init__(self, on_event: Callable[[], None]) -> None:
        self._on_event = on_event
        self._opened: list[_Opened] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def devices(self) -> list[str]:
        return [opened.name for opened in self._opened]

    def open(self, hcas: Sequence[Hca], sysfs_root: Path, dev_root: Path) -> str:
        """Open every HCA libibverbs can open and listen to its events; say which, or why none, in a line."""
        if dev_root.resolve() != Path("/dev"):
            return f"not used: libibverbs opens /dev/infiniband, not {dev_root}/infiniband"
        try:
            listed = list_devices(sysfs_root)
        except VerbsListError as error:
            return f"not used: {error}"
        if listed is None:
            return "not used: pyverbs is not importable (Debian package python3-pyverbs)"
        wanted = {hca.name for hca in hcas}
        names = [device.name for device in listed if device.name in wanted]
        if not names:
            return "not used: libibverbs lists none of the node's RDMA devices"
        from pyverbs.device import Context  # noqa: PLC0415  (importable: list_devices just imported it)
        from pyverbs.pyverbs_error import PyverbsError  # noqa: PLC0415

        self._loop = asyncio.get_running_loop()
        failures = []
        for name in names:
            before = _open_fds()
            try:
                context = Context(name=name)
            except PyverbsError as error:
                failures.append(f"{name}: {error}")
                continue
            fds = [fd for fd, link in _open_fds().items() if link == ASYNC_EVENT_FILE and fd not in before]
            if len(fds) != 1:
                context.close()
                failures.append(f"{name}: no event descriptor among its open files")
                continue
            os.set_blocking(fds[0], False)
            opened = _Opened(name, context, fds[0])
            self._loop.add_reader(opened.fd, self._read, opened)
            self._opened.append(opened)
        if not self._opened:
            return f"not used: no device could be opened ({'; '.join(failures)})"
        unopened = f"; not from {'; '.join(failures)}" if failures else ""
        return f"from {', '.join(self.devices)}{unopened}"

    def _read(self, opened: _Opened) -> None:
        from pyverbs.pyverbs_error import PyverbsError  # noqa: PLC0415

        try:
            event = opened.context.get_async_event()
        except PyverbsError:
            return  # EAGAIN: the descriptor was readable for another reader's event
        kind = int(event.event_type)
        event.ack()
        log.info(
            "%s: verbs async event %s; reading port states now",
            opened.name,
            EVENT_NAMES.get(kind, str(kind)),
            extra={"ibdev": opened.name},
        )
        if kind == DEVICE_FATAL:
            # The context is dead; the poll keeps watching the device's ports (a reset re-creates them).
            self._forget(opened)
        self._on_event()

    def _forget(self, opened: _Opened) -> None:
        if self._loop is not None:
            self._loop.remove_reader(opened.fd)
        opened.context.close()
        self._opened.remove(opened)

    def close(self) -> None:
        for opened in list(self._opened):
            self._forget(opened)
