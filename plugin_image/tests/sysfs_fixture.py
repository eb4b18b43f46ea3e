"""Fixture sysfs and /dev trees for RDMA hosts, laid out the way the kernel lays them out.

Everything a real host shows for an RDMA device is written with the kernel's file names, value formats (a
trailing newline, ``4: ACTIVE``, ``0x15b3``, ``231:192``) and relative symlinks:

    sys/class/infiniband/<ibdev> -> ../../devices/pci0000:00/0000:00:02.0/<bdf>/infiniband/<ibdev>
    sys/devices/.../<bdf>/{vendor,device,numa_node,modalias,driver->bus/pci/drivers/<drv>,net/<if>,...}
    sys/class/infiniband_verbs/uverbs<N> -> ../../devices/.../<bdf>/infiniband_verbs/uverbs<N>
    sys/class/infiniband_mad/{umad,issm}<N>, sys/class/misc/rdma_cm, sys/class/net/<if>
    dev/infiniband/{uverbs<N>,umad<N>,issm<N>,rdma_cm}

Device nodes under dev/ are plain files (tests cannot mknod outside a private namespace); ``char_nodes()``
lists each node with its major:minor so a test inside a mount namespace can create the real ones.

SHAPES names the hosts the tests use; FixtureTree also changes a tree the way hot-plug and link flaps do.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

UVERBS_MAJOR = 231
UVERBS_MINOR_BASE = 192
ISSM_MINOR_BASE = 64
ZERO_GID = "0000:0000:0000:0000:0000:0000:0000:0000"
# The names ib_core's sysfs prints in gid_attrs/types/<i> (cache.c, gid_type_str).
GID_IB_ROCE_V1 = "IB/RoCE v1"
GID_ROCE_V2 = "RoCE v2"


@dataclass(frozen=True)
class PortSpec:
    number: int = 1
    state: str = "4: ACTIVE"
    phys_state: str = "5: LinkUp"
    link_layer: str = "Ethernet"
    rate: str = "25 Gb/sec (1X EDR)"
    lid: str = "0x0"
    netdev: str | None = None
    """The netdev behind GID 0 (RoCE and iWARP); None on InfiniBand, where the kernel has none."""
    gids: tuple[tuple[str, str], ...] | None = None
    """The port's whole GID table as (gid, type) pairs, every entry bound to `netdev`; None writes the
    mlx5-style default (GID 0 as RoCE v1, and on Ethernet the same GID again as RoCE v2)."""
    gid_table_len: int = 0
    """How many ``gids/<i>`` files the port has (the driver's gid_tbl_len); unused entries read as zeros."""


@dataclass(frozen=True)
class PciSpec:
    address: str
    bridge: str | None = "0000:00:02.0"
    """The root port the function hangs below; None puts it straight on the root bus, as in VMs."""
    vendor: str = "0x15b3"
    device: str = "0x1015"
    subsystem_vendor: str = "0x15b3"
    subsystem_device: str = "0x0001"
    pci_class: str = "0x020000"
    driver: str = "mlx5_core"
    numa_node: int = 0
    netdevs: tuple[str, ...] = ()
    physfn: str | None = None


@dataclass(frozen=True)
class HcaSpec:
    name: str
    pci: PciSpec
    ports: tuple[PortSpec, ...] = (PortSpec(),)
    node_type: str = "1: CA"
    node_guid: str = "248a:0703:00b4:8d2c"
    fw_ver: str = "14.32.1010"
    hca_type: str | None = "MT4117"
    board_id: str | None = "MT_2420110034"
    """hca_type and board_id are driver attributes: mlx5 has them, erdma and irdma do not."""
    umad: bool = True
    issm: bool = True
    node_desc: str | None = None
    """None writes ``host <name>``."""


@dataclass
class _Created:
    """What add_hca made, so remove_hca can undo exactly that."""

    pci_dir: Path
    char_names: list[str] = field(default_factory=list)


class FixtureTree:
    """A host's sysfs and dev roots under one directory (``<root>/sys``, ``<root>/dev``)."""

    def __init__(self, root: Path, *, rdma_stack: bool = True) -> None:
        self.root = root
        self.sysfs_root = root / "sys"
        self.dev_root = root / "dev"
        self._hcas: dict[str, _Created] = {}
        self._next_uverbs = 0
        self._next_umad = 0
        for sub in ("devices/system/node", "class/net", "bus/pci/devices", "bus/pci/drivers", "class/misc"):
            (self.sysfs_root / sub).mkdir(parents=True, exist_ok=True)
        self.dev_root.mkdir(parents=True, exist_ok=True)
        if rdma_stack:
            self._load_rdma_stack()

    # -- low-level writers ---------------------------------------------------------------------------

    @staticmethod
    def _write(path: Path, value: object) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # sysfs holds bytes: a name read with os.fsdecode is written back as the same bytes.
        path.write_bytes(os.fsencode(f"{value}\n"))

    @staticmethod
    def _link(link: Path, target: Path) -> None:
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(target, link.parent))

    def _dev_node(self, name: str) -> None:
        node = self.dev_root / "infiniband" / name
        node.parent.mkdir(parents=True, exist_ok=True)
        node.touch()

    def _load_rdma_stack(self) -> None:
        """What ib_uverbs, ib_umad and rdma_ucm show once loaded, before any device exists."""
        (self.sysfs_root / "class/infiniband").mkdir(parents=True, exist_ok=True)
        self._write(self.sysfs_root / "class/infiniband_verbs/abi_version", 6)
        self._write(self.sysfs_root / "class/infiniband_mad/abi_version", 5)
        rdma_cm = self.sysfs_root / "devices/virtual/misc/rdma_cm"
        self._write(rdma_cm / "dev", "10:58")
        self._link(self.sysfs_root / "class/misc/rdma_cm", rdma_cm)
        self._dev_node("rdma_cm")

    # -- PCI functions and netdevs -------------------------------------------------------------------

    def pci_dir(self, address: str, bridge: str | None) -> Path:
        anchor = bridge or address
        domain, bus = anchor.split(":")[:2]
        root = self.sysfs_root / "devices" / f"pci{domain}:{bus}"
        return root / bridge / address if bridge else root / address

    def add_pci_function(self, spec: PciSpec) -> Path:
        pci = self.pci_dir(spec.address, spec.bridge)
        pci.mkdir(parents=True)
        for attr, value in (
            ("vendor", spec.vendor),
            ("device", spec.device),
            ("subsystem_vendor", spec.subsystem_vendor),
            ("subsystem_device", spec.subsystem_device),
            ("class", spec.pci_class),
            ("numa_node", spec.numa_node),
            ("modalias", _modalias(spec)),
        ):
            self._write(pci / attr, value)
        drivers = self.sysfs_root / "bus/pci/drivers" / spec.driver
        drivers.mkdir(parents=True, exist_ok=True)
        self._link(pci / "driver", drivers)
        self._link(drivers / spec.address, pci)
        self._link(pci / "subsystem", self.sysfs_root / "bus/pci")
        self._link(self.sysfs_root / "bus/pci/devices" / spec.address, pci)
        for ifname in spec.netdevs:
            self.add_netdev(ifname, pci)
        if spec.physfn is not None:
            self._add_vf_links(pf_address=spec.physfn, vf=pci)
        return pci

    def _add_vf_links(self, pf_address: str, vf: Path) -> None:
        pf = (self.sysfs_root / "bus/pci/devices" / pf_address).resolve()
        self._link(vf / "physfn", pf)
        index = len(list(pf.glob("virtfn*")))
        self._link(pf / f"virtfn{index}", vf)
        self._write(pf / "sriov_numvfs", index + 1)

    def enable_sriov(self, pf_address: str, total_vfs: int) -> None:
        pf = (self.sysfs_root / "bus/pci/devices" / pf_address).resolve()
        self._write(pf / "sriov_totalvfs", total_vfs)
        self._write(pf / "sriov_numvfs", 0)

    def add_netdev(
        self, ifname: str, parent: Path, *, net_type: int = 1, operstate: str = "up", mac: str | None = None
    ) -> Path:
        """net/<ifname> below a device; type 1 is ARPHRD_ETHER, 32 ARPHRD_INFINIBAND."""
        net = parent / "net" / ifname
        self._write(net / "type", net_type)
        self._write(net / "operstate", operstate)
        default_mac = "02:00:00:00:00:01" if net_type == 1 else "00:00:10:29:fe:80:00:00"
        self._write(net / "address", mac or default_mac)
        self._link(net / "device", parent)
        self._link(self.sysfs_root / "class/net" / ifname, net)
        return net

    def add_bond(self, name: str, slaves: tuple[str, ...]) -> None:
        bond = self.sysfs_root / "devices/virtual/net" / name
        self._write(bond / "type", 1)
        self._write(bond / "operstate", "up")
        self._write(bond / "bonding/slaves", " ".join(slaves))
        self._write(bond / "bonding/mode", "802.3ad 4")
        self._link(self.sysfs_root / "class/net" / name, bond)
        for slave in slaves:
            self._link((self.sysfs_root / "class/net" / slave).resolve() / "master", bond)

    # -- RDMA devices --------------------------------------------------------------------------------

    def add_hca(self, spec: HcaSpec) -> None:
        """The ibdev below an existing PCI function (add_pci_function first), its ports and char devices."""
        pci = (self.sysfs_root / "bus/pci/devices" / spec.pci.address).resolve()
        ibdev = pci / "infiniband" / spec.name
        for attr, value in (
            ("node_type", spec.node_type),
            ("node_guid", spec.node_guid),
            ("sys_image_guid", spec.node_guid),
            ("fw_ver", spec.fw_ver),
            ("hca_type", spec.hca_type),
            ("board_id", spec.board_id),
            ("node_desc", spec.node_desc or f"host {spec.name}"),
        ):
            if value is not None:
                self._write(ibdev / attr, value)
        self._link(ibdev / "device", pci)
        self._link(self.sysfs_root / "class/infiniband" / spec.name, ibdev)
        for port in spec.ports:
            self._write_port(ibdev / "ports" / str(port.number), port, spec.node_guid)
        created = _Created(pci_dir=pci)
        created.char_names.append(self._add_uverbs(spec.name, pci))
        if spec.umad:
            for port in spec.ports:
                created.char_names.extend(self._add_mad(spec.name, pci, port.number, issm=spec.issm))
        self._hcas[spec.name] = created

    def _write_port(self, port_dir: Path, port: PortSpec, guid: str) -> None:
        gid = "fe80:0000:0000:0000:" + guid
        for attr, value in (
            ("state", port.state),
            ("phys_state", port.phys_state),
            ("link_layer", port.link_layer),
            ("rate", port.rate),
            ("lid", port.lid),
            ("sm_lid", "0x0" if port.link_layer == "Ethernet" else "0x1"),
            ("lid_mask_count", 0),
            ("cap_mask", "0x04010000" if port.link_layer == "Ethernet" else "0xa651e848"),
        ):
            self._write(port_dir / attr, value)
        if port.gids is not None:
            self._write_gid_table(port_dir, port)
            return
        self._write(port_dir / "gids/0", gid)
        self._write(port_dir / "gid_attrs/types/0", "IB/RoCE v1")
        if port.netdev is not None:
            self._write(port_dir / "gid_attrs/ndevs/0", port.netdev)
            if port.link_layer == "Ethernet":
                self._write(port_dir / "gids/1", gid)
                self._write(port_dir / "gid_attrs/types/1", "RoCE v2")
                self._write(port_dir / "gid_attrs/ndevs/1", port.netdev)

    def _write_gid_table(self, port_dir: Path, port: PortSpec) -> None:
        """Used entries get their type and netdev; on a real host reading ``gid_attrs/*/<i>`` of an unused
        entry fails (EINVAL), which a regular file cannot do, so those files are left out."""
        entries = port.gids or ()
        for index in range(max(port.gid_table_len, len(entries))):
            if index >= len(entries):
                self._write(port_dir / "gids" / str(index), ZERO_GID)
                continue
            value, gid_type = entries[index]
            self._write(port_dir / "gids" / str(index), value)
            self._write(port_dir / "gid_attrs/types" / str(index), gid_type)
            if port.netdev is not None:
                self._write(port_dir / "gid_attrs/ndevs" / str(index), port.netdev)

    def _char_device(self, cls: str, name: str, pci: Path, attrs: dict[str, object]) -> None:
        node = pci / cls / name
        for attr, value in attrs.items():
            self._write(node / attr, value)
        self._link(node / "device", pci)
        self._link(node / "subsystem", self.sysfs_root / "class" / cls)
        self._link(self.sysfs_root / "class" / cls / name, node)
        self._dev_node(name)

    def _add_uverbs(self, ibdev: str, pci: Path) -> str:
        index = self._next_uverbs
        self._next_uverbs += 1
        name = f"uverbs{index}"
        dev = f"{UVERBS_MAJOR}:{UVERBS_MINOR_BASE + index}"
        self._char_device("infiniband_verbs", name, pci, {"ibdev": ibdev, "dev": dev, "abi_version": 1})
        return name

    def _add_mad(self, ibdev: str, pci: Path, port: int, *, issm: bool) -> list[str]:
        index = self._next_umad
        self._next_umad += 1
        names = [f"umad{index}"]
        attrs: dict[str, object] = {"ibdev": ibdev, "port": port, "dev": f"{UVERBS_MAJOR}:{index}"}
        self._char_device("infiniband_mad", names[0], pci, attrs)
        if issm:
            names.append(f"issm{index}")
            attrs["dev"] = f"{UVERBS_MAJOR}:{ISSM_MINOR_BASE + index}"
            self._char_device("infiniband_mad", names[1], pci, attrs)
        return names

    # -- changes over time ---------------------------------------------------------------------------

    def set_port_state(
        self, ibdev: str, port: int = 1, state: str = "1: DOWN", phys_state: str = "3: Disabled"
    ) -> None:
        port_dir = self.sysfs_root / "class/infiniband" / ibdev / "ports" / str(port)
        self._write(port_dir / "state", state)
        self._write(port_dir / "phys_state", phys_state)

    def remove_hca(self, ibdev: str) -> None:
        """What unbinding the RDMA driver does: the ibdev, its char devices and their /dev nodes go away."""
        created = self._hcas.pop(ibdev)
        (self.sysfs_root / "class/infiniband" / ibdev).unlink()
        shutil.rmtree(created.pci_dir / "infiniband" / ibdev)
        for name in created.char_names:
            cls = "infiniband_verbs" if name.startswith("uverbs") else "infiniband_mad"
            (self.sysfs_root / "class" / cls / name).unlink()
            shutil.rmtree(created.pci_dir / cls / name)
            self.remove_dev_node(name)

    def remove_dev_node(self, name: str) -> None:
        (self.dev_root / "infiniband" / name).unlink(missing_ok=True)

    def char_nodes(self) -> list[tuple[str, int, int]]:
        """(name, major, minor) of every RDMA char device the sysfs tree announces."""
        nodes = []
        for cls in ("infiniband_verbs", "infiniband_mad", "misc"):
            directory = self.sysfs_root / "class" / cls
            for entry in sorted(directory.iterdir()) if directory.is_dir() else []:
                dev_file = entry / "dev"
                if entry.is_symlink() and dev_file.is_file():
                    major, minor = dev_file.read_text().strip().split(":")
                    nodes.append((entry.name, int(major), int(minor)))
        return nodes


