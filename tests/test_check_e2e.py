"""The whole command, real transport included: ``ack-rdma-check`` with the official Kubernetes client talking
to the API server stand-in, whose exec requests are answered by the stand-in pods of fake_cluster.py."""

from __future__ import annotations

import io
import itertools
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ack_rdma_check import cli
from ack_rdma_check.transport import PodRef
from tests.check_fixtures import pods, stack
from tests.check_fixtures.fake_apiserver import ExecReply, FakeApiServer, pod_json
from tests.check_fixtures.fake_cluster import FakeCluster, FakePod, FakeServer

WRAPPER = ["sh", "-c", 'echo "$$"; exec "$@"', "ack-rdma-check"]
IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")


class PodsBehindTheApi:
    """Answers the API server's exec requests with the stand-in pods, keeping PIDs for ``kill``."""

    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster
        self._pids = itertools.count(4000)
        self._servers: dict[int, tuple[FakeServer, threading.Event]] = {}

    def __call__(self, namespace: str, name: str, command: list[str]) -> ExecReply:
        assert command[:4] == WRAPPER, command
        argv, pid, ref = command[4:], next(self._pids), PodRef(namespace, name)
        if argv[0] == "kill":
            server, ended = self._servers[int(argv[1])]
            server.stop()
            ended.set()
            return ExecReply(stdout=f"{pid}\n")
        if argv[0].startswith("ib_read_") and not IPV4.fullmatch(argv[-1]):  # a server: no address argument
            started = self.cluster.start(ref, argv)
            assert isinstance(started, FakeServer)
            ended = threading.Event()
            self._servers[pid] = (started, ended)
            return ExecReply(stdout=f"{pid}\n", hold=ended, then=lambda: _reply(started))
        result = self.cluster.run(ref, argv, 30)
        for server, ended in self._servers.values():
            if server.result is not None:
                ended.set()  # the client was served: the server prints its report and exits
        return ExecReply(stdout=f"{pid}\n{result.stdout}", stderr=result.stderr, rc=result.rc)


def _reply(server: FakeServer) -> ExecReply:
    assert server.result is not None
    return ExecReply(stdout=server.result.stdout, stderr=server.result.stderr, rc=server.result.rc)


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    yield server
    server.close()


def publish(api: FakeApiServer, fake_pods: list[FakePod]) -> FakeCluster:
    cluster = FakeCluster(fake_pods)
    for pod in fake_pods:
        api.pods[(pod.namespace, pod.name)] = pod_json(
            pod.name, pod.phase, node=pod.node, ip=pod.pod_ip, host_network=pod.host_network
        )
    api.exec_handler = PodsBehindTheApi(cluster)
    return cluster


def run_cli(api: FakeApiServer, tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(api.kubeconfig()), encoding="utf-8")
    outputs = stack.write_outputs(tmp_path / "outputs.json", kubeconfig=None)
    out, err = io.StringIO(), io.StringIO()
    rc = cli.run(
        ["--kubeconfig", str(kubeconfig), "--outputs", str(outputs), *extra], {}, stdout=out, stderr=err
    )
    return rc, out.getvalue(), err.getvalue()


def test_pass_through_the_real_kubernetes_client(api: FakeApiServer, tmp_path: Path) -> None:
    cluster = publish(
        api, [pods.roce_pod(0, tools={"ib_read_bw": pods.bandwidth(refused_attempts=1)}), pods.roce_pod(1)]
    )
    rc, stdout, stderr = run_cli(api, tmp_path, "--json", "--connect-timeout", "10")
    assert rc == 0, stderr
    document = json.loads(stdout)
    assert document["bandwidth"]["averageGbits"] == pytest.approx(46.05)
    assert document["run"]["serverCommand"] == [
        "ib_read_bw",
        "-q",
        "30",
        "-F",
        "--report_gbits",
        "-p",
        "18515",
        "-d",
        "mlx5_bond_0",
        "-x",
        "3",
    ]
    assert "(2 client attempts)" in document["steps"][-1]["detail"]
    assert cluster.servers[0].result is not None and cluster.servers[0].result.rc == 0


def test_rdma_cm_on_host_network_pods(api: FakeApiServer, tmp_path: Path) -> None:
    publish(api, [pods.roce_pod(0, host_network=True), pods.roce_pod(1, host_network=True)])
    rc, stdout, stderr = run_cli(api, tmp_path, "--rdma-cm", "--json")
    assert rc == 0, stderr
    assert json.loads(stdout)["run"]["clientCommand"][-2:] == ["-R", pods.NODE_IPS[0]]


def test_unreachable_server_is_stopped_by_its_pid(api: FakeApiServer, tmp_path: Path) -> None:
    deaf = pods.bandwidth(refused_attempts=10**9)
    cluster = publish(api, [pods.roce_pod(0, tools={"ib_read_bw": deaf}), pods.roce_pod(1)])
    rc, stdout, _ = run_cli(api, tmp_path, "--connect-timeout", "0.5")
    assert rc == 2
    assert (
        "SETUP ERROR: server unreachable after 1 attempts in 0.5 s: ib_read_bw client in pod rdma-test-1"
        in stdout
    )
    assert repr(f"Couldn't connect to {pods.POD_IPS[0]}:18515") in stdout
    assert cluster.servers[0].stopped  # killed through `kill <pid>` in the pod


def test_erdma_compat_from_the_pod_network_runs_with_the_eri_gid(api: FakeApiServer, tmp_path: Path) -> None:
    publish(api, [pods.erdma_compat_pod(i, host_network=False, ipv6_on_eth0=i == 0) for i in (0, 1)])
    rc, stdout, stderr = run_cli(api, tmp_path, "--json")
    assert rc == 1, stderr  # a full run: 28.31 Gbit/s measured against the stack's 40
    run = json.loads(stdout)["run"]
    assert run["serverCommand"][-4:] == ["-d", "erdma_0", "-x", "2"]  # the server's IPv4 GID index
    assert run["clientCommand"][-5:] == ["-d", "erdma_0", "-x", "1", pods.POD_IPS[0]]


def test_erdma_default_mode_from_the_pod_network_is_explained(api: FakeApiServer, tmp_path: Path) -> None:
    publish(api, [pods.erdma_pod(i, host_network=False) for i in (0, 1)])
    rc, stdout, _ = run_cli(api, tmp_path)
    assert rc == 2
    assert (
        "the pod's own netdev (eth0, a veth on the pod network) is not the ERI (eth0 on the node)" in stdout
    )
    assert "agent.preferDriver to compat" in stdout
