"""RDMA devices of a host, read from its sysfs and dev trees (both roots injectable).

One Hca per ``<sysfs>/class/infiniband/<ibdev>``: its PCI function (vendor, device id, driver, NUMA node,
netdevs, SR-IOV links), its ports, the netdev behind each port's GID 0 (how ``mlx5_bond_0`` maps to
``bond0``), and its character devices found through ``class/infiniband_verbs/*/ibdev`` and
``class/infiniband_mad/*/ibdev``. A host without RDMA support yields [].

Reads go through a SysfsReader (bounded in size and time). A read that fails (EMFILE, EIO, a timeout) is not
a device that changed: given the previous result, discovery keeps what it knew -- the whole previous list
when ``class/infiniband`` cannot be listed, a port's previous state when its state file cannot be read, an
HCA's previous char devices when their class directory cannot be listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rdma_device_plugin.sysfs import FAILED, Read, SysfsReader, label, link_name, natural_key

CharKind = Literal["uverbs", "umad", "issm"]
DEV_INFINIBAND = "/dev/infiniband"
# A port state nothing could be read for (its file is gone, or failed with nothing known before).
UNKNOWN = "UNKNOWN"
# The sysfs class of each kind of char device, in the order a device's nodes are listed.
_CLASS_OF: dict[CharKind, str] = {
    "uverbs": "infiniband_verbs",
    "umad": "infiniband_mad",
    "issm": "infiniband_mad",
}


@dataclass(frozen=True)
class Port:
    number: int
    state: str
    """``ACTIVE``, ``DOWN``, ``INIT``, ``ARMED``, ``ACTIVE_DEFER`` (the label of ``4: ACTIVE``)."""
    phys_state: str
    """``LinkUp``, ``Polling``, ``Disabled``, ..."""
    link_layer: str
    """``Ethernet`` or ``InfiniBand``."""
    rate: str
    netdevs: tuple[str, ...] = ()
    """The netdev behind GID 0 (``gid_attrs/ndevs/0``) on RoCE and iWARP ports; empty on InfiniBand."""

    @property
    def active(self) -> bool:
        return self.state == "ACTIVE" and self.phys_state == "LinkUp"


@dataclass(frozen=True)
class CharDevice:
    kind: CharKind
    name: str
    """``uverbs0``, ``umad1``, ``issm1``."""
    dev: str
    """``major:minor`` as sysfs prints it, e.g. ``231:192``."""
    present: bool = True
    """Whether ``<dev_root>/infiniband/<name>`` existed when the host was read."""

    @property
    def path(self) -> str:
        """The node's path on the host and inside containers."""
        return f"{DEV_INFINIBAND}/{self.name}"


@dataclass(frozen=True)
class Hca:
    name: str
    pci_address: str | None
    """``0000:3b:00.0``; None for a device without a PCI function (rxe, siw)."""
    vendor: str | None
    """Four lower-case hex digits, ``15b3``."""
    device_id: str | None
    driver: str | None
    numa_node: int | None
    """None when sysfs has none (-1) or no PCI function."""
    netdevs: tuple[str, ...]
    """The PCI function's netdevs (``net/*``), then the ports' GID netdevs not already listed."""
    ports: tuple[Port, ...]
    char_devices: tuple[CharDevice, ...]
    physfn: str | None = None
    """PCI address of the PF when this is an SR-IOV VF."""
    virtfns: tuple[str, ...] = ()
    """PCI addresses of this PF's VFs."""
    sriov_numvfs: int | None = None
    node_type: str | None = None
    """``CA`` (HCA) or ``RNIC`` (iWARP), the label of ``1: CA``."""
    node_guid: str | None = None
    fw_ver: str | None = None

    @property
    def healthy(self) -> bool:
        """At least one port is ACTIVE with its physical link up."""
        return any(port.active for port in self.ports)

    @property
    def uverbs(self) -> CharDevice | None:
        return next((dev for dev in self.char_devices if dev.kind == "uverbs"), None)

    @property
    def link_layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(port.link_layer for port in self.ports))


def discover(
    sysfs_root: Path, dev_root: Path, previous: Sequence[Hca] = (), reader: SysfsReader | None = None
) -> list[Hca]:
    """Every RDMA device under sysfs_root, in natural name order; `previous` (the last result) fills in
    what a failed read cannot tell."""
    sysfs = reader or SysfsReader()
    ibdevs = sysfs.entries(sysfs_root / "class" / "infiniband")
    if ibdevs is FAILED:
        return list(previous)
    known = {hca.name: hca for hca in previous}
    chars = _char_devices(sysfs, sysfs_root, dev_root)
    hcas = []
    for ibdev_dir in ibdevs:
        if ibdev_dir.is_dir():
            before = known.get(ibdev_dir.name)
            if chars is FAILED:
                devices = list(before.char_devices) if before else []
            else:
                devices = chars.get(ibdev_dir.name, [])
            hcas.append(_read_hca(sysfs, ibdev_dir, devices, before))
    return hcas


def rdma_cm_present(dev_root: Path) -> bool:
    """Whether the host has ``/dev/infiniband/rdma_cm`` (rdma_ucm loaded), looked up under dev_root."""
    return (dev_root / "infiniband" / "rdma_cm").exists()


