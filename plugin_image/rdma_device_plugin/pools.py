"""Resource pools: which devices back a resource, the IDs kubelet sees, and what a container gets.

A pool is synchronous and pure: refresh() takes a discovery result, devices() reports IDs with health and NUMA
node, allocate() turns requested IDs into device nodes (stat-ing them under dev_root, its only I/O) and
preferred() picks IDs for kubelet. Notifying ListAndWatch streams is the caller's job.

Shared pools (legacy hca mode and the pool format): ``ids_max`` IDs "0".."N-1", ID i backed by member
``i % len(members)`` so that every ID carries a real device's health and NUMA node. A pool with no member
advertises no ID at all (never ``rdmaHcaMax`` IDs without a device, k8s-rdma-shared-dev-plugin's #44).
SR-IOV pools: one ID per VF of the configured PFs, the VF's PCI address.
"""

from __future__ import annotations

import heapq
import os
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from rdma_device_plugin.config import PluginConfig, ResourceConfig, Selectors
from rdma_device_plugin.discovery import DEV_INFINIBAND, CharDevice, Hca
from rdma_device_plugin.text import examples

RDMA_DEVICES_ENV = "RDMA_DEVICES"


@dataclass(frozen=True)
class DeviceState:
    id: str
    healthy: bool
    numa_node: int | None


@dataclass(frozen=True)
class Allocation:
    device_nodes: tuple[str, ...]
    """Absolute paths, the same on the host and in the container, e.g. /dev/infiniband/uverbs0."""
    envs: dict[str, str]


class _Node(NamedTuple):
    path: str
    """Where the node is on the host and in the container, /dev/infiniband/<name>."""
    host_file: str
    """Where this process sees it, under --dev-root."""

    def exists(self) -> bool:
        # Checked at every Allocate (a node can vanish after discovery); access(F_OK) is the cheapest
        # existence check, about half the time of os.path.exists, which builds a stat result.
        return os.access(self.host_file, os.F_OK)


class _HcaNodes(NamedTuple):
    """An HCA's device nodes, resolved once per refresh: Allocate only checks that they exist."""

    verbs: tuple[CharDevice, _Node] | None
    """None when sysfs lists no verbs device for the HCA."""
    optional: tuple[_Node, ...]
    """umad and issm, given only when present."""


class AllocationError(Exception):
    """A request the pool cannot serve; str() is one paragraph saying why."""


class UnknownDeviceError(AllocationError):
    """A requested ID is not (or no longer) advertised by the pool."""


class MissingDeviceNodeError(AllocationError):
    """A device node a container needs does not exist on the host."""


def selector_matches(selectors: Selectors, hca: Hca) -> bool:
    """OR within each selector list, AND across lists; an empty list imposes nothing."""
    return (
        (not selectors.vendors or hca.vendor in selectors.vendors)
        and (not selectors.device_ids or hca.device_id in selectors.device_ids)
        and (not selectors.drivers or hca.driver in selectors.drivers)
        and (not selectors.if_names or any(name in selectors.if_names for name in hca.netdevs))
        and (not selectors.link_types or any(layer in selectors.link_types for layer in hca.link_layers))
    )


def pool_members(config: ResourceConfig, hcas: Sequence[Hca]) -> list[Hca]:
    """The devices behind a resource, in discovery order (SR-IOV: the VFs of the PFs, by PCI address)."""
    if config.mode == "shared":
        return [hca for hca in hcas if selector_matches(config.selectors, hca)]
    pfs = {
        hca.pci_address
        for hca in hcas
        if hca.physfn is None and any(name in config.pf_netdevices for name in hca.netdevs)
    }
    vfs = [hca for hca in hcas if hca.physfn is not None and hca.physfn in pfs]
    return sorted(vfs, key=lambda vf: vf.pci_address or "")


