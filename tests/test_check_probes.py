"""What the check reads inside a pod: the sysfs probe (run for real over real-layout trees), GID selection,
ibv_devinfo, the memlock limit and a netdev's address."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ack_rdma_check import devinfo, gid, memlock, netaddr
from ack_rdma_check.errors import SetupError
from tests.check_fixtures import pods, sysfs_tree
from tests.check_fixtures.fake_cluster import fixture


def probe(sys_root: Path) -> dict[str, gid.SysfsDevice]:
    done = subprocess.run(
        gid.probe_argv(str(sys_root)), capture_output=True, text=True, timeout=10, check=False
    )
    return gid.parse_probe(done.stdout)


def test_probe_reads_the_host_network_view_of_an_scc_node() -> None:
    devices = probe(pods.scc_sysfs(0, host_network=True))
    assert list(devices) == ["mlx5_bond_0"]
    device = devices["mlx5_bond_0"]
    assert (device.node_type, device.iwarp, device.netdevs) == ("1: CA", False, ["eth0"])  # the LAG's PF
    port = device.ports[1]
    assert (port.state, port.link_layer) == ("4: ACTIVE", "Ethernet")
    assert len(port.gids) == sysfs_tree.GID_TABLE_SIZE  # every entry has a gids file
    assert port.gids[3] == gid.GidEntry("0000:0000:0000:0000:0000:ffff:c0a8:0315", "RoCE v2", "bond0")
    assert port.gids[3].ipv4 == "192.168.3.21"
    assert port.gids[9].zero and port.gids[9].type == "" and port.gids[9].ndev == ""


def test_pod_network_view_has_no_netdevs() -> None:
    assert probe(pods.scc_sysfs(0, host_network=False))["mlx5_bond_0"].netdevs == []


def test_probe_of_a_host_without_rdma_is_empty(tmp_path: Path) -> None:
    (tmp_path / "class").mkdir()
    assert probe(tmp_path) == {}


def test_erdma_is_iwarp() -> None:
    device = probe(pods.erdma_sysfs(True))["erdma_0"]
    # eRDMA rides on the virtio-net function's eth0: only the GID attribute names it.
    assert device.iwarp and device.netdevs == [] and device.netdev_of(1) == "eth0"
    assert probe(pods.erdma_sysfs(False))["erdma_0"].netdev_of(1) == "eth0"


def _port(*gids: sysfs_tree.Gid) -> gid.SysfsPort:
    return gid.SysfsPort(
        "4: ACTIVE", "Ethernet", {g.index: gid.GidEntry(g.gid, g.type, g.ndev) for g in gids}
    )


LL = pods.LINK_LOCAL[0]


def test_ipv4_mapped_roce_v2_is_preferred() -> None:
    choice = gid.select_roce_v2(_port(*sysfs_tree.roce_gids("192.168.3.21", LL, "bond0")), None, "pod", False)
    assert (choice.index, choice.netdev, choice.ipv4) == (3, "bond0", "192.168.3.21")


def test_link_local_roce_v2_when_the_netdev_has_no_ipv4() -> None:
    port = _port(
        sysfs_tree.Gid(0, LL, sysfs_tree.ROCE_V1, "bond0"), sysfs_tree.Gid(1, LL, sysfs_tree.ROCE_V2, "bond0")
    )
    assert gid.select_roce_v2(port, None, "pod", False).index == 1


def test_bond_is_preferred_and_an_explicit_netdev_is_honoured() -> None:
    port = _port(
        *sysfs_tree.roce_gids("10.1.0.5", LL, "eth2"), *sysfs_tree.roce_gids("192.168.3.21", LL, "bond0", 4)
    )
    assert gid.select_roce_v2(port, None, "pod", False).index == 7
    assert gid.select_roce_v2(port, "eth2", "pod", False).index == 3
    with pytest.raises(SetupError, match="no RoCE v2 GID on eth9; RoCE v2 GIDs exist on bond0, eth2"):
        gid.select_roce_v2(port, "eth9", "pod x", False)


def test_zero_gids_on_the_pod_network_suggest_host_network() -> None:
    with pytest.raises(SetupError) as caught:
        gid.select_roce_v2(_port(), None, "pod rdma-test-1 on n2", host_network=False)
    assert caught.value.reason.startswith("pod rdma-test-1 on n2: every GID the pod sees is zero")
    assert "testPodHostNetwork: true" in caught.value.reason


def test_zero_gids_on_the_host_network_mean_no_address() -> None:
    with pytest.raises(SetupError, match="the RDMA netdev has no IP address on the node"):
        gid.select_roce_v2(_port(), None, "pod", host_network=True)


def test_roce_v1_only() -> None:
    port = _port(sysfs_tree.Gid(0, LL, sysfs_tree.ROCE_V1, "bond0"))
    with pytest.raises(SetupError, match=r"no RoCE v2 GID bound to a netdev \(found: IB/RoCE v1\)"):
        gid.select_roce_v2(port, None, "pod", False)


def test_ibv_devinfo_of_scc_erdma_and_infiniband() -> None:
    [scc] = devinfo.parse(fixture("ibv_devinfo/scc_roce_lag_active.txt"))
    assert (scc.name, scc.transport, scc.iwarp) == ("mlx5_bond_0", "InfiniBand (0)", False)
    assert scc.ports == [devinfo.Port(1, "PORT_ACTIVE (4)", "Ethernet")]
    [erdma] = devinfo.parse(fixture("ibv_devinfo/erdma_iwarp_active.txt"))
    assert erdma.iwarp and erdma.active_ports()[0].number == 1
    first, second = devinfo.parse(fixture("ibv_devinfo/ib_two_hcas_first_down.txt"))
    assert (first.active_ports(), second.active_ports()[0].link_layer) == ([], "InfiniBand")
    [down] = devinfo.parse(fixture("ibv_devinfo/scc_roce_lag_down.txt"))
    assert not down.ports[0].active


@pytest.mark.parametrize(
    ("output", "detail"), [("unlimited\n", "memlock unlimited"), ("8192\n", "memlock 8192 KiB")]
)
def test_memlock_high_enough(output: str, detail: str) -> None:
    assert memlock.check(output, 30, 65536, "pod") == detail


def test_memlock_need_follows_qps_and_message_size() -> None:
    assert memlock.needed_kib(30, 65536) == 30 * 128 + 1024
    with pytest.raises(SetupError, match="limit is 4863 KiB, ib_read_bw -q 30 needs about 4864 KiB"):
        memlock.check("4863", 30, 65536, "pod")
    with pytest.raises(SetupError, match="'ulimit -l' printed 'sh: ulimit: bad'"):
        memlock.check("sh: ulimit: bad\n", 30, 65536, "pod")


def test_netdev_address() -> None:
    line = (
        "7: bond0    inet 192.168.3.21/20 brd 192.168.15.255 scope global bond0\\       valid_lft forever\n"
    )
    assert netaddr.first_ipv4(line, "bond0", "pod") == "192.168.3.21"
    assert netaddr.argv("bond0") == ["ip", "-4", "-o", "addr", "show", "dev", "bond0"]
    with pytest.raises(SetupError, match="bond0 has no IPv4 address"):
        netaddr.first_ipv4("", "bond0", "pod")