def _modalias(spec: PciSpec) -> str:
    def part(prefix: str, value: str) -> str:
        return f"{prefix}{int(value, 16):08X}"

    base, sub, prog = spec.pci_class[2:4], spec.pci_class[4:6], spec.pci_class[6:8]
    return (
        "pci:"
        + part("v", spec.vendor)
        + part("d", spec.device)
        + part("sv", spec.subsystem_vendor)
        + part("sd", spec.subsystem_device)
        + f"bc{base.upper()}sc{sub.upper()}i{prog.upper()}"
    )


# -- the hosts the tests use ---------------------------------------------------------------------------


def scc_roce_lag(root: Path) -> FixtureTree:
    """Alibaba SCC: dual-port ConnectX-4 Lx (two PCI functions) in RoCE LAG: ibdev mlx5_bond_0 on bond0."""
    tree = FixtureTree(root)
    pf0 = PciSpec("0000:3b:00.0", bridge="0000:3a:00.0", device="0x1015", netdevs=("eth0",))
    tree.add_pci_function(pf0)
    tree.add_pci_function(PciSpec("0000:3b:00.1", bridge="0000:3a:00.0", device="0x1015", netdevs=("eth1",)))
    tree.add_bond("bond0", ("eth0", "eth1"))
    tree.add_hca(HcaSpec("mlx5_bond_0", pf0, ports=(PortSpec(netdev="bond0"),), issm=False))
    return tree


