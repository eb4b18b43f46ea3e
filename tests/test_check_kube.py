"""The Kubernetes transport with the real ``kubernetes`` client library, against the API server stand-in
(tests/check_fixtures/fake_apiserver.py): pod reads, watch, create/delete, exec over the websocket stream."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml

from ack_rdma_check import kube
from ack_rdma_check.errors import SetupError, UsageError
from ack_rdma_check.perftest_errors import Failure, diagnose
from ack_rdma_check.transport import ExecResult, ExecTimeoutError, Kubeconfig, PodRef, PodState
from components.k8s_objects import TestPodSpec, build_test_objects
from tests.check_fixtures.fake_apiserver import ExecReply, FakeApiServer, pod_json
from tests.check_fixtures.fake_cluster import fixture

ENTRY_POINT = Path(sys.executable).parent / "ack-rdma-check"
SERVER = PodRef("rdma-test", "rdma-test-0")
WRAPPER = ["sh", "-c", 'echo "$$"; exec "$@"', "ack-rdma-check"]


def unwrap(command: list[str]) -> list[str]:
    """Every command runs through sh so the transport learns its PID (printed first) and can kill it."""
    assert command[:4] == WRAPPER, command
    return command[4:]


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    yield server
    server.close()


def connect(api: FakeApiServer) -> kube.KubeCluster:
    return kube.connect(Kubeconfig("the test kubeconfig", content=api.kubeconfig()))


def test_read_running_and_missing_pods(api: FakeApiServer) -> None:
    api.pods[("rdma-test", "rdma-test-0")] = pod_json("rdma-test-0", "Running", node="n1", ip="172.20.1.14")
    cluster = connect(api)
    assert cluster.read(SERVER) == PodState(SERVER, "Running", "n1", "172.20.1.14", False, None)
    assert cluster.read(PodRef("rdma-test", "nope")) is None


def test_pending_and_waiting_pods_say_why(api: FakeApiServer) -> None:
    unschedulable = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient rdma/hca.",
    }
    api.pods[("rdma-test", "a")] = pod_json("a", "Pending", conditions=[unschedulable])
    waiting_reason = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "tools"'}
    waiting = {
        "name": "rdma-test",
        "ready": False,
        "restartCount": 0,
        "image": "tools",
        "imageID": "",
        "state": {"waiting": waiting_reason},
    }
    api.pods[("rdma-test", "b")] = pod_json("b", "Pending", node="n2", containerStatuses=[waiting])
    cluster = connect(api)
    a = cluster.read(PodRef("rdma-test", "a"))
    b = cluster.read(PodRef("rdma-test", "b"))
    assert a is not None and a.problem == "0/3 nodes are available: 3 Insufficient rdma/hca."
    assert (
        b is not None and b.problem == 'container rdma-test ImagePullBackOff: Back-off pulling image "tools"'
    )


def test_wait_running_follows_the_watch(api: FakeApiServer) -> None:
    api.pods[("rdma-test", "rdma-test-0")] = pod_json("rdma-test-0", "Pending")
    api.pending_updates[("rdma-test", "rdma-test-0")] = [
        pod_json("rdma-test-0", "Pending", node="n1"),
        pod_json("rdma-test-0", "Running", node="n1", ip="172.20.1.14"),
    ]
    started = time.monotonic()
    [state] = connect(api).wait_running([SERVER], timeout=10)
    assert state.running and state.pod_ip == "172.20.1.14"
    assert time.monotonic() - started < 5  # the event ended the wait, not the timeout
    assert ("GET", "/api/v1/namespaces/rdma-test/pods") in api.requests


def test_wait_running_gives_up_at_the_deadline(api: FakeApiServer) -> None:
    api.pods[("rdma-test", "rdma-test-0")] = pod_json("rdma-test-0", "Pending")
    [state] = connect(api).wait_running(
        [
            SERVER,
        ][:1],
        timeout=0.5,
    )
    assert state.phase == "Pending"
    missing = connect(api).wait_running([PodRef("rdma-test", "gone")], timeout=0.5)
    assert missing[0].phase == "Missing"


def test_create_find_and_delete_the_test_objects(api: FakeApiServer) -> None:
    cluster = connect(api)
    namespace, account, policy, *test_pods = build_test_objects(
        TestPodSpec(image="registry.example/ack-rdma/rdma-tools:0.1.0", network_policy=True)
    )
    assert not any(cluster.exists(manifest) for manifest in (namespace, account, policy, *test_pods))
    for manifest in (namespace, account, policy, *test_pods):
        cluster.create(manifest)
    assert all(cluster.exists(manifest) for manifest in (namespace, account, policy, *test_pods))
    assert api.objects["/api/v1/namespaces/rdma-test"]["metadata"]["name"] == "rdma-test"
    stored_account = api.objects["/api/v1/namespaces/rdma-test/serviceaccounts/rdma-test"]
    assert stored_account["automountServiceAccountToken"] is False
    stored_policy = api.objects["/apis/networking.k8s.io/v1/namespaces/rdma-test/networkpolicies/rdma-test"]
    assert stored_policy["spec"]["policyTypes"] == ["Ingress"]
    stored = api.pods[("rdma-test", "rdma-test-0")]
    assert stored["spec"]["containers"][0]["resources"]["limits"]["rdma/hca"] == "1"
    assert stored["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    found = cluster.find("rdma-test", "app.kubernetes.io/name=rdma-test")
    assert sorted(state.ref.name for state in found) == ["rdma-test-0", "rdma-test-1"]
    for manifest in (*test_pods, policy, account, namespace):
        cluster.delete(manifest)
    assert not api.pods and not api.objects


def test_exec_returns_output_and_exit_code(api: FakeApiServer) -> None:
    seen: list[list[str]] = []

    def handler(namespace: str, name: str, command: list[str]) -> ExecReply:
        seen.append(unwrap(command))
        return ExecReply(stdout="4242\nuverbs0\n", stderr="warning\n", rc=3)

    api.exec_handler = handler
    argv = ["sh", "-c", 'cd "$1" && exec grep -H . x 2>/dev/null', "probe", "/sys"]
    assert connect(api).run(SERVER, argv, timeout=10) == ExecResult(3, "uverbs0\n", "warning\n")
    assert seen == [argv]  # argv arrives intact, quotes and all


def test_exec_of_a_missing_binary_reads_as_not_installed(api: FakeApiServer) -> None:
    message = fixture("perftest/err_not_installed.txt").strip()
    api.exec_handler = lambda namespace, name, command: ExecReply(not_started=message)
    result = connect(api).run(SERVER, ["ib_read_bw"], timeout=10)
    assert result.rc == 127
    diagnosis = diagnose(result.output)
    assert diagnosis is not None and diagnosis.failure is Failure.NOT_INSTALLED


def test_exec_timeout_kills_the_command_and_keeps_what_it_printed(api: FakeApiServer) -> None:
    killed = threading.Event()
    commands: list[list[str]] = []

    def handler(namespace: str, name: str, command: list[str]) -> ExecReply:
        commands.append(unwrap(command))
        if unwrap(command)[0] == "kill":
            killed.set()
            return ExecReply(stdout="4243\n")
        return ExecReply(stdout="4242\npartial\n", hold=killed)

    api.exec_handler = handler
    with pytest.raises(ExecTimeoutError) as caught:
        connect(api).run(SERVER, ["ib_read_bw", "172.20.1.14"], timeout=0.3)
    assert caught.value.partial.stdout == "partial\n"
    assert "ib_read_bw 172.20.1.14 did not finish within 0.3 s" in str(caught.value)
    assert commands == [["ib_read_bw", "172.20.1.14"], ["kill", "4242"]]


def test_background_server_is_stopped_by_its_pid(api: FakeApiServer) -> None:
    running = threading.Event()
    commands: list[list[str]] = []

    def handler(namespace: str, name: str, command: list[str]) -> ExecReply:
        commands.append(unwrap(command))
        if unwrap(command)[0] == "kill":
            running.set()
            return ExecReply(stdout="4243\n")
        return ExecReply(stdout="4242\n", hold=running)

    api.exec_handler = handler
    server = connect(api).start(SERVER, ["ib_read_bw", "-q", "30"])
    assert server.wait(0.2) is None
    assert server.stop() == ExecResult(143, "", "")
    assert commands == [["ib_read_bw", "-q", "30"], ["kill", "4242"]]


def test_background_server_that_ends_by_itself(api: FakeApiServer) -> None:
    report = fixture("perftest/read_bw_server_roce_q30_gbits.txt")
    api.exec_handler = lambda namespace, name, command: ExecReply(stdout=f"4242\n{report}")
    server = connect(api).start(SERVER, ["ib_read_bw"])
    assert server.wait(10) == ExecResult(0, report, "")
    assert server.stop() == ExecResult(0, report, "")


def test_expired_credentials_name_the_fix(api: FakeApiServer) -> None:
    cluster = connect(api)
    api.unauthorized = True  # the credentials expire during the check
    with pytest.raises(SetupError) as caught:
        cluster.read(SERVER)
    assert caught.value.reason.startswith(
        "Kubernetes API: read pod rdma-test/rdma-test-0 failed (401 Unauthorized)"
    )
    assert "pulumi stack output kubeconfig --show-secrets" in caught.value.reason


def test_credentials_refused_at_the_first_request(api: FakeApiServer) -> None:
    api.unauthorized = True
    with pytest.raises(SetupError) as caught:
        connect(api)
    assert caught.value.reason == (
        f"The Kubernetes API server {api.url} refused the credentials of the kubeconfig the test "
        "kubeconfig (401 Unauthorized): the kubeconfig's credentials were rejected, most likely expired: "
        "take a fresh one with `pulumi stack output kubeconfig --show-secrets` after `pulumi up` "
        "(or `pulumi refresh`)"
    )
    assert api.requests == [("GET", "/version/")]


def test_api_server_that_is_not_there() -> None:
    closed = FakeApiServer()
    kubeconfig = closed.kubeconfig()
    closed.close()
    with pytest.raises(SetupError) as caught:
        kube.connect(Kubeconfig("from KUBECONFIG", content=kubeconfig))
    assert caught.value.reason == (
        f"Cannot reach the Kubernetes API server {closed.url} named by the kubeconfig from KUBECONFIG: "
        "Failed to establish a new connection: [Errno 111] Connection refused. Check that this machine can "
        "reach it (the cluster's API server needs a public endpoint, or run the check from inside the VPC) "
        "and that the kubeconfig is the cluster's current one."
    )


def test_network_reason_drops_urllib3_reprs() -> None:
    closed = FakeApiServer()
    closed.close()
    with pytest.raises(urllib3.exceptions.MaxRetryError) as caught:
        urllib3.PoolManager(retries=1).request("GET", f"{closed.url}/api/v1/namespaces/rdma-test/pods")
    assert "HTTPConnection(host=" in str(caught.value)
    assert kube.network_reason(caught.value) == (
        "Failed to establish a new connection: [Errno 111] Connection refused"
    )


def exec_plugin_kubeconfig(api: FakeApiServer, command: str) -> dict[str, Any]:
    kubeconfig = api.kubeconfig()
    kubeconfig["users"][0]["user"] = {
        "exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": command}
    }
    return kubeconfig


def test_failing_exec_credential_plugin_is_named_with_its_message(api: FakeApiServer, tmp_path: Path) -> None:
    plugin = tmp_path / "ack-credentials"
    plugin.write_text("#!/bin/sh\necho 'error: the RAM user has no AccessKey configured' >&2\nexit 1\n")
    plugin.chmod(0o755)
    with pytest.raises(UsageError) as caught:
        kube.connect(Kubeconfig("the test kubeconfig", content=exec_plugin_kubeconfig(api, str(plugin))))
    assert str(caught.value) == (
        "The kubeconfig the test kubeconfig cannot be used: its exec credential plugin (user.exec) failed: "
        "exec: process returned 1. error: the RAM user has no AccessKey configured. Make the plugin's "
        "command work (run it by hand to see why), or use a kubeconfig with a certificate or token such as "
        "the stack's kubeconfig output."
    )
    assert api.requests == [], "no request goes out without the credentials"


def test_missing_exec_credential_plugin_from_the_command_line(api: FakeApiServer, tmp_path: Path) -> None:
    """In a real process: no ``ERROR:root:`` line and no urllib3 retry warnings, one paragraph, exit 2."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(exec_plugin_kubeconfig(api, "aliyun")), encoding="utf-8")
    done = subprocess.run(
        [str(ENTRY_POINT), "--kubeconfig", str(kubeconfig), "--selector", "app=rdma-test"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"ack-rdma-check: The kubeconfig --kubeconfig {kubeconfig} cannot be used: its exec credential "
        "plugin (user.exec) failed: [Errno 2] No such file or directory: 'aliyun'. Make the plugin's command "
        "work (run it by hand to see why), or use a kubeconfig with a certificate or token such as the "
        "stack's kubeconfig output.\n"
    )


def test_unreachable_server_from_the_command_line_is_reported_once(tmp_path: Path) -> None:
    closed = FakeApiServer()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(closed.kubeconfig()), encoding="utf-8")
    closed.close()
    done = subprocess.run(
        [str(ENTRY_POINT), "--kubeconfig", str(kubeconfig), "--selector", "app=rdma-test"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"ack-rdma-check: Cannot reach the Kubernetes API server {closed.url} ")
    assert done.stderr.count("\n") == 1 and done.stderr.count("Connection refused") == 1
    assert "HTTPConnectionPool" not in done.stderr and "Max retries" not in done.stderr


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ('{"metadata":{},"status":"Success"}', (0, "")),
        (
            '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code",'
            '"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}',
            (7, ""),
        ),
        (
            '{"status":"Failure","message":"container not found (\\"rdma-test\\")"}',
            (127, 'container not found ("rdma-test")\n'),
        ),
        ("", (-1, "exec stream closed without an exit status\n")),
    ],
)
def test_exit_status(status: str, expected: tuple[int, str]) -> None:
    assert kube.exit_status(status) == expected
