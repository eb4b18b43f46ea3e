"""Sysfs trees of RDMA devices as a pod reads them, laid out like a real kernel's.

``class/infiniband/<ibdev>`` is a symlink into the PCI function's ``infiniband/<ibdev>``; the device's
``device`` link points back at the PCI function, whose ``net/<ifname>`` lists the netdevs visible in the
reader's network namespace (none for a pod on the pod network). Each port has a 256-entry GID table:
unused ``gids/<i>`` read as all zeros; reading ``gid_attrs/types/<i>`` or ``ndevs/<i>`` of an unused entry
fails with EINVAL on a real host, which a regular file cannot do, so those files are empty here (both give
no ``grep .`` output).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

GID_TABLE_SIZE = 256
ZERO_GID = "0000:0000:0000:0000:0000:0000:0000:0000"
ROCE_V1 = "IB/RoCE v1"
ROCE_V2 = "RoCE v2"


@dataclass(frozen=True)
class Gid:
    index: int
    gid: str
    type: str
    ndev: str


@dataclass(frozen=True)
class PortSpec:
    state: str = "4: ACTIVE"
    link_layer: str = "Ethernet"
    rate: str = "25 Gb/sec (1X EDR)"
    gids: Sequence[Gid] = ()
    gid_attrs: bool = True
    """iWARP devices have no RoCE GID attributes."""


@dataclass(frozen=True)
class DeviceSpec:
    ibdev: str
    pci: str
    node_type: str = "1: CA"
    node_guid: str = "248a:0703:00b4:8d2c"
    vendor: str = "0x15b3"
    device: str = "0x1015"
    driver: str = "mlx5_core"
    netdevs: Mapping[str, str] = field(default_factory=dict)
    """Netdev name -> MAC, as the reader's network namespace shows them under the PCI function."""
    ports: Mapping[int, PortSpec] = field(default_factory=dict)


def ipv4_mapped_gid(ipv4: str) -> str:
    octets = [int(part) for part in ipv4.split(".")]
    return f"0000:0000:0000:0000:0000:ffff:{octets[0]:02x}{octets[1]:02x}:{octets[2]:02x}{octets[3]:02x}"


def roce_gids(ipv4: str, link_local: str, ndev: str, first_index: int = 0) -> list[Gid]:
    """The four GIDs mlx5 installs for one IPv4 netdev: link-local and IPv4-mapped, each as RoCE v1 and v2."""
    entries = [(link_local, ROCE_V1), (link_local, ROCE_V2), (ipv4_mapped_gid(ipv4), ROCE_V1)]
    entries.append((ipv4_mapped_gid(ipv4), ROCE_V2))
    return [Gid(first_index + offset, gid, kind, ndev) for offset, (gid, kind) in enumerate(entries)]


def build(sys_root: Path, devices: Sequence[DeviceSpec]) -> Path:
    """Writes the devices under ``sys_root`` (the stand-in for ``/sys``) and returns ``sys_root``."""
    for spec in devices:
        _device(sys_root, spec)
    return sys_root


def _device(sys_root: Path, spec: DeviceSpec) -> None:
    bridge = Path("devices/pci0000:00/0000:00:03.0")
    function = sys_root / bridge / spec.pci
    _write(function / "vendor", spec.vendor)
    _write(function / "device", spec.device)
    driver_dir = sys_root / "bus/pci/drivers" / spec.driver
    driver_dir.mkdir(parents=True, exist_ok=True)
    (function / "driver").symlink_to(Path("../../../../bus/pci/drivers") / spec.driver)
    for netdev, mac in spec.netdevs.items():
        _write(function / "net" / netdev / "address", mac)
    ibdev = function / "infiniband" / spec.ibdev
    _write(ibdev / "node_type", spec.node_type)
    _write(ibdev / "node_guid", spec.node_guid)
    (ibdev / "device").symlink_to(Path("../../..") / spec.pci)
    for number, port in spec.ports.items():
        _port(ibdev / "ports" / str(number), port)
    link = sys_root / "class/infiniband" / spec.ibdev
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(Path("../..") / bridge / spec.pci / "infiniband" / spec.ibdev)


def _port(port_dir: Path, spec: PortSpec) -> None:
    _write(port_dir / "state", spec.state)
    _write(port_dir / "phys_state", "5: LinkUp" if spec.state == "4: ACTIVE" else "3: Disabled")
    _write(port_dir / "link_layer", spec.link_layer)
    _write(port_dir / "rate", spec.rate)
    _write(port_dir / "lid", "0x0")
    by_index = {gid.index: gid for gid in spec.gids}
    for index in range(GID_TABLE_SIZE):
        entry = by_index.get(index)
        _write(port_dir / "gids" / str(index), entry.gid if entry else ZERO_GID)
        if spec.gid_attrs:
            _write(port_dir / "gid_attrs/types" / str(index), entry.type if entry else None)
            _write(port_dir / "gid_attrs/ndevs" / str(index), entry.ndev if entry else None)


def _write(path: Path, value: str | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("" if value is None else f"{value}\n", encoding="ascii")