def ib_two_numa(root: Path) -> FixtureTree:
    """Two ConnectX-6 InfiniBand HCAs, one per NUMA node, with IPoIB netdevs and umad + issm nodes."""
    tree = FixtureTree(root)
    for index, (address, bridge) in enumerate(
        (("0000:17:00.0", "0000:16:02.0"), ("0000:b1:00.0", "0000:b0:02.0"))
    ):
        pci = PciSpec(
            address,
            bridge=bridge,
            device="0x101b",
            subsystem_device="0x0007",
            pci_class="0x020700",
            numa_node=index,
        )
        tree.add_pci_function(pci)
        tree.add_netdev(f"ib{index}", tree.pci_dir(address, bridge), net_type=32)
        port = PortSpec(link_layer="InfiniBand", rate="200 Gb/sec (4X HDR)", lid=f"0x{index + 1:x}")
        tree.add_hca(
            HcaSpec(
                f"mlx5_{index}",
                pci,
                ports=(port,),
                node_guid=f"b83f:d203:00a1:{index:04x}",
                fw_ver="20.31.1014",
                hca_type="MT4123",
                board_id="MT_0000000223",
            )
        )
    return tree


def sriov_cx5(root: Path) -> FixtureTree:
    """A ConnectX-5 PF (ens2f0) with 4 VFs bound to mlx5_core, each VF its own ibdev and uverbs node."""
    tree = FixtureTree(root)
    pf = PciSpec("0000:3b:00.0", device="0x1017", netdevs=("ens2f0",))
    tree.add_pci_function(pf)
    tree.enable_sriov(pf.address, total_vfs=8)
    tree.add_hca(HcaSpec("mlx5_0", pf, ports=(PortSpec(netdev="ens2f0", rate="100 Gb/sec (4X EDR)"),)))
    for vf_index in range(4):
        ifname = f"ens2f0v{vf_index}"
        vf = PciSpec(f"0000:3b:00.{vf_index + 2}", device="0x1018", netdevs=(ifname,), physfn=pf.address)
        tree.add_pci_function(vf)
        port = PortSpec(netdev=ifname, rate="100 Gb/sec (4X EDR)")
        tree.add_hca(
            HcaSpec(f"mlx5_{vf_index + 1}", vf, ports=(port,), node_guid=f"0000:0000:0000:{vf_index:04x}")
        )
    return tree


