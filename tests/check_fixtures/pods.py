"""Fake pods shaped like the walkthrough's: two Alibaba SCC nodes with RoCE LAG (``mlx5_bond_0`` over bond0)
on a 192.168.0.0/20 vSwitch, pods on a Flannel pod network (172.20.0.0/16) or on the host network; and
eRDMA nodes in both ack-erdma-controller driver modes: default (iWARP, the ``-R`` path) and compat (RoCE v2,
``-x`` by the ERI's address), one or two ERIs each.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import sysfs_fixture

from ack_rdma_check.transport import ExecResult
from tests.check_fixtures import sysfs_tree
from tests.check_fixtures.fake_cluster import FakePod, PerftestBehaviour, fixture

NODES = ("cn-shanghai.192.168.3.21", "cn-shanghai.192.168.3.22")
NODE_IPS = ("192.168.3.21", "192.168.3.22")
POD_IPS = ("172.20.1.14", "172.20.2.9")
LINK_LOCAL = ("fe80:0000:0000:0000:268a:07ff:feb4:8d2c", "fe80:0000:0000:0000:268a:07ff:feb4:9e10")


def ok(relative: str) -> ExecResult:
    return ExecResult(0, fixture(relative), "")


def failed(relative: str, rc: int = 1) -> ExecResult:
    return ExecResult(rc, "", fixture(relative))


def bandwidth(
    report: str = "perftest/read_bw_client_roce_q30_gbits.txt", **changes: Any
) -> PerftestBehaviour:
    """The client gets ``report``; ``changes`` replace any field (``client=...`` for a failing client)."""
    behaviour = PerftestBehaviour(client=ok(report), server=ok("perftest/read_bw_server_roce_q30_gbits.txt"))
    return replace(behaviour, **changes)


def latency() -> PerftestBehaviour:
    return PerftestBehaviour(client=ok("perftest/read_lat_client_roce.txt"), server=ExecResult(0, "", ""))


@functools.cache
def _trees_root() -> Path:
    """Where the trees live for the whole test run: each has ~1000 files, so they are built once, on tmpfs
    when there is one (creating files on this machine's disk-backed /tmp takes milliseconds each)."""
    shm = "/dev/shm"
    base = shm if os.access(shm, os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix="ack-rdma-check-sysfs-", dir=base))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@functools.cache
def scc_sysfs(index: int, *, host_network: bool, zero_gids: bool = False, first_gid: int = 0) -> Path:
    """mlx5_bond_0 on bond0 as a pod on node ``index`` reads it."""
    name = f"scc-{index}-{'host' if host_network else 'pod'}-{'zero' if zero_gids else first_gid}"
    tree = sysfs_fixture.scc_roce_lag(_trees_root() / name)
    gids = [] if zero_gids else sysfs_tree.roce_gids(NODE_IPS[index], LINK_LOCAL[index], "bond0", first_gid)
    sysfs_tree.write_gid_table(tree.sysfs_root / "class/infiniband/mlx5_bond_0/ports/1", gids)
    if not host_network:
        sysfs_tree.hide_host_netdevs(tree.sysfs_root)
    return tree.sysfs_root


def roce_pod(index: int, *, host_network: bool = False, **changes: Any) -> FakePod:
    """The server (index 0) or client (index 1) test pod on an SCC node."""
    pod = FakePod(
        name=f"rdma-test-{index}",
        node=NODES[index],
        pod_ip=NODE_IPS[index] if host_network else POD_IPS[index],
        host_network=host_network,
        labels={"app.kubernetes.io/name": "rdma-test"},
        ibv_devinfo=ok("ibv_devinfo/scc_roce_lag_active.txt"),
        sysfs_root=scc_sysfs(index, host_network=host_network),
        addresses={"bond0": f"{NODE_IPS[index]}/20"} if host_network else {},
        tools={"ib_read_bw": bandwidth(), "ib_read_lat": latency()},
    )
    return replace(pod, **changes)


@functools.cache
def erdma_sysfs(host_network: bool) -> Path:
    """erdma_0 (iWARP) over the primary ENI eth0."""
    tree = sysfs_fixture.erdma(_trees_root() / f"erdma-{'host' if host_network else 'pod'}")
    if not host_network:
        sysfs_tree.hide_host_netdevs(tree.sysfs_root)
    return tree.sysfs_root


