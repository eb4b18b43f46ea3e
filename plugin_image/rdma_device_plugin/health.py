"""Port health between rediscoveries: a cheap re-read of every known port's ``state`` and ``phys_state``.

A full discovery walks PCI functions, netdevs, GIDs and char devices; the health poll reads two small files
per port of the HCAs the last discovery found, nothing else, so it can run every second. An HCA whose
sysfs directory is gone reads as having no live port: its IDs turn unhealthy at once and leave the pools at
the next rediscovery, which is the only thing that adds or removes devices.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rdma_device_plugin.discovery import Hca, Port
from rdma_device_plugin.sysfs import label, read_attr

log = logging.getLogger(__name__)

# What discovery records for an unreadable state file, so both readers agree on a vanished port.
UNKNOWN = "UNKNOWN"


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
    """One HCA's ports as just read; ``present`` is False when its sysfs directory is gone."""

    present: bool
    ports: dict[int, PortLink]


def read_links(sysfs_root: Path, hcas: Sequence[Hca]) -> dict[str, HcaLinks]:
    """The current state of every port of `hcas`, by ibdev name (blocking file reads: run in a thread)."""
    links = {}
    for hca in hcas:
        ibdev_dir = sysfs_root / "class" / "infiniband" / hca.name
        ports = {}
        for port in hca.ports:
            port_dir = ibdev_dir / "ports" / str(port.number)
            ports[port.number] = PortLink(
                label(read_attr(port_dir / "state")) or UNKNOWN,
                label(read_attr(port_dir / "phys_state")) or UNKNOWN,
            )
        links[hca.name] = HcaLinks(ibdev_dir.exists(), ports)
    return links


def with_links(hcas: Sequence[Hca], links: dict[str, HcaLinks]) -> list[Hca]:
    """`hcas` with their ports' state replaced by what `links` says (HCAs it does not cover unchanged)."""
    return [_with_ports(hca, read) if (read := links.get(hca.name)) else hca for hca in hcas]


def _with_ports(hca: Hca, read: HcaLinks) -> Hca:
    ports = tuple(
        dataclasses.replace(port, state=link.state, phys_state=link.phys_state)
        if (link := read.ports.get(port.number)) is not None
        else port
        for port in hca.ports
    )
    return dataclasses.replace(hca, ports=ports)


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
    source), and hands the HCAs with their new port states to `apply` when any port changed."""

    def __init__(
        self,
        sysfs_root: Path,
        interval: float,
        current: Callable[[], Sequence[Hca]],
        apply: Callable[[list[Hca]], None],
    ) -> None:
        self.sysfs_root = sysfs_root
        self.interval = interval
        self._current = current
        self._apply = apply
        self._woken = asyncio.Event()

    def wake(self) -> None:
        self._woken.set()

    async def poll_once(self) -> None:
        """Read every known port now; apply the result if any port changed."""
        links = await asyncio.to_thread(read_links, self.sysfs_root, list(self._current()))
        # A rediscovery may have replaced the HCAs during the read: compare against and update the current
        # ones; HCAs the read did not cover (new ones) keep what discovery found.
        hcas = self._current()
        if log_transitions(hcas, links):
            self._apply(with_links(hcas, links))

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self.interval)
            self._woken.clear()
            await self.poll_once()
