"""RDMA devices as a pod's sysfs shows them, and the RoCE v2 GID index perftest's ``-x`` should get.

A fixed ``-x 3`` is what the walkthrough used, but inside a container the GID table need not look like the
host's: the index is read from ``ports/<n>/gid_attrs/types/<i>`` (``RoCE v2``) and ``ndevs/<i>`` (the netdev,
``bond0`` with RoCE LAG). Reading ``types``/``ndevs`` of an unused entry fails with EINVAL on a real host, and
unused ``gids`` read as all zeros; a pod on an overlay network sees only zero GIDs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ack_rdma_check.errors import SetupError

ROCE_V2 = "RoCE v2"
_IPV4_MAPPED_PREFIX = "0000:0000:0000:0000:0000:ffff:"

# One `path:value` line per readable, non-empty file; unreadable GID attributes are silently left out.
_PROBE_SCRIPT = (
    'cd "$1" && exec grep -H . class/infiniband/*/node_type class/infiniband/*/ports/*/state'
    " class/infiniband/*/ports/*/link_layer class/infiniband/*/ports/*/gids/*"
    " class/infiniband/*/ports/*/gid_attrs/types/* class/infiniband/*/ports/*/gid_attrs/ndevs/*"
    " class/infiniband/*/device/net/*/address class/infiniband/*/device/vendor 2>/dev/null"
)
_LINE = re.compile(r"^class/infiniband/(?P<dev>[^/]+)/(?P<rest>[^:]+):(?P<value>.*)$")
_PORT_FILE = re.compile(
    r"^ports/(?P<port>\d+)/(?P<file>state|link_layer|gids/\d+|gid_attrs/(?:types|ndevs)/\d+)$"
)
_NETDEV_FILE = re.compile(r"^device/net/(?P<netdev>[^/]+)/address$")


def probe_argv(sys_root: str = "/sys") -> list[str]:
    """A command printing every file the selection needs as ``path:value``, paths relative to ``sys_root``."""
    return ["sh", "-c", _PROBE_SCRIPT, "sysfs-probe", sys_root]


@dataclass
class GidEntry:
    gid: str = ""
    type: str = ""
    ndev: str = ""

    @property
    def zero(self) -> bool:
        return not self.gid.replace(":", "").strip("0")

    @property
    def ipv4(self) -> str | None:
        """The IPv4 address an IPv4-mapped GID carries (``::ffff:a.b.c.d``)."""
        if not self.gid.startswith(_IPV4_MAPPED_PREFIX):
            return None
        digits = self.gid.removeprefix(_IPV4_MAPPED_PREFIX).replace(":", "")
        return ".".join(str(int(digits[i : i + 2], 16)) for i in range(0, 8, 2))


@dataclass
class SysfsPort:
    state: str = ""
    link_layer: str = ""
    gids: dict[int, GidEntry] = field(default_factory=dict)


@dataclass
class SysfsDevice:
    node_type: str = ""
    """``1: CA`` for HCAs (IB, RoCE), ``4: RNIC`` for iWARP."""
    ports: dict[int, SysfsPort] = field(default_factory=dict)
    netdevs: list[str] = field(default_factory=list)
    """Netdevs of the device's PCI function visible in the reader's network namespace."""
    vendor: str = ""
    """The PCI function's vendor, ``0x1ded`` for Alibaba eRDMA."""

    @property
    def iwarp(self) -> bool:
        return self.node_type.startswith("4:")

    def netdev_of(self, port_number: int) -> str | None:
        """The netdev bound to the port's GIDs, else one of the PCI function's (an eRDMA device's netdev is
        the virtio-net function's, so only the GID attribute names it)."""
        port = self.ports.get(port_number)
        bound = [entry.ndev for _, entry in sorted(port.gids.items()) if entry.ndev] if port else []
        return next(iter(bound + self.netdevs), None)


@dataclass(frozen=True)
class GidChoice:
    index: int
    gid: str
    netdev: str
    ipv4: str | None