def _vm_function(address: str, vendor_device: tuple[str, str], driver: str, numa_node: int) -> PciSpec:
    """A PCI function on a VM's root bus whose subsystem ids are its own (virtio-net: 1af4:1000)."""
    vendor, device = vendor_device
    return PciSpec(
        address,
        bridge=None,
        vendor=vendor,
        device=device,
        subsystem_vendor=vendor,
        subsystem_device="0x0001" if vendor == "0x1af4" else device,
        driver=driver,
        numa_node=numa_node,
    )


def _virtio_eth0(tree: FixtureTree) -> None:
    pci = tree.add_pci_function(_vm_function("0000:00:05.0", ("0x1af4", "0x1000"), "virtio-pci", -1))
    tree.add_netdev("eth0", pci / "virtio2")


# -- Alibaba eRDMA ------------------------------------------------------------------------------------
#
# What the kernel shows for an eRDMA device, and where each fact comes from (torvalds/linux:
# drivers/infiniband/hw/erdma, drivers/infiniband/core; AliyunContainerService/alibabacloud-erdma-controller:
# internal/drivers/*.go, internal/deviceplugin/deviceplugin.go):
# - The ERI is a PCI function of its own (1ded:107f, erdma_main.c erdma_pci_tbl), separate from the ENI's
#   virtio-net function: its PCI directory has no net/. erdma pairs with the netdev whose permanent MAC equals
#   the MAC in its BAR (erdma_enum_and_get_netdev, ib_device_set_netdev), so only the GID attributes name it.
# - ibdev names erdma_0, erdma_1 (ib_register_device(ibdev, "erdma_%d")); one port (phys_port_cnt = 1);
#   node_guid is the EUI-64 of the netdev's MAC (addrconf_addr_eui48 in erdma_device_register: first byte
#   ^ 0x02, ff:fe in the middle), which the controller inverts to find the device (drivers/utils_linux.go,
#   GetERdmaFromLink: "erdma guid first byte is ^= 0x2").
# - No get_dev_fw_str and no hca_type/board_id attributes in erdma_device_ops, so sysfs fw_ver is empty.
# - Driver mode `default` (the controller's drivers/default.go: `modprobe erdma compat_mode=N`, capabilities
#   VERBS | RDMA_CM) is the iWARP protocol: node_type RDMA_NODE_RNIC (`4: RNIC`), core_cap_flags
#   RDMA_CORE_PORT_IWARP (erdma_get_port_immutable), gid_tbl_len 1 (erdma_query_port), GID 0 = the MAC in
#   the first six bytes and zeros after (erdma_query_gid), bound to the netdev by ib_core for iWARP ports
#   (core/cache.c config_non_roce_gid_cache) with type IB (printed `IB/RoCE v1`); no IB MAD capability, so
#   ib_umad creates no umad/issm.
# - Driver mode `compat` (drivers/compat.go: `modprobe erdma compat_mode=Y`, capabilities VERBS | OOB, i.e.
#   out-of-band QP setup, no RDMA CM) presents the RoCEv2 face the upstream driver grew in 6.14 ("RDMA/erdma:
#   Probe the erdma RoCEv2 device"): node_type RDMA_NODE_IB_CA (`1: CA`), link layer Ethernet
#   (erdma_get_link_layer), core_cap_flags RDMA_CORE_PORT_IBA_ROCE_UDP_ENCAP (RoCE v2 only, with IB MAD).
#   Its GID table is ib_core's RoCE table (core/roce_gid_mgmt.c): index 0 the default GID fe80::<EUI-64 of
#   the MAC>, then one RoCE v2 GID per address of the netdev in the order they were added, an IPv4 address as
#   ::ffff:a.b.c.d, so the index of the ERI's IPv4 GID differs per device. That compat_mode=Y of Alibaba's
#   out-of-tree driver matches the upstream RoCEv2 probe is our reading, not a documented fact; whether it
#   registers a MAD agent (umad) is unknown, hence both shapes. issm: only ports with SMI get one
#   (core/user_mad.c ib_umad_init_port, rdma_cap_ib_smi), and RoCE has none.
# - rdma_cm: one /dev/infiniband/rdma_cm per host; the controller's own plugin hands out uverbsN plus
#   rdma_cm (GetERdmaDevPathsFromRdmaLink) in both modes.
# - NUMA: the controller reads device/numa_node (GetERDMANumaNode); a VM's ERI shows -1, hosts with two eRDMA
#   NICs (the L20N bare-metal types) one per node.

