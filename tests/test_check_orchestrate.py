"""The check's orchestration against the in-process stand-in cluster (tests/check_fixtures/fake_cluster.py):
ordering, retries, verdicts, cleanup with --create, GID choice, iWARP and RDMA_CM, memlock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from ack_rdma_check.steps.orchestrate import CheckOptions, CheckResult, run_check
from ack_rdma_check.steps.perf import RunTiming
from ack_rdma_check.steps.pods import PodTarget
from ack_rdma_check.steps.record import Outcome, StepResult
from ack_rdma_check.transport import ExecResult
from components.k8s_objects import TestPodSpec, build_test_objects
from tests.check_fixtures import pods
from tests.check_fixtures.fake_cluster import FakeCluster, FakePod

FAST = RunTiming(connect_timeout=5.0, retry_interval=0.0, run_timeout=10.0, server_exit_timeout=1.0)
NAMED = PodTarget("rdma-test", names=("rdma-test-0", "rdma-test-1"))
BW_FLAGS = ["ib_read_bw", "-q", "30", "-F", "--report_gbits", "-p", "18515"]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def begin(self, name: str) -> None:
        self.events.append(("begin", name))

    def end(self, result: StepResult) -> None:
        self.events.append((result.outcome.value, result.name))


def check(cluster: FakeCluster, target: PodTarget = NAMED, **options: Any) -> CheckResult:
    return run_check(cluster, target, CheckOptions(min_gbits=40.0, timing=FAST, **options), Recorder())


def pair(**changes: Any) -> FakeCluster:
    return FakeCluster([pods.roce_pod(0, **changes), pods.roce_pod(1, **changes)])


def step(result: CheckResult, name: str) -> StepResult:
    return next(s for s in result.steps if s.name == name)


def test_pod_network_roce_passes_with_the_sysfs_gid_index() -> None:
    cluster = pair()
    recorder = Recorder()
    result = run_check(cluster, NAMED, CheckOptions(min_gbits=40.0, timing=FAST), recorder)

    assert result.verdict.exit_code == 0
    assert result.verdict.reason == "average 46.05 Gbit/s (5490 MB/s) meets the expected 40 Gbit/s"
    assert result.bandwidth is not None and result.bandwidth.average_gbits == pytest.approx(46.05)
    assert [s.name for s in result.steps] == [
        "Test pods",
        "Pods running on different nodes",
        "RDMA device in the pods",
        "Active RDMA port",
        "Locked-memory limit",
        "Transport and GID",
        "Test plan",
        "ib_read_bw -q 30",
    ]
    assert all(s.outcome is Outcome.OK for s in result.steps)
    assert recorder.events[:2] == [("begin", "Test pods"), ("ok", "Test pods")]  # reported as it runs
    assert (
        "RoCE v2 GID index 3 (0000:0000:0000:0000:0000:ffff:c0a8:0315) on bond0"
        in step(result, "Transport and GID").detail
    )
    start = ("start", "rdma-test-0", (*BW_FLAGS, "-d", "mlx5_bond_0", "-x", "3"))
    client = ("run", "rdma-test-1", (*BW_FLAGS, "-d", "mlx5_bond_0", "-x", "3", pods.POD_IPS[0]))
    assert cluster.log[-2:] == [start, client]  # server first, then the client against its pod IP
    assert [server.stopped for server in cluster.servers] == [True]


def test_probes_run_on_both_pods_before_the_server_starts() -> None:
    cluster = pair()
    check(cluster)
    probes = [(name, argv[0]) for operation, name, argv in cluster.log if operation == "run"][:8]
    assert probes == [
        ("rdma-test-0", "ls"),
        ("rdma-test-1", "ls"),
        ("rdma-test-0", "ibv_devinfo"),
        ("rdma-test-1", "ibv_devinfo"),
        ("rdma-test-0", "sh"),
        ("rdma-test-1", "sh"),
        ("rdma-test-0", "sh"),
        ("rdma-test-1", "sh"),
    ]


def test_below_the_expectation_exits_1() -> None:
    low = pods.bandwidth("perftest/read_bw_client_roce_q30_gbits_low.txt")
    cluster = pair(tools={"ib_read_bw": low})
    result = check(cluster)
    assert result.verdict.exit_code == 1
    assert result.verdict.reason == "average 23.40 Gbit/s (2789 MB/s) is below the expected 40 Gbit/s"


def test_client_is_retried_while_the_server_is_not_listening() -> None:
    cluster = pair(tools={"ib_read_bw": pods.bandwidth(refused_attempts=2)})
    result = check(cluster)
    assert result.verdict.exit_code == 0
    clients = [entry for entry in cluster.log if entry[0] == "run" and entry[2][0] == "ib_read_bw"]
    assert len(clients) == 3
    assert step(result, "ib_read_bw -q 30").detail.endswith("(3 client attempts)")


def test_server_that_never_listens_is_unreachable() -> None:
    cluster = pair(tools={"ib_read_bw": pods.bandwidth(refused_attempts=10**9)})
    result = run_check(
        cluster, NAMED, CheckOptions(min_gbits=40.0, timing=replace(FAST, connect_timeout=0.0)), Recorder()
    )
    assert result.verdict.exit_code == 2
    assert result.verdict.reason.startswith(
        "server unreachable after 1 attempts in 0 s: ib_read_bw client in pod"
    )
    assert repr(f"Couldn't connect to {pods.POD_IPS[0]}:18515") in result.verdict.reason
    assert step(result, "ib_read_bw -q 30").outcome is Outcome.FAILED
    assert cluster.servers[0].stopped


def test_server_that_dies_is_reported_with_its_own_error() -> None:
    dying = pods.bandwidth(server_dies=pods.failed("perftest/err_memlock.txt"))
    cluster = pair(tools={"ib_read_bw": dying})
    result = check(cluster)
    assert result.verdict.exit_code == 2
    assert result.verdict.reason.startswith(f"ib_read_bw server in pod rdma-test-0 on {pods.NODES[0]}: ")
    assert "containerd_config.limit_mem_lock" in result.verdict.reason


def test_qp_that_cannot_reach_rtr_names_gid_and_overlay() -> None:
    rtr = pods.bandwidth(client=pods.failed("perftest/err_rtr.txt"))
    result = check(pair(tools={"ib_read_bw": rtr}))
    assert result.verdict.exit_code == 2
    assert "'Failed to modify QP 4499 to RTR'" in result.verdict.reason
    assert "wrong GID index" in result.verdict.reason


def test_report_that_cannot_be_parsed_is_quoted() -> None:
    garbage = pods.bandwidth(client=ExecResult(0, "RDMA_Read BW Test\n #bytes #iterations oops\n", ""))
    result = check(pair(tools={"ib_read_bw": garbage}))
    assert result.verdict.exit_code == 2
    assert result.verdict.reason.startswith("could not parse the ib_read_bw report from pod rdma-test-1")
    assert "'#bytes #iterations oops'" in result.verdict.reason


def test_pending_pod_stops_the_check() -> None:
    pending = pods.roce_pod(
        1, phase="Pending", node=None, problem="0/3 nodes are available: 3 Insufficient rdma/hca."
    )
    cluster = FakeCluster([pods.roce_pod(0), pending])
    result = check(cluster)
    assert result.verdict.exit_code == 2
    assert result.verdict.reason == (
        "pod rdma-test/rdma-test-1 is Pending after 300 s: 0/3 nodes are available: 3 Insufficient rdma/hca."
    )
    assert not [entry for entry in cluster.log if entry[0] in {"run", "start"}]


def test_pods_on_one_node_would_not_cross_the_network() -> None:
    cluster = FakeCluster([pods.roce_pod(0), pods.roce_pod(1, node=pods.NODES[0])])
    result = check(cluster)
    assert result.verdict.exit_code == 2
    assert result.verdict.reason.startswith(f"both pods run on node {pods.NODES[0]}")


def test_missing_named_pod() -> None:
    result = check(FakeCluster([pods.roce_pod(0)]))
    assert result.verdict.exit_code == 2
    assert result.verdict.reason.startswith("pod rdma-test/rdma-test-1 does not exist")


def test_pod_without_an_rdma_device() -> None:
    cluster = FakeCluster([pods.roce_pod(0), pods.roce_pod(1, dev_infiniband=())])
    result = check(cluster, resource_name="rdma/hca")
    assert result.verdict.exit_code == 2
    assert result.verdict.reason.startswith(f"pod rdma-test-1 on {pods.NODES[1]}: no RDMA device in the pod")
    assert "rdma/hca" in result.verdict.reason


def test_port_down() -> None:
    down = pods.ok("ibv_devinfo/scc_roce_lag_down.txt")
    result = check(FakeCluster([pods.roce_pod(0, ibv_devinfo=down), pods.roce_pod(1)]))
    assert result.verdict.exit_code == 2
    assert result.verdict.reason == (
        f"pod rdma-test-0 on {pods.NODES[0]}: RDMA port down on mlx5_bond_0 (port 1 PORT_DOWN (1)); "
        "check the cable/link"
    )


def test_first_hca_with_an_active_port_is_used() -> None:
    two = pods.ok("ibv_devinfo/ib_two_hcas_first_down.txt")
    cluster = pair(ibv_devinfo=two)
    result = check(cluster)
    # mlx5_1 is chosen; the pods' sysfs has no mlx5_1, which the next step reports by name.
    assert "mlx5_1 port 1 PORT_ACTIVE (4), link layer InfiniBand" in step(result, "Active RDMA port").detail
    assert (
        result.verdict.reason
        == f"pod rdma-test-0 on {pods.NODES[0]}: /sys/class/infiniband/mlx5_1 is not visible in the pod"
    )


def test_low_memlock_names_the_node_fix() -> None:
    result = check(FakeCluster([pods.roce_pod(0, memlock="64"), pods.roce_pod(1)]))
    assert result.verdict.exit_code == 2
    assert result.verdict.reason.startswith(
        f"pod rdma-test-0 on {pods.NODES[0]}: locked-memory limit is 64 KiB, "
        "ib_read_bw -q 30 needs about 4864 KiB"
    )
    assert "set the node pool's containerd_config.limit_mem_lock" in result.verdict.reason
    assert "user data" not in result.verdict.reason


def test_zero_gids_mean_an_overlay_network() -> None:
    overlay = pods.scc_sysfs(1, host_network=False, zero_gids=True)
    cluster = FakeCluster([pods.roce_pod(0), pods.roce_pod(1, sysfs_root=overlay)])
    result = check(cluster)
    assert result.verdict.exit_code == 2
    assert "every GID the pod sees is zero, which means an overlay pod network" in result.verdict.reason
    assert "host network" in result.verdict.reason
    assert not cluster.servers


def test_gid_index_follows_the_pods_table_not_a_fixed_3() -> None:
    shifted = [pods.scc_sysfs(i, host_network=False, first_gid=4) for i in (0, 1)]
    cluster = FakeCluster([pods.roce_pod(i, sysfs_root=shifted[i]) for i in (0, 1)])
    result = check(cluster)
    assert result.verdict.exit_code == 0
    assert result.plan is not None
    assert result.plan.server_params.gid_index == 7
    assert cluster.log[-1][2][-3:] == ("-x", "7", pods.POD_IPS[0])


def test_iwarp_erdma_uses_rdma_cm_over_the_host_network() -> None:
    cluster = FakeCluster([pods.erdma_pod(0), pods.erdma_pod(1)])
    result = check(cluster)
    assert result.verdict.exit_code == 1  # 28.31 Gbit/s against the SCC expectation of 40
    assert "iWARP (needs RDMA_CM, -R), netdev eth0" in step(result, "Transport and GID").detail
    server_argv, client_argv = cluster.log[-2][2], cluster.log[-1][2]
    assert "-R" in server_argv and "-R" in client_argv and "-x" not in client_argv
    assert client_argv[-1] == "192.168.5.30"  # the server node's eth0 address from `ip addr`


def test_iwarp_on_the_pod_network_is_refused_before_running() -> None:
    cluster = FakeCluster([pods.erdma_pod(i, host_network=False) for i in (0, 1)])
    result = check(cluster)
    assert result.verdict.exit_code == 2
    assert result.verdict.reason.startswith(
        "iWARP connects through RDMA_CM, and RDMA_CM cannot use the pod network"
    )
    assert not cluster.servers


def test_rdma_cm_reaches_the_server_on_bond0() -> None:
    cluster = pair(host_network=True)
    result = check(cluster, rdma_cm=True)
    assert result.verdict.exit_code == 0
    assert result.plan is not None and result.plan.address == pods.NODE_IPS[0]
    assert cluster.log[-1][2] == (*BW_FLAGS, "-d", "mlx5_bond_0", "-R", pods.NODE_IPS[0])
    assert "RDMA_CM (-R) over bond0" in step(result, "Test plan").detail


def test_rdma_cm_needs_host_network_pods() -> None:
    result = check(pair(), rdma_cm=True)
    assert result.verdict.exit_code == 2
    assert result.verdict.reason.startswith("--rdma-cm was given, and RDMA_CM cannot use the pod network")


def test_latency_runs_after_bandwidth() -> None:
    cluster = pair()
    result = check(cluster, latency=True)
    assert result.verdict.exit_code == 0
    assert result.latency is not None and result.latency.typical_usec == pytest.approx(3.10)
    assert [entry[2][0] for entry in cluster.log if entry[0] == "start"] == ["ib_read_bw", "ib_read_lat"]
    assert step(result, "ib_read_lat").detail == "typical 3.10 us, average 3.13 us, min 3.02 us"


def test_selector_picks_two_pods() -> None:
    cluster = pair()
    result = check(cluster, target=PodTarget("rdma-test", selector="app.kubernetes.io/name=rdma-test"))
    assert result.verdict.exit_code == 0
    missing = check(cluster, target=PodTarget("rdma-test", selector="app=none"))
    assert missing.verdict.reason.startswith("selector 'app=none' matches 0 pod(s) in namespace rdma-test")


def _creating_cluster(**changes: Any) -> FakeCluster:
    def schedule(manifest: Mapping[str, Any]) -> FakePod:
        index = int(manifest["metadata"]["name"].rsplit("-", 1)[1])
        return pods.roce_pod(index, **changes)

    return FakeCluster([], on_create=schedule)


SPEC = TestPodSpec(image="registry.example/ack-rdma/rdma-tools:0.1.0")
CREATE = PodTarget(SPEC.namespace, manifests=build_test_objects(SPEC))
ALL_OBJECTS = ["Namespace/rdma-test", "ServiceAccount/rdma-test", "Pod/rdma-test-0", "Pod/rdma-test-1"]


def _described(manifests: list[Mapping[str, Any]]) -> list[str]:
    return [f"{m['kind']}/{m['metadata']['name']}" for m in manifests]


def test_create_makes_the_builders_objects_and_deletes_them() -> None:
    cluster = _creating_cluster()
    result = check(cluster, target=CREATE)
    assert result.verdict.exit_code == 0
    assert _described(cluster.created) == ALL_OBJECTS
    assert cluster.created[2]["spec"]["containers"][0]["resources"]["limits"]["rdma/hca"] == "1"
    assert cluster.deleted == ALL_OBJECTS[::-1]  # pods first, the namespace last
    assert cluster.log[-1] == ("delete", "Namespace/rdma-test", ())
    assert result.steps[-1].name == "Delete created objects"
    assert not cluster.pods and not cluster.objects


def test_create_cleans_up_after_a_failure_too() -> None:
    cluster = _creating_cluster(memlock="64")
    result = check(cluster, target=CREATE)
    assert result.verdict.exit_code == 2
    assert cluster.deleted == ALL_OBJECTS[::-1]


def test_create_leaves_existing_objects_alone() -> None:
    cluster = pair()
    for manifest in build_test_objects(SPEC)[:2]:  # the stack's namespace and service account
        cluster.objects[
            (manifest["kind"], manifest["metadata"].get("namespace", ""), manifest["metadata"]["name"])
        ] = manifest
    cluster.on_create = lambda manifest: pytest.fail("no pod should be created")
    result = check(cluster, target=CREATE)
    assert result.verdict.exit_code == 0
    assert "(created: nothing, all existed)" in step(result, "Test pods").detail
    assert not cluster.deleted and len(cluster.pods) == 2


def test_create_makes_only_what_is_missing() -> None:
    cluster = _creating_cluster()
    namespace = build_test_objects(SPEC)[0]
    cluster.objects[("Namespace", "", "rdma-test")] = namespace
    result = check(cluster, target=CREATE)
    assert result.verdict.exit_code == 0
    assert cluster.deleted == ALL_OBJECTS[:0:-1]  # the stack's namespace stays
    assert ("Namespace", "", "rdma-test") in cluster.objects
