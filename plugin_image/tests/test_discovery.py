"""sysfs discovery over every fixture host, and its tolerance of what real hosts leave out."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from rdma_device_plugin.discovery import CharDevice, Hca, Port, discover, rdma_cm_present
from rdma_device_plugin.sysfs import SysfsReader, label, natural_key
from sysfs_fixture import FixtureTree, HcaSpec, PciSpec, PortSpec

MakeTree = Callable[[str], FixtureTree]


def found(tree: FixtureTree) -> list[Hca]:
    return discover(tree.sysfs_root, tree.dev_root)


def test_scc_roce_lag_maps_the_bond_ibdev_to_bond0(shared_tree: MakeTree) -> None:
    (hca,) = found(shared_tree("scc_roce_lag"))
    assert hca == Hca(
        name="mlx5_bond_0",
        pci_address="0000:3b:00.0",
        vendor="15b3",
        device_id="1015",
        driver="mlx5_core",
        numa_node=0,
        netdevs=("eth0", "bond0"),
        ports=(Port(1, "ACTIVE", "LinkUp", "Ethernet", "25 Gb/sec (1X EDR)", ("bond0",)),),
        char_devices=(CharDevice("uverbs", "uverbs0", "231:192"), CharDevice("umad", "umad0", "231:0")),
        node_type="CA",
        node_guid="248a:0703:00b4:8d2c",
        fw_ver="14.32.1010",
    )
    assert hca.healthy
    assert hca.link_layers == ("Ethernet",)
    assert hca.uverbs == CharDevice("uverbs", "uverbs0", "231:192")
    assert hca.uverbs.path == "/dev/infiniband/uverbs0"


def test_two_infiniband_hcas_on_two_numa_nodes_with_umad_and_issm(shared_tree: MakeTree) -> None:
    hcas = found(shared_tree("ib_two_numa"))
    assert [(h.name, h.pci_address, h.numa_node, h.device_id) for h in hcas] == [
        ("mlx5_0", "0000:17:00.0", 0, "101b"),
        ("mlx5_1", "0000:b1:00.0", 1, "101b"),
    ]
    for index, hca in enumerate(hcas):
        assert hca.netdevs == (f"ib{index}",)
        assert hca.ports == (Port(1, "ACTIVE", "LinkUp", "InfiniBand", "200 Gb/sec (4X HDR)"),)
        assert [(d.kind, d.name, d.dev) for d in hca.char_devices] == [
            ("uverbs", f"uverbs{index}", f"231:{192 + index}"),
            ("umad", f"umad{index}", f"231:{index}"),
            ("issm", f"issm{index}", f"231:{64 + index}"),
        ]
        assert hca.healthy


def test_sriov_pf_lists_its_vfs_and_each_vf_its_pf(shared_tree: MakeTree) -> None:
    pf, *vfs = found(shared_tree("sriov_cx5"))
    assert (pf.name, pf.device_id, pf.physfn, pf.sriov_numvfs) == ("mlx5_0", "1017", None, 4)
    assert pf.virtfns == ("0000:3b:00.2", "0000:3b:00.3", "0000:3b:00.4", "0000:3b:00.5")
    assert [(vf.name, vf.pci_address, vf.device_id, vf.physfn) for vf in vfs] == [
        (f"mlx5_{i + 1}", f"0000:3b:00.{i + 2}", "1018", "0000:3b:00.0") for i in range(4)
    ]
    assert [vf.netdevs for vf in vfs] == [(f"ens2f0v{i}",) for i in range(4)]
    assert [vf.uverbs.name for vf in vfs if vf.uverbs] == ["uverbs1", "uverbs2", "uverbs3", "uverbs4"]


def test_erdma_is_an_rnic_without_numa_and_finds_its_netdev_through_the_gid(shared_tree: MakeTree) -> None:
    (hca,) = found(shared_tree("erdma"))
    assert (hca.name, hca.vendor, hca.device_id, hca.driver) == ("erdma_0", "1ded", "107f", "erdma")
    assert hca.node_type == "RNIC"
    assert hca.numa_node is None  # sysfs says -1
    assert hca.netdevs == ("eth0",)  # the PCI function has no net/; GID 0 names the virtio netdev
    assert [d.kind for d in hca.char_devices] == ["uverbs"]


def test_irdma_iwarp_has_no_umad(shared_tree: MakeTree) -> None:
    (hca,) = found(shared_tree("irdma"))
    assert (hca.name, hca.vendor, hca.device_id, hca.driver, hca.node_type) == (
        "irdma0",
        "8086",
        "1592",
        "ice",
        "RNIC",
    )
    assert hca.netdevs == ("ens1f0",)
    assert [d.name for d in hca.char_devices] == ["uverbs0"]


def test_a_host_without_rdma_has_no_devices_and_no_rdma_cm(shared_tree: MakeTree) -> None:
    tree = shared_tree("no_rdma")
    assert found(tree) == []
    assert not rdma_cm_present(tree.dev_root)


def test_missing_sysfs_and_dev_roots_mean_no_devices(tmp_path: Path) -> None:
    assert discover(tmp_path / "nothing" / "sys", tmp_path / "nothing" / "dev") == []


def test_a_missing_uverbs_node_is_recorded_not_hidden(shared_tree: MakeTree) -> None:
    tree = shared_tree("broken")
    (hca,) = found(tree)
    assert hca.uverbs == CharDevice("uverbs", "uverbs0", "231:192", present=False)
    assert all(d.present for d in hca.char_devices if d.kind != "uverbs")
    assert hca.healthy  # the link is up; the pool decides that a device without its node is unusable
    assert rdma_cm_present(tree.dev_root)


def test_port_state_changes_and_removal_are_seen(make_tree: MakeTree) -> None:
    tree = make_tree("ib_two_numa")
    tree.set_port_state("mlx5_1", 1, "1: DOWN", "3: Disabled")
    hcas = found(tree)
    assert [h.healthy for h in hcas] == [True, False]
    assert hcas[1].ports[0].state == "DOWN"
    assert hcas[1].ports[0].phys_state == "Disabled"
    tree.set_port_state("mlx5_1", 1, "2: INIT", "5: LinkUp")
    assert not found(tree)[1].healthy  # INIT is not ACTIVE
    tree.remove_hca("mlx5_0")
    assert [h.name for h in found(tree)] == ["mlx5_1"]
    assert not (tree.dev_root / "infiniband" / "uverbs0").exists()


def test_a_hot_plugged_hca_appears_in_natural_order(make_tree: MakeTree) -> None:
    tree = make_tree("ib_two_numa")
    for index in (10, 2):
        pci = PciSpec(f"0000:c{index % 10}:00.0", bridge=f"0000:c{index % 10}:01.0", numa_node=1)
        tree.add_pci_function(pci)
        tree.add_hca(HcaSpec(f"mlx5_{index}", pci, ports=(PortSpec(link_layer="InfiniBand"),)))
    assert [h.name for h in found(tree)] == ["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_10"]


def test_optional_files_may_be_missing(make_tree: MakeTree) -> None:
    tree = make_tree("scc_roce_lag")
    ibdev = tree.sysfs_root / "class/infiniband/mlx5_bond_0"
    pci = ibdev.resolve().parent.parent
    for optional in (
        pci / "numa_node",
        ibdev / "fw_ver",
        ibdev / "ports/1/rate",
        ibdev / "ports/1/gid_attrs/ndevs/0",
        ibdev / "ports/1/gid_attrs/ndevs/1",
    ):
        optional.unlink()
    (pci / "driver").unlink()
    (hca,) = found(tree)
    assert (hca.numa_node, hca.fw_ver, hca.driver) == (None, None, None)
    assert hca.ports[0].rate == ""
    assert hca.netdevs == ("eth0",)
    assert hca.healthy


def test_a_device_without_pci_function_or_ports_is_still_listed(make_tree: MakeTree) -> None:
    tree = make_tree("erdma")
    ibdev = tree.sysfs_root / "class/infiniband/erdma_0"
    (ibdev / "device").unlink()
    for port_file in (ibdev / "ports/1").rglob("*"):
        if port_file.is_file():
            port_file.unlink()
    (hca,) = found(tree)
    assert (hca.pci_address, hca.vendor, hca.driver, hca.numa_node) == (None, None, None, None)
    assert hca.ports == (Port(1, "UNKNOWN", "UNKNOWN", "UNKNOWN", ""),)
    assert not hca.healthy


def test_dangling_and_malformed_entries_are_skipped(make_tree: MakeTree) -> None:
    tree = make_tree("irdma")
    (tree.sysfs_root / "class/infiniband/gone_0").symlink_to("../../devices/nowhere/gone_0")
    stray = tree.sysfs_root / "class/infiniband_verbs/uverbsX"
    stray.mkdir()
    (stray / "ibdev").write_text("irdma0\n")
    (stray / "dev").write_text("231:250\n")
    (hca,) = found(tree)
    assert hca.name == "irdma0"
    assert [d.name for d in hca.char_devices] == ["uverbs0"]


def test_auxiliary_devices_resolve_to_their_pci_parent(make_tree: MakeTree) -> None:
    """mlx5 sub-functions sit on the auxiliary bus one level below the PCI function."""
    tree = make_tree("scc_roce_lag")
    pci = (tree.sysfs_root / "bus/pci/devices/0000:3b:00.1").resolve()
    aux = pci / "mlx5_core.sf.2"
    aux.mkdir()
    ibdev = aux / "infiniband" / "mlx5_2"
    (ibdev / "ports/1").mkdir(parents=True)
    (ibdev / "device").symlink_to(os.path.relpath(aux, ibdev))
    (tree.sysfs_root / "class/infiniband/mlx5_2").symlink_to(
        os.path.relpath(ibdev, tree.sysfs_root / "class/infiniband")
    )
    sf = next(h for h in found(tree) if h.name == "mlx5_2")
    assert (sf.pci_address, sf.vendor, sf.driver, sf.netdevs) == (
        "0000:3b:00.1",
        "15b3",
        "mlx5_core",
        ("eth1",),
    )


def test_sysfs_value_parsers() -> None:
    assert label("4: ACTIVE") == "ACTIVE"
    assert label("6: usNIC UDP") == "usNIC UDP"
    assert label("InfiniBand") == "InfiniBand"
    assert label(None) is None
    assert sorted(["uverbs10", "uverbs9", "umad1"], key=natural_key) == ["umad1", "uverbs9", "uverbs10"]


def test_read_hex_id_rejects_garbage(tmp_path: Path) -> None:
    (tmp_path / "good").write_text("0x15B3\n")
    (tmp_path / "bad").write_text("vendor\n")
    read_hex_id = SysfsReader().hex_id
    assert read_hex_id(tmp_path / "good") == "15b3"
    assert read_hex_id(tmp_path / "bad") is None
    assert read_hex_id(tmp_path / "absent") is None
