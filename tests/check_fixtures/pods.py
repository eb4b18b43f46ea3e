"""Fake pods shaped like the walkthrough's: two Alibaba SCC nodes with RoCE LAG (``mlx5_bond_0`` over bond0)
on a 192.168.0.0/20 vSwitch, pods on a Flannel pod network (172.20.0.0/16) or on the host network; and
eRDMA (iWARP) nodes for the ``-R`` path.
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


def erdma_pod(index: int, *, host_network: bool = True) -> FakePod:
    """A pod on a g8i node with an Alibaba eRDMA device (iWARP), whose netdev is the primary ENI eth0."""
    ipv4 = f"192.168.5.{30 + index}"
    return FakePod(
        name=f"rdma-test-{index}",
        node=f"cn-hangzhou.{ipv4}",
        pod_ip=ipv4 if host_network else POD_IPS[index],
        host_network=host_network,
        ibv_devinfo=ok("ibv_devinfo/erdma_iwarp_active.txt"),
        sysfs_root=erdma_sysfs(host_network),
        addresses={"eth0": f"{ipv4}/24"} if host_network else {},
        tools={"ib_read_bw": bandwidth("perftest/read_bw_client_erdma_rdma_cm_gbits.txt")},
    )