def erdma_pod(index: int, *, host_network: bool = True, **changes: Any) -> FakePod:
    """A pod on a g8i node with an Alibaba eRDMA device in driver mode default (iWARP), whose netdev is the
    primary ENI eth0."""
    ipv4 = f"192.168.5.{30 + index}"
    pod = FakePod(
        name=f"rdma-test-{index}",
        node=f"cn-hangzhou.{ipv4}",
        pod_ip=ipv4 if host_network else POD_IPS[index],
        host_network=host_network,
        ibv_devinfo=ok("ibv_devinfo/erdma_iwarp_active.txt"),
        sysfs_root=erdma_sysfs(host_network),
        addresses={"eth0": f"{ipv4}/24"} if host_network else {},
        tools={"ib_read_bw": bandwidth("perftest/read_bw_client_erdma_rdma_cm_gbits.txt")},
    )
    return replace(pod, **changes)


def erdma_node_eris(index: int, devices: int, ipv6_on_eth0: bool = False) -> list[sysfs_fixture.Eri]:
    """Node ``index``'s ERIs: sysfs_fixture.ERIS with this node's MACs and addresses (192.168.5.30+index on
    eth0, 192.168.6.30+index on eth1); ``ipv6_on_eth0`` gives eth0 a global IPv6 address added before its
    IPv4 one, which moves the IPv4 GID from index 1 to 2."""
    eris = []
    for number, eri in enumerate(sysfs_fixture.ERIS[:devices]):
        last = int(eri.mac.rsplit(":", 1)[1], 16) + index
        changed = replace(
            eri, mac=f"{eri.mac.rsplit(':', 1)[0]}:{last:02x}", ipv4=f"192.168.{5 + number}.{30 + index}"
        )
        if number == 0 and ipv6_on_eth0:
            changed = replace(changed, ipv6=(f"2408:4005:0300:5a00:0000:0000:0000:00{30 + index:02x}",))
        eris.append(changed)
    return eris


def erdma_compat_sysfs(
    index: int, *, host_network: bool, devices: int = 1, ipv6_on_eth0: bool = False
) -> Path:
    """erdma_0 (and erdma_1) in driver mode compat on node ``index``, as its pod reads them."""
    return _erdma_compat_tree(index, host_network, devices, ipv6_on_eth0)


@functools.cache
def _erdma_compat_tree(index: int, host_network: bool, devices: int, ipv6_on_eth0: bool) -> Path:
    name = (
        f"erdma-compat-{index}-{devices}-{'host' if host_network else 'pod'}-{'v6' if ipv6_on_eth0 else 'v4'}"
    )
    tree = sysfs_fixture.erdma_host(
        _trees_root() / name, erdma_node_eris(index, devices, ipv6_on_eth0), compat=True
    )
    if not host_network:
        sysfs_tree.hide_host_netdevs(tree.sysfs_root)
    return tree.sysfs_root


def erdma_compat_pod(
    index: int, *, host_network: bool = True, devices: int = 1, ipv6_on_eth0: bool = False, **changes: Any
) -> FakePod:
    """A pod on a g8i node whose eRDMA driver runs in mode compat (RoCE v2 GIDs over its ERIs)."""
    eris = erdma_node_eris(index, devices, ipv6_on_eth0)
    devinfo = fixture("ibv_devinfo/erdma_compat_two_active.txt")
    if devices == 1:
        devinfo = devinfo.split("\n\n")[0] + "\n"
    pod = FakePod(
        name=f"rdma-test-{index}",
        node=f"cn-hangzhou.{eris[0].ipv4}",
        pod_ip=eris[0].ipv4 if host_network else POD_IPS[index],
        host_network=host_network,
        dev_infiniband=("rdma_cm", *(f"uverbs{i}" for i in range(devices))),
        ibv_devinfo=ExecResult(0, devinfo, ""),
        sysfs_root=erdma_compat_sysfs(
            index, host_network=host_network, devices=devices, ipv6_on_eth0=ipv6_on_eth0
        ),
        addresses={eri.netdev: f"{eri.ipv4}/24" for eri in eris} if host_network else {},
        tools={"ib_read_bw": bandwidth("perftest/read_bw_client_erdma_rdma_cm_gbits.txt")},
    )
    return replace(pod, **changes)
