"""The fixture trees have the kernel's layout: the links, names and value formats the plugin relies on."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sysfs_fixture import SHAPES, FixtureTree, eui64_guid, mac_gid

MakeTree = Callable[[str], FixtureTree]
RDMA_SHAPES = [name for name in SHAPES if name != "no_rdma"]


@pytest.mark.parametrize("shape", RDMA_SHAPES)
def test_class_links_point_into_the_pci_device(shared_tree: MakeTree, shape: str) -> None:
    tree = shared_tree(shape)
    for link in (tree.sysfs_root / "class/infiniband").iterdir():
        target = os.readlink(link)
        assert re.fullmatch(
            r"\.\./\.\./devices/pci[0-9a-f]{4}:[0-9a-f]{2}(/[0-9a-f:.]+)+/infiniband/" + link.name, target
        )
        pci = link.resolve().parent.parent
        assert (link / "device").resolve() == pci
        assert re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", pci.name)
        assert re.fullmatch(r"0x[0-9a-f]{4}\n", (pci / "vendor").read_text())
        assert os.readlink(pci / "driver").startswith("../")
        assert (pci / "driver").resolve().parent == (tree.sysfs_root / "bus/pci/drivers").resolve()
        assert re.fullmatch(
            r"pci:v[0-9A-F]{8}d[0-9A-F]{8}sv[0-9A-F]{8}sd[0-9A-F]{8}bc..sc..i..\n",
            (pci / "modalias").read_text(),
        )


@pytest.mark.parametrize("shape", RDMA_SHAPES)
def test_char_devices_have_kernel_values(shared_tree: MakeTree, shape: str) -> None:
    tree = shared_tree(shape)
    assert (tree.sysfs_root / "class/infiniband_verbs/abi_version").read_text() == "6\n"
    for uverbs in (tree.sysfs_root / "class/infiniband_verbs").glob("uverbs*"):
        assert os.readlink(uverbs).startswith("../../devices/pci")
        index = int(uverbs.name.removeprefix("uverbs"))
        assert (uverbs / "dev").read_text() == f"231:{192 + index}\n"
        assert (uverbs / "ibdev").read_text().endswith("\n")
        assert (uverbs / "abi_version").read_text() == "1\n"
        assert (uverbs / "device" / "vendor").is_file()
    for port in (tree.sysfs_root / "class/infiniband").glob("*/ports/*"):
        assert re.fullmatch(r"\d: [A-Z_]+\n", (port / "state").read_text())
        assert re.fullmatch(r"\d: \w+\n", (port / "phys_state").read_text())
        assert (port / "link_layer").read_text() in ("Ethernet\n", "InfiniBand\n")
        assert re.fullmatch(r"\d+ Gb/sec \(\dX [A-Z]+\)\n", (port / "rate").read_text())
    assert (tree.sysfs_root / "class/misc/rdma_cm/dev").read_text() == "10:58\n"
    assert (tree.dev_root / "infiniband/rdma_cm").is_file()


def test_a_vf_and_its_pf_link_each_other(shared_tree: MakeTree) -> None:
    tree = shared_tree("sriov_cx5")
    pf = (tree.sysfs_root / "bus/pci/devices/0000:3b:00.0").resolve()
    assert (pf / "sriov_numvfs").read_text() == "4\n"
    assert (pf / "sriov_totalvfs").read_text() == "8\n"
    for index in range(4):
        vf = pf / f"virtfn{index}"
        assert os.readlink(vf) == f"../0000:3b:00.{index + 2}"
        assert (vf / "physfn").resolve() == pf
        assert (vf / "device").read_text() == "0x1018\n"


def test_the_lag_bond_and_its_netdevs_are_in_class_net(shared_tree: MakeTree) -> None:
    tree = shared_tree("scc_roce_lag")
    net = tree.sysfs_root / "class/net"
    assert os.readlink(net / "bond0") == "../../devices/virtual/net/bond0"
    assert (net / "bond0/bonding/slaves").read_text() == "eth0 eth1\n"
    assert (net / "eth0/master").resolve() == (net / "bond0").resolve()
    assert (net / "eth0/device").resolve().name == "0000:3b:00.0"
    assert (
        tree.sysfs_root / "class/infiniband/mlx5_bond_0/ports/1/gid_attrs/ndevs/0"
    ).read_text() == "bond0\n"
    assert (
        tree.sysfs_root / "class/infiniband/mlx5_bond_0/ports/1/gid_attrs/types/1"
    ).read_text() == "RoCE v2\n"


def test_no_rdma_host_has_no_rdma_classes(shared_tree: MakeTree) -> None:
    tree = shared_tree("no_rdma")
    assert not [p for p in (tree.sysfs_root / "class").iterdir() if p.name.startswith("infiniband")]
    assert not (tree.dev_root / "infiniband").exists()
    assert (tree.sysfs_root / "class/net/eth0").is_symlink()


def test_remove_hca_takes_away_exactly_its_nodes(make_tree: MakeTree) -> None:
    tree = make_tree("ib_two_numa")
    before = {name for name, _, _ in tree.char_nodes()}
    tree.remove_hca("mlx5_0")
    after = {name for name, _, _ in tree.char_nodes()}
    assert before - after == {"uverbs0", "umad0", "issm0"}
    assert sorted(p.name for p in (tree.dev_root / "infiniband").iterdir()) == [
        "issm1",
        "rdma_cm",
        "umad1",
        "uverbs1",
    ]
    assert not (tree.sysfs_root / "class/infiniband/mlx5_0").exists()


def test_char_nodes_gives_what_mknod_needs(shared_tree: MakeTree, tmp_path: Path) -> None:
    nodes = shared_tree("broken").char_nodes()
    assert ("uverbs0", 231, 192) in nodes
    assert ("rdma_cm", 10, 58) in nodes


@pytest.mark.parametrize(
    ("shape", "ibdev", "netdev"), [("erdma", "erdma_0", "eth0"), ("irdma", "irdma0", "ens1f0")]
)
def test_iwarp_ports_have_one_gid_the_netdevs_mac(
    shared_tree: MakeTree, shape: str, ibdev: str, netdev: str
) -> None:
    """erdma_query_gid / irdma_query_gid: the MAC in the first six bytes; gid_tbl_len 1; GUID = EUI-64."""
    tree = shared_tree(shape)
    port = tree.sysfs_root / "class/infiniband" / ibdev / "ports/1"
    mac = (tree.sysfs_root / "class/net" / netdev / "address").read_text().strip()
    assert [p.name for p in (port / "gids").iterdir()] == ["0"]
    assert (port / "gids/0").read_text() == mac_gid(mac) + "\n"
    assert (port / "gid_attrs/ndevs/0").read_text() == f"{netdev}\n"
    assert (port / "../../node_guid").read_text() == eui64_guid(mac) + "\n"
