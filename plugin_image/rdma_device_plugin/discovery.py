"""RDMA devices of a host, read from its sysfs and dev trees (both roots injectable).

One Hca per ``<sysfs>/class/infiniband/<ibdev>``: its PCI function (vendor, device id, driver, NUMA node,
netdevs, SR-IOV links), its ports, the netdev behind each port's GID 0 (how ``mlx5_bond_0`` maps to
``bond0``), and its character devices found through ``class/infiniband_verbs/*/ibdev`` and
``class/infiniband_mad/*/ibdev``. A host without RDMA support yields [].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rdma_device_plugin.sysfs import entries, label, link_name, natural_key, read_attr, read_hex_id, read_int

CharKind = Literal["uverbs", "umad", "issm"]
DEV_INFINIBAND = "/dev/infiniband"
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


def discover(sysfs_root: Path, dev_root: Path) -> list[Hca]:
    """Every RDMA device under sysfs_root, in natural name order."""
    chars = _char_devices(sysfs_root, dev_root)
    hcas = []
    for ibdev_dir in entries(sysfs_root / "class" / "infiniband"):
        if ibdev_dir.is_dir():
            hcas.append(_read_hca(ibdev_dir, chars.get(ibdev_dir.name, [])))
    return hcas


def rdma_cm_present(dev_root: Path) -> bool:
    """Whether the host has ``/dev/infiniband/rdma_cm`` (rdma_ucm loaded), looked up under dev_root."""
    return (dev_root / "infiniband" / "rdma_cm").exists()


def _char_devices(sysfs_root: Path, dev_root: Path) -> dict[str, list[CharDevice]]:
    by_ibdev: dict[str, list[CharDevice]] = {}
    for kind, cls in _CLASS_OF.items():
        for node in entries(sysfs_root / "class" / cls, kind):
            ibdev, dev = read_attr(node / "ibdev"), read_attr(node / "dev")
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


def _read_port(port_dir: Path) -> Port | None:
    if not port_dir.name.isdigit():
        return None
    ndev = read_attr(port_dir / "gid_attrs" / "ndevs" / "0")
    return Port(
        number=int(port_dir.name),
        state=label(read_attr(port_dir / "state")) or "UNKNOWN",
        phys_state=label(read_attr(port_dir / "phys_state")) or "UNKNOWN",
        link_layer=read_attr(port_dir / "link_layer") or "UNKNOWN",
        rate=read_attr(port_dir / "rate") or "",
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


def _read_function(pci: Path) -> _Function:
    numa = read_int(pci / "numa_node")
    return _Function(
        address=pci.name,
        vendor=read_hex_id(pci / "vendor"),
        device_id=read_hex_id(pci / "device"),
        driver=link_name(pci / "driver"),
        numa_node=numa if numa is not None and numa >= 0 else None,
        netdevs=tuple(d.name for d in entries(pci / "net")),
        physfn=link_name(pci / "physfn"),
        virtfns=tuple(name for vf in entries(pci, "virtfn") if (name := link_name(vf))),
        sriov_numvfs=read_int(pci / "sriov_numvfs"),
    )


def _read_hca(ibdev_dir: Path, chars: list[CharDevice]) -> Hca:
    ports = tuple(p for p in (_read_port(d) for d in entries(ibdev_dir / "ports")) if p is not None)
    pci = _pci_function(ibdev_dir)
    function = _read_function(pci) if pci else _Function()
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
        node_type=label(read_attr(ibdev_dir / "node_type")),
        node_guid=read_attr(ibdev_dir / "node_guid"),
        fw_ver=read_attr(ibdev_dir / "fw_ver"),
    )