def parse_probe(text: str) -> dict[str, SysfsDevice]:
    devices: dict[str, SysfsDevice] = {}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match is None:
            continue
        device = devices.setdefault(match["dev"], SysfsDevice())
        rest, value = match["rest"], match["value"].strip()
        if rest == "node_type":
            device.node_type = value
        elif rest == "device/vendor":
            device.vendor = value
        elif (netdev := _NETDEV_FILE.match(rest)) is not None:
            device.netdevs.append(netdev["netdev"])
        elif (port_file := _PORT_FILE.match(rest)) is not None:
            _store_port_file(
                device.ports.setdefault(int(port_file["port"]), SysfsPort()), port_file["file"], value
            )
    return devices


def _store_port_file(port: SysfsPort, file: str, value: str) -> None:
    if file == "state":
        port.state = value
    elif file == "link_layer":
        port.link_layer = value
    else:
        *_, attribute, index = file.split("/")
        entry = port.gids.setdefault(int(index), GidEntry())
        if attribute == "gids":
            entry.gid = value
        elif attribute == "types":
            entry.type = value
        else:
            entry.ndev = value


def select_roce_v2(port: SysfsPort, netdev: str | None, where: str, host_network: bool) -> GidChoice:
    """The RoCE v2 GID to run over: on ``netdev`` if given, IPv4-mapped before IPv6, lowest index first.

    Without ``netdev`` a bond (RoCE LAG) is preferred over its slaves, else the first netdev with a GID.
    """
    usable = {i: e for i, e in sorted(port.gids.items()) if e.type == ROCE_V2 and e.ndev and not e.zero}
    if not usable:
        raise SetupError(_no_roce_v2_reason(port, where, host_network))
    if netdev is None:
        netdevs = [entry.ndev for entry in usable.values()]
        netdev = next((name for name in netdevs if name.startswith("bond")), netdevs[0])
    on_netdev = {i: e for i, e in usable.items() if e.ndev == netdev}
    if not on_netdev:
        others = sorted({entry.ndev for entry in usable.values()})
        raise SetupError(f"{where}: no RoCE v2 GID on {netdev}; RoCE v2 GIDs exist on {', '.join(others)}")
    index, entry = min(on_netdev.items(), key=lambda item: (item[1].ipv4 is None, item[0]))
    return GidChoice(index=index, gid=entry.gid, netdev=netdev, ipv4=entry.ipv4)


def select_ipv4(port: SysfsPort, ipv4: str, netdev: str, where: str) -> GidChoice:
    """The RoCE v2 GID whose value is ``::ffff:<ipv4>``, the address ``netdev`` has in the pod."""
    for index, entry in sorted(port.gids.items()):
        if entry.type == ROCE_V2 and entry.ipv4 == ipv4:
            return GidChoice(index=index, gid=entry.gid, netdev=entry.ndev or netdev, ipv4=ipv4)
    mapped = sorted({entry.ipv4 for entry in port.gids.values() if entry.type == ROCE_V2 and entry.ipv4})
    found = f"the port's IPv4 GIDs carry {', '.join(mapped[:4])}" if mapped else "the port has no IPv4 GID"
    raise SetupError(
        f"{where}: no RoCE v2 GID is ::ffff:{ipv4}, the IPv4 address of {netdev}; {found}: pass --netdev "
        "with the RDMA device's own netdev, or check that the address on it is the one its GID carries"
    )


def _no_roce_v2_reason(port: SysfsPort, where: str, host_network: bool) -> str:
    if all(entry.zero for entry in port.gids.values()):
        if host_network:
            return (
                f"{where}: every GID of the RDMA port is zero; the RDMA netdev has no IP address on the node"
            )
        return (
            f"{where}: every GID the pod sees is zero, which means an overlay pod network (Flannel/Calico); "
            "RoCE needs the RDMA netdev's GIDs: run the test pods with host network (--rdma-cm --create, or "
            "testPodHostNetwork: true in the stack config) or attach the RDMA NIC by macvlan (Multus)"
        )
    kinds = sorted({entry.type or "unknown type" for entry in port.gids.values() if not entry.zero})
    return f"{where}: the RDMA port has no RoCE v2 GID bound to a netdev (found: {', '.join(kinds)})"
