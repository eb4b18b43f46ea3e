"""ack-rdma-check on Alibaba eRDMA in both ack-erdma-controller driver modes, through the exec stand-in
(tests/check_fixtures/fake_cluster.py) over pod sysfs trees shaped like each mode (sysfs_fixture's erdma
hosts): default is iWARP (-R over the ERI's address, host network only), compat is RoCE v2 (-x at the
index of the GID ::ffff:<ERI IPv4>, no -R, pod network allowed), and perftest failures name the fix."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from ack_rdma_check import erdma, gid
from ack_rdma_check.perftest_errors import Failure
from ack_rdma_check.steps.orchestrate import CheckOptions, CheckResult, run_check
from ack_rdma_check.steps.perf import RunTiming
from ack_rdma_check.steps.pods import PodTarget
from ack_rdma_check.steps.record import StepResult
from tests.check_fixtures import pods
from tests.check_fixtures.fake_cluster import FakeCluster, FakePod

FAST = RunTiming(connect_timeout=5.0, retry_interval=0.0, run_timeout=10.0, server_exit_timeout=1.0)
NAMED = PodTarget("rdma-test", names=("rdma-test-0", "rdma-test-1"))
MIN_GBITS = 25.0  # the recorded eRDMA report averages 28.31 Gbit/s


class Quiet:
    def begin(self, name: str) -> None:
        pass

    def end(self, result: StepResult) -> None:
        pass


def check(*fake_pods: FakePod, **options: Any) -> tuple[CheckResult, FakeCluster]:
    cluster = FakeCluster(list(fake_pods))
    result = run_check(cluster, NAMED, CheckOptions(min_gbits=MIN_GBITS, timing=FAST, **options), Quiet())
    return result, cluster


def step(result: CheckResult, name: str) -> StepResult:
    return next(s for s in result.steps if s.name == name)


def perftest_argvs(cluster: FakeCluster) -> tuple[tuple[str, ...], tuple[str, ...]]:
    started = [argv for op, _, argv in cluster.log if op == "start"]
    clients = [argv for op, _, argv in cluster.log if op == "run" and argv[0] == "ib_read_bw"]
    return started[-1], clients[-1]


# -- what the pods' sysfs says ----------------------------------------------------------------------------


def probe(sys_root: Path) -> dict[str, gid.SysfsDevice]:
    done = subprocess.run(
        gid.probe_argv(str(sys_root)), capture_output=True, text=True, timeout=10, check=False
    )
    return gid.parse_probe(done.stdout)


def test_the_probe_tells_the_two_driver_modes_apart() -> None:
    default = probe(pods.erdma_sysfs(True))["erdma_0"]
    compat = probe(pods.erdma_compat_sysfs(0, host_network=True))["erdma_0"]
    assert (default.vendor, default.node_type, compat.vendor, compat.node_type) == (
        "0x1ded",
        "4: RNIC",
        "0x1ded",
        "1: CA",
    )
    assert erdma.driver_mode(default.vendor, default.iwarp) == "default"
    assert erdma.driver_mode(compat.vendor, compat.iwarp) == "compat"
    scc = probe(pods.scc_sysfs(0, host_network=True))["mlx5_bond_0"]
    assert erdma.driver_mode(scc.vendor, scc.iwarp) is None
    # Default mode has one GID, the MAC, not an IP; compat has ::ffff:<ERI IPv4> (node 0: 192.168.5.30).
    assert [e.ipv4 for e in default.ports[1].gids.values()] == [None]
    assert compat.ports[1].gids[1] == gid.GidEntry(
        "0000:0000:0000:0000:0000:ffff:c0a8:051e", "RoCE v2", "eth0"
    )


# -- driver mode compat: RoCE v2, -x by the ERI address ------------------------------------------------


def test_compat_on_host_network_uses_the_gid_of_the_eri_address_and_no_rdma_cm() -> None:
    result, cluster = check(pods.erdma_compat_pod(0), pods.erdma_compat_pod(1))
    assert result.verdict.exit_code == 0, result.verdict.reason
    detail = step(result, "Transport and GID").detail
    assert (
        "rdma-test-0: eRDMA driver mode compat: RoCE v2 GID index 1 "
        "(::ffff:192.168.5.30, the address of eth0)" in detail
    )
    assert "rdma-test-1: eRDMA driver mode compat: RoCE v2 GID index 1 (::ffff:192.168.5.31" in detail
    server, client = perftest_argvs(cluster)
    assert "-R" not in server and "-R" not in client
    assert server[-2:] == ("-x", "1") and client[-3:] == ("-x", "1", "192.168.5.30")
    assert result.plan is not None
    assert result.plan.mode == "eRDMA driver mode compat: RoCE v2, GID index 1 (-x) on eth0"
    # The ERI's address was read in the pod, not guessed from the GID table.
    assert ("run", "rdma-test-0", ("ip", "-4", "-o", "addr", "show", "dev", "eth0")) in cluster.log


def test_compat_gid_index_is_found_per_node_by_the_eri_address() -> None:
    # The server's eth0 got an IPv6 address before its IPv4 one: its IPv4 GID is at index 2, the
    # client's at 1.
    result, cluster = check(pods.erdma_compat_pod(0, ipv6_on_eth0=True), pods.erdma_compat_pod(1))
    assert result.verdict.exit_code == 0, result.verdict.reason
    server, client = perftest_argvs(cluster)
    assert server[-2:] == ("-x", "2")
    assert client[-3:] == ("-x", "1", "192.168.5.30")


def test_compat_second_eri_of_two_has_its_own_gid_index() -> None:
    result, cluster = check(
        pods.erdma_compat_pod(0, devices=2), pods.erdma_compat_pod(1, devices=2), device="erdma_1"
    )
    assert result.verdict.exit_code == 0, result.verdict.reason
    server, client = perftest_argvs(cluster)
    # erdma_1's eth1 carries a global IPv6 address first (sysfs_fixture.ERIS): IPv4 GID at index 2.
    assert server[server.index("-d") : server.index("-d") + 2] == ("-d", "erdma_1")
    assert server[-2:] == ("-x", "2") and client[-3:] == ("-x", "2", "192.168.6.30")


def test_compat_on_the_pod_network_runs_out_of_band_with_the_eri_gid() -> None:
    result, cluster = check(
        pods.erdma_compat_pod(0, host_network=False), pods.erdma_compat_pod(1, host_network=False)
    )
    assert result.verdict.exit_code == 0, result.verdict.reason
    detail = step(result, "Transport and GID").detail
    assert (
        "GID index 1 (::ffff:192.168.5.30, the IPv4 GID of eth0, which is outside the pod's network" in detail
    )
    _, client = perftest_argvs(cluster)
    assert "-R" not in client and client[-3:] == ("-x", "1", pods.POD_IPS[0])  # perftest's TCP exchange
    assert not [argv for op, _, argv in cluster.log if argv[:1] == ("ip",)]


def test_compat_refuses_an_eri_whose_address_has_no_gid() -> None:
    # The pod reads another address on eth0 than the one the GID table carries (e.g. a re-addressed ENI).
    stale = pods.erdma_compat_pod(0, addresses={"eth0": "192.168.5.99/24"})
    result, cluster = check(stale, pods.erdma_compat_pod(1))
    assert result.verdict.exit_code == 2
    assert result.verdict.reason == (
        "pod rdma-test-0 on cn-hangzhou.192.168.5.30: no RoCE v2 GID is ::ffff:192.168.5.99, the IPv4 "
        "address of eth0; the port's IPv4 GIDs carry 192.168.5.30: pass --netdev with the RDMA device's own "
        "netdev, or check that the address on it is the one its GID carries"
    )
    assert not cluster.servers


# -- driver mode default: iWARP, RDMA_CM over the ERI ----------------------------------------------------


def test_default_mode_runs_rdma_cm_on_the_eri_address() -> None:
    result, cluster = check(pods.erdma_pod(0), pods.erdma_pod(1))
    assert result.verdict.exit_code == 0, result.verdict.reason
    assert (
        "eRDMA driver mode default: iWARP (needs RDMA_CM, -R), netdev eth0"
        in step(result, "Transport and GID").detail
    )
    assert result.plan is not None
    assert result.plan.mode == "eRDMA driver mode default: iWARP through RDMA_CM (-R) over eth0"
    server, client = perftest_argvs(cluster)
    assert "-R" in server and "-R" in client and "-x" not in client and client[-1] == "192.168.5.30"


def test_default_mode_on_the_pod_network_explains_the_host_network_need() -> None:
    result, cluster = check(pods.erdma_pod(0, host_network=False), pods.erdma_pod(1, host_network=False))
    assert result.verdict.exit_code == 2
    assert result.verdict.reason == (
        "iWARP connects through RDMA_CM, and RDMA_CM cannot use the pod network's address: in eRDMA "
        "driver mode default the pod's own netdev (eth0, a veth on the pod network) is not the ERI (eth0 on "
        "the node), so RDMA_CM finds no RDMA device for it; run host-network pods (--rdma-cm --create, or "
        "testPodHostNetwork: true in the stack config) so the server is reached on its ERI address, or set "
        "the ack-erdma-controller add-on's agent.preferDriver to compat, which connects out of band from "
        "the pod network"
    )
    assert not cluster.servers


def test_nodes_in_different_driver_modes_are_refused_before_running() -> None:
    result, cluster = check(pods.erdma_pod(0), pods.erdma_compat_pod(1))
    assert result.verdict.exit_code == 2
    assert result.verdict.reason.startswith(
        "pod rdma-test-0 on cn-hangzhou.192.168.5.30 runs the eRDMA driver in mode default but pod "
        "rdma-test-1 on cn-hangzhou.192.168.5.31 in mode compat; the two cannot connect"
    )
    assert "agent.preferDriver" in result.verdict.reason
    assert not cluster.servers


# -- failures name the fix for the mode ---------------------------------------------------------------


def test_compat_qp_failure_names_the_eri_gid_and_the_driver_switch() -> None:
    broken = pods.bandwidth(client=pods.failed("perftest/err_rtr.txt"))
    result, _ = check(pods.erdma_compat_pod(0, tools={"ib_read_bw": broken}), pods.erdma_compat_pod(1))
    assert result.verdict.exit_code == 2
    reason = result.verdict.reason
    assert reason.startswith(
        "ib_read_bw client in pod rdma-test-1 on cn-hangzhou.192.168.5.31: 'Failed to modify QP"
    )
    assert reason.endswith(
        "in eRDMA mode compat the GID must be the RoCE v2 GID ::ffff:<IPv4 of eth0> (index 1 here) on both "
        "sides; if a node's driver is in mode default (iWARP) it connects only through RDMA_CM: set the "
        "ack-erdma-controller add-on's agent.preferDriver to compat on every RDMA node"
    )


def test_default_mode_rdma_cm_address_failure_names_the_eri() -> None:
    broken = pods.bandwidth(
        "perftest/read_bw_client_erdma_rdma_cm_gbits.txt",
        client=pods.failed("perftest/err_cm_addr_error.txt"),
    )
    result, _ = check(pods.erdma_pod(0, tools={"ib_read_bw": broken}), pods.erdma_pod(1))
    assert result.verdict.exit_code == 2
    assert result.verdict.reason.endswith(
        "on eRDMA the server address must be the server node's ERI address (eth0) and both pods must use the "
        "host network; check that eth0 is up with its IPv4 address (ack-erdma-controller sets it up)"
    )


def test_failures_on_other_devices_keep_the_generic_advice() -> None:
    assert erdma.failure_fix(Failure.MEMLOCK, "compat", "eth0", 1) is None
    broken = pods.bandwidth(client=pods.failed("perftest/err_rtr.txt"))
    result, _ = check(pods.roce_pod(0, tools={"ib_read_bw": broken}), pods.roce_pod(1))
    assert "eRDMA" not in result.verdict.reason