ERDMA_GID_TABLE_LEN = 16
"""gid_tbl_len of a RoCEv2-mode erdma port comes from the device (attrs.max_gid); 16 stands for it here."""


@dataclass(frozen=True)
class Eri:
    """One Elastic RDMA Interface: its ENI's netdev and addresses, its erdma PCI function and NUMA node."""

    netdev: str
    mac: str
    ipv4: str
    virtio_address: str
    erdma_address: str
    numa_node: int = -1
    ipv6: tuple[str, ...] = ()
    """Global IPv6 addresses added to the netdev before its IPv4 address (each takes a GID index first)."""


def eui64_guid(mac: str) -> str:
    """addrconf_addr_eui48: the MAC with its first byte ^ 0x02 and ff:fe in the middle, as sysfs prints it."""
    octets = [int(part, 16) for part in mac.split(":")]
    eui = [octets[0] ^ 0x02, *octets[1:3], 0xFF, 0xFE, *octets[3:]]
    return ":".join(f"{eui[i]:02x}{eui[i + 1]:02x}" for i in range(0, 8, 2))


def mac_gid(mac: str) -> str:
    """erdma_query_gid in iWARP mode: the MAC in the first six bytes, zeros after."""
    raw = [int(part, 16) for part in mac.split(":")] + [0] * 10
    return ":".join(f"{raw[i]:02x}{raw[i + 1]:02x}" for i in range(0, 16, 2))