def verbs_ready(hca: Hca) -> bool:
    """Its uverbs character device is in sysfs and its node exists: what Allocate needs of every HCA it
    hands out."""
    uverbs = hca.uverbs
    return uverbs is not None and uverbs.present


def usable(hca: Hca) -> bool:
    """Healthy: a port is up, and its uverbs node exists (without it no verbs application can open it)."""
    return hca.healthy and verbs_ready(hca)


class ResourcePool:
    def __init__(self, config: ResourceConfig, dev_root: Path) -> None:
        self.config = config
        self._dev_root = dev_root
        self._node_dir = os.path.join(dev_root, "infiniband")
        self._rdma_cm = _Node(f"{DEV_INFINIBAND}/rdma_cm", os.path.join(self._node_dir, "rdma_cm"))
        self._members: tuple[Hca, ...] = ()
        self._nodes: dict[str, _HcaNodes] = {}
        self._backing: dict[str, Hca] = {}
        self._order: dict[str, int] = {}
        self._devices: list[DeviceState] = []

    @property
    def members(self) -> tuple[Hca, ...]:
        """The devices currently behind this resource."""
        return self._members

    @property
    def shares_all(self) -> bool:
        """Every container gets every member's nodes, whatever IDs it was given."""
        return self.config.mode == "shared" and not self.config.exclusive

    def blocking(self) -> list[Hca]:
        """Members without a usable verbs node that make every Allocate of a shared pool fail."""
        return [hca for hca in self._members if not verbs_ready(hca)] if self.shares_all else []

    def devices(self) -> list[DeviceState]:
        return list(self._devices)

    def refresh(self, hcas: Sequence[Hca]) -> bool:
        """Re-evaluate membership and health from a discovery result; True iff devices() changed."""
        members = pool_members(self.config, hcas)
        if self.config.mode == "sriov":
            backing = {vf.pci_address: vf for vf in members if vf.pci_address}
        else:
            count = self.config.ids_max if members else 0
            backing = {str(i): members[i % len(members)] for i in range(count)}
        # Health means "Allocate for this ID succeeds now". A shared pool hands every container every member's
        # nodes, so one member without a usable verbs node fails every Allocate: then no ID is healthy.
        blocked = self.shares_all and not all(verbs_ready(hca) for hca in members)
        devices = [
            DeviceState(id_, usable(hca) and not blocked, hca.numa_node) for id_, hca in backing.items()
        ]
        changed = devices != self._devices
        self._members = tuple(members)
        self._nodes = {hca.name: self._hca_nodes(hca) for hca in members}
        self._backing = backing
        self._order = {id_: index for index, id_ in enumerate(backing)}
        self._devices = devices
        return changed

    def allocate(self, ids: Sequence[str]) -> Allocation:
        """The device nodes and environment for one container that was given `ids`."""
        if not ids:
            raise UnknownDeviceError(f"{self.config.resource_name}: the request names no device ID")
        unknown = [id_ for id_ in dict.fromkeys(ids) if id_ not in self._backing]
        if unknown:
            raise UnknownDeviceError(
                f"{self.config.resource_name}: unknown device ID{'s' if len(unknown) > 1 else ''} "
                f"{examples(unknown)}; this node advertises {self._describe_ids()}"
            )
        if self.shares_all:
            hcas: Sequence[Hca] = self._members
        else:
            behind = {self._backing[id_].name for id_ in ids}
            hcas = [hca for hca in self._members if hca.name in behind]
        nodes = [node for hca in hcas for node in self._nodes_of(hca)]
        if self._rdma_cm.exists():
            nodes.append(self._rdma_cm.path)
        return Allocation(tuple(nodes), {RDMA_DEVICES_ENV: ",".join(hca.name for hca in hcas)})

    def _describe_ids(self) -> str:
        if not self._backing:
            return "no device for this resource"
        if self.config.mode == "sriov":
            return f"the VFs {', '.join(self._backing)}"
        return f'IDs "0" to "{len(self._backing) - 1}"'

    def _hca_nodes(self, hca: Hca) -> _HcaNodes:
        uverbs = hca.uverbs
        return _HcaNodes(
            None if uverbs is None else (uverbs, self._node(uverbs)),
            tuple(self._node(dev) for dev in hca.char_devices if dev.kind != "uverbs"),
        )

    def _node(self, device: CharDevice) -> _Node:
        return _Node(device.path, os.path.join(self._node_dir, device.name))

    def _nodes_of(self, hca: Hca) -> list[str]:
        """The HCA's device nodes as they are now: its verbs node must exist, the others go in if they do."""
        verbs, optional = self._nodes[hca.name]
        if verbs is None:
            raise MissingDeviceNodeError(
                f"{self.config.resource_name}: {hca.name} has no uverbs character device in sysfs "
                "(class/infiniband_verbs); load the ib_uverbs kernel module on the host"
            )
        uverbs, required = verbs
        if not required.exists():
            raise MissingDeviceNodeError(
                f"{self.config.resource_name}: {required.path}, the verbs node of {hca.name} (char "
                f"{uverbs.dev}), is missing: {required.host_file} does not exist; check that the host's "
                "/dev is mounted at --dev-root and that udev created the node"
            )
        return [required.path, *[node.path for node in optional if node.exists()]]

    def preferred(self, available: Sequence[str], must_include: Sequence[str], size: int) -> list[str]:
        """`size` IDs out of `available`, starting with `must_include`: IDs on one NUMA node first (that of
        must_include when given, else one that can supply them all), spread over as many HCAs as possible."""
        # kubelet's contract: the answer is a subset of `available`, at most `size` long.
        offered = dict.fromkeys(available)
        chosen = [id_ for id_ in dict.fromkeys(must_include) if id_ in offered][: max(size, 0)]
        taken = set(chosen)
        candidates = [id_ for id_ in offered if id_ not in taken and id_ in self._backing]
        candidates.sort(key=self._order.__getitem__)
        need = size - len(chosen)
        if need <= 0 or not candidates:
            return chosen
        anchors = Counter(self._backing[id_].numa_node for id_ in chosen if id_ in self._backing)
        anchor = anchors.most_common(1)[0][0] if anchors else None
        groups: dict[int | None, list[str]] = {}
        for id_ in candidates:
            groups.setdefault(self._backing[id_].numa_node, []).append(id_)

        def rank(numa: int | None) -> tuple[bool, bool, int, bool, int]:
            group = groups[numa]
            hcas = len({self._backing[id_].name for id_ in group})
            return (not anchors or numa != anchor, len(group) < need, -hcas, numa is None, numa or 0)

        usage = Counter(self._backing[id_].name for id_ in chosen if id_ in self._backing)
        for numa in sorted(groups, key=rank):
            picked = self._spread(groups[numa], need, usage)
            chosen.extend(picked)
            need -= len(picked)
            if need == 0:
                break
        return chosen

    def _spread(self, ids: list[str], count: int, usage: Counter[str]) -> list[str]:
        """Up to `count` of `ids`, each next one from the HCA used least so far (ties: pool order)."""
        queues: dict[str, deque[str]] = {}
        for id_ in ids:
            queues.setdefault(self._backing[id_].name, deque()).append(id_)
        heap = [(usage[name], index, name) for index, name in enumerate(queues)]
        heapq.heapify(heap)
        picked: list[str] = []
        while heap and len(picked) < count:
            used, index, name = heapq.heappop(heap)
            picked.append(queues[name].popleft())
            usage[name] += 1
            if queues[name]:
                heapq.heappush(heap, (used + 1, index, name))
        return picked


def build_pools(config: PluginConfig, dev_root: Path) -> list[ResourcePool]:
    """One empty pool per configured resource; feed each a discovery result with refresh()."""
    return [ResourcePool(resource, dev_root) for resource in config.resources]
