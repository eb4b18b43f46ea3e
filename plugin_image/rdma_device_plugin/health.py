"""Health between rediscoveries: a cheap re-read of every known port's ``state`` and ``phys_state``, and a
check that every known device node still exists.

A full discovery walks PCI functions, netdevs, GIDs and char devices; the health poll reads two small files
per port of the HCAs the last discovery found and checks their nodes under the dev root, nothing else, so it
can run every second. An HCA whose sysfs directory is gone reads as having no live port: its IDs turn
unhealthy at once and leave the pools at the next rediscovery, which is the only thing that adds or removes
devices. A verbs node that vanished makes Allocate fail, so the IDs that need it turn unhealthy too
(pools.py decides which).

A state file that cannot be read (EMFILE, EIO, a timeout: see sysfs.py) says nothing about the port: the
port keeps its last known state, and the reader counts and logs the failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rdma_device_plugin.discovery import UNKNOWN, Hca, Port
from rdma_device_plugin.sysfs import FAILED, SysfsReader, label

log = logging.getLogger(__name__)

__all__ = ["UNKNOWN", "HcaLinks", "PortLink", "PortPoller", "log_transitions", "read_links", "with_links"]


@dataclass(frozen=True)
class PortLink:
    state: str
    phys_state: str

    @classmethod
    def of(cls, port: Port) -> PortLink:
        return cls(port.state, port.phys_state)

    def describe(self) -> str:
        return f"{self.state}/{self.phys_state}"


@dataclass(frozen=True)
class HcaLinks:
    """One HCA as just read: ``present`` is False when its sysfs directory is gone; ``ports`` holds the ports
    whose state files could be read (the others keep their state); ``nodes`` whether each char device's
    node exists under the dev root (empty when nodes were not checked)."""

    present: bool
    ports: dict[int, PortLink]
    nodes: dict[str, bool] = field(default_factory=dict)


def _exists(path: Path) -> bool:
    """False only when the path is gone; an error that says nothing about it (EACCES, ...) counts as there."""
    try:
        os.stat(path)
    except OSError as error:
        return error.errno not in (errno.ENOENT, errno.ENOTDIR)
    return True


def read_links(
    sysfs_root: Path, hcas: Sequence[Hca], dev_root: Path | None = None, reader: SysfsReader | None = None
) -> dict[str, HcaLinks]:
    """The current state of every port of `hcas`, and with `dev_root` whether their nodes exist, by ibdev
    name (blocking file reads: run in a thread)."""
    sysfs = reader or SysfsReader()
    links = {}
    for hca in hcas:
        ibdev_dir = sysfs_root / "class" / "infiniband" / hca.name
        ports = {}
        for port in hca.ports:
            port_dir = ibdev_dir / "ports" / str(port.number)
            state, phys_state = sysfs.attr(port_dir / "state"), sysfs.attr(port_dir / "phys_state")
            if state is FAILED or phys_state is FAILED:
                continue
            ports[port.number] = PortLink(label(state) or UNKNOWN, label(phys_state) or UNKNOWN)
        nodes = (
            {dev.name: os.access(dev_root / "infiniband" / dev.name, os.F_OK) for dev in hca.char_devices}
            if dev_root is not None
            else {}
        )
        links[hca.name] = HcaLinks(_exists(ibdev_dir), ports, nodes)
    return links


def with_links(hcas: Sequence[Hca], links: dict[str, HcaLinks]) -> list[Hca]:
    """`hcas` with their ports' state and nodes' presence replaced by what `links` says (HCAs, ports and
    nodes it does not cover unchanged)."""
    return [_with_links(hca, read) if (read := links.get(hca.name)) else hca for hca in hcas]


def _with_links(hca: Hca, read: HcaLinks) -> Hca:
    ports = tuple(
        dataclasses.replace(port, state=link.state, phys_state=link.phys_state)
        if (link := read.ports.get(port.number)) is not None
        else port
        for port in hca.ports
    )
    devices = tuple(
        dataclasses.replace(dev, present=present)
        if (present := read.nodes.get(dev.name)) is not None and present != dev.present
        else dev
        for dev in hca.char_devices
    )
    return dataclasses.replace(hca, ports=ports, char_devices=devices)


def log_transitions(hcas: Sequence[Hca], links: dict[str, HcaLinks]) -> bool:
    """Log one line per port whose state differs from what `hcas` recorded; True if any did."""
    changed = False
    for hca in hcas:
        read = links.get(hca.name)
        if read is None:
            continue
        if not read.present:
            # Logged once: the next poll compares against the UNKNOWN state recorded now.
            if any(PortLink.of(port) != read.ports.get(port.number) for port in hca.ports):
                log.warning(
                    "%s is gone from sysfs; its IDs are unhealthy until the next rediscovery removes them",
                    hca.name,
                    extra={"ibdev": hca.name},
                )
                changed = True
            continue
        for dev in hca.char_devices:
            present = read.nodes.get(dev.name)
            if present is None or present == dev.present:
                continue
            changed = True
            log.log(
                logging.INFO if present else logging.WARNING,
                "%s: %s %s",
                hca.name,
                dev.path,
                "is back" if present else "is gone from the dev root; the IDs that need it turn unhealthy",
                extra={"ibdev": hca.name, "node": dev.name},
            )
        for port in hca.ports:
            before, after = PortLink.of(port), read.ports.get(port.number)
            if after is None or after == before:
                continue
            changed = True
            verdict = "up" if after.state == "ACTIVE" and after.phys_state == "LinkUp" else "not usable"
            log.info(
                "%s port %d: %s -> %s (%s)",
                hca.name,
                port.number,
                before.describe(),
                after.describe(),
                verdict,
                extra={"ibdev": hca.name, "port": port.number},
            )
    return changed


class PortPoller:
    """Re-reads the ports of the current HCAs every `interval` seconds, or at once when woken (by an event
    source), and hands the HCAs with their new port states to `apply` when any port changed; `on_gone` is
    called after a poll that found an HCA gone from sysfs."""

    def __init__(
        self,
        sysfs_root: Path,
        interval: float,
        current: Callable[[], Sequence[Hca]],
        apply: Callable[[list[Hca]], None],
        *,
        dev_root: Path | None = None,
        reader: SysfsReader | None = None,
        on_gone: Callable[[], None] | None = None,
    ) -> None:
        self.sysfs_root = sysfs_root
        self.dev_root = dev_root
        self.reader = reader or SysfsReader()
        self.interval = interval
        self._current = current
        self._apply = apply
        self._on_gone = on_gone
        self._woken = asyncio.Event()

    def wake(self) -> None:
        self._woken.set()

    async def poll_once(self) -> None:
        """Read every known port now; apply the result if any port changed."""
        links = await asyncio.to_thread(
            read_links, self.sysfs_root, list(self._current()), self.dev_root, self.reader
        )
        self.reader.end_round()
        # A rediscovery may have replaced the HCAs during the read: compare against and update the current
        # ones; HCAs the read did not cover (new ones) keep what discovery found.
        hcas = self._current()
        if log_transitions(hcas, links):
            self._apply(with_links(hcas, links))
        if self._on_gone is not None and any(not read.present for read in links.values()):
            self._on_gone()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self.interval)
            self._woken.clear()
            await self.poll_once()