def ipv4_mapped_gid(ipv4: str) -> str:
    """The GID ib_core installs for an IPv4 address (::ffff:a.b.c.d), as sysfs prints it (%pI6)."""
    octets = [int(part) for part in ipv4.split(".")]
    return f"0000:0000:0000:0000:0000:ffff:{octets[0]:02x}{octets[1]:02x}:{octets[2]:02x}{octets[3]:02x}"


ERIS = (
    Eri("eth0", "00:16:3e:0a:1b:2c", "192.168.5.30", "0000:00:05.0", "0000:00:06.0"),
    Eri(
        "eth1",
        "00:16:3e:0a:4d:5e",
        "192.168.6.30",
        "0000:00:07.0",
        "0000:00:08.0",
        ipv6=("2408:4005:0300:6a00:0000:0000:0000:0011",),
    ),
)


def _add_eri(tree: FixtureTree, index: int, eri: Eri, *, compat: bool, umad: bool) -> None:
    virtio = _vm_function(eri.virtio_address, ("0x1af4", "0x1000"), "virtio-pci", eri.numa_node)
    tree.add_netdev(eri.netdev, tree.add_pci_function(virtio) / f"virtio{2 + 2 * index}", mac=eri.mac)
    pci = _vm_function(eri.erdma_address, ("0x1ded", "0x107f"), "erdma", eri.numa_node)
    tree.add_pci_function(pci)
    guid = eui64_guid(eri.mac)
    if compat:
        addresses = [*eri.ipv6, ipv4_mapped_gid(eri.ipv4)]
        gids = tuple((gid, GID_ROCE_V2) for gid in ["fe80:0000:0000:0000:" + guid, *addresses])
        table_len = ERDMA_GID_TABLE_LEN
    else:
        gids, table_len = ((mac_gid(eri.mac), GID_IB_ROCE_V1),), 1
    port = PortSpec(rate="100 Gb/sec (4X EDR)", netdev=eri.netdev, gids=gids, gid_table_len=table_len)
    spec = HcaSpec(
        f"erdma_{index}",
        pci,
        ports=(port,),
        node_type="1: CA" if compat else "4: RNIC",
        node_guid=guid,
        fw_ver="",
        hca_type=None,
        board_id=None,
        umad=compat and umad,
        issm=False,
        node_desc="Elastic RDMA Adapter stack",
    )
    tree.add_hca(spec)