def _char_devices(
    sysfs: SysfsReader, sysfs_root: Path, dev_root: Path
) -> dict[str, list[CharDevice]] | Literal[Read.FAILED]:
    by_ibdev: dict[str, list[CharDevice]] = {}
    for kind, cls in _CLASS_OF.items():
        nodes = sysfs.entries(sysfs_root / "class" / cls, kind)
        if nodes is FAILED:
            return FAILED
        for node in nodes:
            ibdev, dev = sysfs.attr(node / "ibdev"), sysfs.attr(node / "dev")
            if ibdev is FAILED or dev is FAILED:
                return FAILED
            if ibdev is None or dev is None or not node.name[len(kind) :].isdigit():
                continue
            present = (dev_root / "infiniband" / node.name).exists()
            by_ibdev.setdefault(ibdev, []).append(CharDevice(kind, node.name, dev, present))
    for devices in by_ibdev.values():
        devices.sort(key=lambda d: (list(_CLASS_OF).index(d.kind), natural_key(d.name)))
    return by_ibdev


def _pci_function(ibdev_dir: Path) -> Path | None:
    """The PCI function owning the ibdev: its ``device`` link, or the first ancestor of it that has a
    ``vendor`` file (devices on an auxiliary bus, such as mlx5 sub-functions, sit one level below it)."""
    try:
        device = (ibdev_dir / "device").resolve(strict=True)
    except OSError:
        return None
    for candidate in (device, *list(device.parents)[:2]):
        if (candidate / "vendor").is_file():
            return candidate
    return None


def _kept(sysfs: SysfsReader, path: Path, before: str | None) -> str:
    """A port attribute's label; a failed read keeps the value known before (UNKNOWN if none)."""
    read = sysfs.attr(path)
    if read is FAILED:
        return before or UNKNOWN
    return label(read) or UNKNOWN


def _read_port(sysfs: SysfsReader, port_dir: Path, before: Port | None) -> Port:
    ndev = sysfs.value(port_dir / "gid_attrs" / "ndevs" / "0")
    return Port(
        number=int(port_dir.name),
        state=_kept(sysfs, port_dir / "state", before.state if before else None),
        phys_state=_kept(sysfs, port_dir / "phys_state", before.phys_state if before else None),
        link_layer=_kept(sysfs, port_dir / "link_layer", before.link_layer if before else None),
        rate=sysfs.value(port_dir / "rate") or "",
        netdevs=(ndev,) if ndev else (),
    )


@dataclass(frozen=True)
class _Function:
    """What the ibdev's PCI function contributes to its Hca."""

    address: str | None = None
    vendor: str | None = None
    device_id: str | None = None
    driver: str | None = None
    numa_node: int | None = None
    netdevs: tuple[str, ...] = ()
    physfn: str | None = None
    virtfns: tuple[str, ...] = ()
    sriov_numvfs: int | None = None


def _names(listing: list[Path] | Literal[Read.FAILED]) -> list[str]:
    return [] if listing is FAILED else [entry.name for entry in listing]


def _read_function(sysfs: SysfsReader, pci: Path) -> _Function:
    numa = sysfs.int_value(pci / "numa_node")
    virtfns = sysfs.entries(pci, "virtfn")
    return _Function(
        address=pci.name,
        vendor=sysfs.hex_id(pci / "vendor"),
        device_id=sysfs.hex_id(pci / "device"),
        driver=link_name(pci / "driver"),
        numa_node=numa if numa is not None and numa >= 0 else None,
        netdevs=tuple(_names(sysfs.entries(pci / "net"))),
        physfn=link_name(pci / "physfn"),
        virtfns=tuple(name for vf in ([] if virtfns is FAILED else virtfns) if (name := link_name(vf))),
        sriov_numvfs=sysfs.int_value(pci / "sriov_numvfs"),
    )


def _read_hca(sysfs: SysfsReader, ibdev_dir: Path, chars: list[CharDevice], before: Hca | None) -> Hca:
    port_dirs = sysfs.entries(ibdev_dir / "ports")
    if port_dirs is FAILED:
        ports = before.ports if before else ()
    else:
        known = {port.number: port for port in before.ports} if before else {}
        numbered = [d for d in port_dirs if d.name.isdigit()]
        ports = tuple(_read_port(sysfs, d, known.get(int(d.name))) for d in numbered)
    pci = _pci_function(ibdev_dir)
    function = _read_function(sysfs, pci) if pci else _Function()
    port_netdevs = tuple(name for port in ports for name in port.netdevs)
    return Hca(
        name=ibdev_dir.name,
        pci_address=function.address,
        vendor=function.vendor,
        device_id=function.device_id,
        driver=function.driver,
        numa_node=function.numa_node,
        netdevs=tuple(dict.fromkeys(function.netdevs + port_netdevs)),
        ports=ports,
        char_devices=tuple(chars),
        physfn=function.physfn,
        virtfns=function.virtfns,
        sriov_numvfs=function.sriov_numvfs,
        node_type=label(sysfs.value(ibdev_dir / "node_type")),
        node_guid=sysfs.value(ibdev_dir / "node_guid"),
        fw_ver=sysfs.value(ibdev_dir / "fw_ver"),
    )