def erdma_host(root: Path, eris: Sequence[Eri], *, compat: bool, umad: bool = False) -> FixtureTree:
    """A host whose ERIs are `eris`, erdma_0 first, all in one driver mode."""
    tree = FixtureTree(root)
    for index, eri in enumerate(eris):
        _add_eri(tree, index, eri, compat=compat, umad=umad)
    return tree


def _one_per_numa_node(eris: Sequence[Eri]) -> list[Eri]:
    return [dataclasses.replace(eri, numa_node=index) for index, eri in enumerate(eris)]


def erdma(root: Path) -> FixtureTree:
    """A g8i-class VM with one ERI in driver mode `default` (iWARP): erdma_0 on the primary ENI eth0."""
    return erdma_host(root, ERIS[:1], compat=False)


def erdma_two(root: Path) -> FixtureTree:
    """Two ERIs in mode `default`, one per NUMA node: erdma_0 on eth0 (node 0), erdma_1 on eth1 (node 1)."""
    return erdma_host(root, _one_per_numa_node(ERIS), compat=False)


def erdma_compat(root: Path) -> FixtureTree:
    """One ERI in driver mode `compat` (RoCE v2 GIDs, IPv4 GID at index 1), no umad."""
    return erdma_host(root, ERIS[:1], compat=True)


def erdma_compat_umad(root: Path) -> FixtureTree:
    """One ERI in mode `compat` whose driver registers a MAD agent: umad0 (no issm: RoCE has no SMI)."""
    return erdma_host(root, ERIS[:1], compat=True, umad=True)


def erdma_compat_two(root: Path) -> FixtureTree:
    """Two ERIs in mode `compat`, one per NUMA node; eth1 also has a global IPv6 address, added first, so
    erdma_1's IPv4 GID sits at index 2 where erdma_0's is at 1."""
    return erdma_host(root, _one_per_numa_node(ERIS), compat=True)


def irdma(root: Path) -> FixtureTree:
    """Intel E810 in iWARP mode: irdma0 on the ice PCI function, node type RNIC, no umad or issm, hca_type
    and board_id absent; like erdma in mode default its port has one GID, the netdev's MAC
    (drivers/infiniband/hw/irdma/verbs.c irdma_query_gid), and its GUID is the EUI-64 of that MAC."""
    tree = FixtureTree(root)
    mac = "b4:96:91:7a:1c:20"
    pci = PciSpec(
        "0000:51:00.0",
        bridge="0000:50:01.0",
        vendor="0x8086",
        device="0x1592",
        subsystem_vendor="0x8086",
        subsystem_device="0x0002",
        driver="ice",
    )
    tree.add_netdev("ens1f0", tree.add_pci_function(pci), mac=mac)
    gids = ((mac_gid(mac), GID_IB_ROCE_V1),)
    port = PortSpec(rate="100 Gb/sec (4X EDR)", netdev="ens1f0", gids=gids, gid_table_len=1)
    spec = HcaSpec(
        "irdma0",
        pci,
        ports=(port,),
        node_type="4: RNIC",
        node_guid=eui64_guid(mac),
        fw_ver="1.71",
        hca_type=None,
        board_id=None,
        umad=False,
        issm=False,
    )
    tree.add_hca(spec)
    return tree


def no_rdma(root: Path) -> FixtureTree:
    """A plain VM: a virtio NIC and no RDMA kernel support at all (no class/infiniband*)."""
    tree = FixtureTree(root, rdma_stack=False)
    _virtio_eth0(tree)
    return tree


def broken(root: Path) -> FixtureTree:
    """A ConnectX-6 Dx whose sysfs announces uverbs0 but whose /dev/infiniband/uverbs0 node is missing."""
    tree = FixtureTree(root)
    pci = PciSpec("0000:98:00.0", bridge="0000:97:02.0", device="0x101d", netdevs=("eth2",), numa_node=1)
    tree.add_pci_function(pci)
    tree.add_hca(HcaSpec("mlx5_0", pci, ports=(PortSpec(netdev="eth2", rate="100 Gb/sec (2X HDR)"),)))
    tree.remove_dev_node("uverbs0")
    return tree


SHAPES: dict[str, Callable[[Path], FixtureTree]] = {
    "scc_roce_lag": scc_roce_lag,
    "ib_two_numa": ib_two_numa,
    "sriov_cx5": sriov_cx5,
    "erdma": erdma,
    "erdma_two": erdma_two,
    "erdma_compat": erdma_compat,
    "erdma_compat_umad": erdma_compat_umad,
    "erdma_compat_two": erdma_compat_two,
    "irdma": irdma,
    "no_rdma": no_rdma,
    "broken": broken,
}
