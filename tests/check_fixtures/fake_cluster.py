"""STAND-IN, for tests only: an in-process cluster behind ``ack_rdma_check.transport.Cluster``.

No API server, no kubelet, no RDMA: each ``FakePod`` answers the commands the check runs in a pod from
recorded outputs (``tests/check_fixtures/``), reads its GIDs by running the check's real sysfs probe over a
real-layout tree on disk, and plays perftest's server/client protocol: a client is refused until the
server is listening (optionally for a few attempts), then gets the recorded report. Commands named in
``FakePod.real_tools`` run for real on this machine (the Debian ``perftest`` binaries). Anything else the
check runs is a test error, raised as such.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ack_rdma_check import devinfo, gid, memlock
from ack_rdma_check.transport import ExecResult, ExecTimeoutError, PodRef, PodState

FIXTURES = Path(__file__).parent
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


def fixture(relative: str) -> str:
    return (FIXTURES / relative).read_text(encoding="ascii")


def refused(address: str, port: int) -> ExecResult:
    """What perftest >= 4.5 prints when nothing listens at the server's port."""
    return ExecResult(
        1, "", fixture("perftest/err_connect_refused.txt").replace("192.168.3.21:18515", f"{address}:{port}")
    )


@dataclass
class PerftestBehaviour:
    """How a perftest server in this pod and a client talking to it fare."""

    client: ExecResult
    server: ExecResult
    refused_attempts: int = 0
    """Client attempts refused before the server listens (the server process is still starting)."""
    server_dies: ExecResult | None = None
    """The server exits at once with this result (no device, memlock, ...)."""


@dataclass
class FakePod:
    name: str
    node: str | None
    pod_ip: str | None
    namespace: str = "rdma-test"
    host_network: bool = False
    phase: str = "Running"
    problem: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    dev_infiniband: tuple[str, ...] = ("rdma_cm", "umad0", "uverbs0")
    ibv_devinfo: ExecResult = field(default_factory=lambda: ExecResult(0, "", ""))
    memlock: str = "unlimited"
    sysfs_root: Path | None = None
    addresses: Mapping[str, str] = field(default_factory=dict)
    """netdev -> ``address/prefix`` for ``ip -4 -o addr show dev``; host-network pods see the node's."""
    tools: Mapping[str, PerftestBehaviour] = field(default_factory=dict)
    """``ib_read_bw`` / ``ib_read_lat`` behaviour when this pod is the server."""
    real_tools: frozenset[str] = frozenset()

    @property
    def ref(self) -> PodRef:
        return PodRef(self.namespace, self.name)

    def state(self) -> PodState:
        return PodState(self.ref, self.phase, self.node, self.pod_ip, self.host_network, self.problem)

    def listens_on(self, address: str) -> bool:
        return address == self.pod_ip or any(
            cidr.split("/")[0] == address for cidr in self.addresses.values()
        )


class FakeServer:
    """A perftest server started in a fake pod."""

    def __init__(self, pod: FakePod, argv: Sequence[str], behaviour: PerftestBehaviour) -> None:
        self.pod = pod
        self.argv = list(argv)
        self.behaviour = behaviour
        self.refusals_left = behaviour.refused_attempts
        self.result: ExecResult | None = behaviour.server_dies
        self.stopped = False

    @property
    def port(self) -> int:
        return int(self.argv[self.argv.index("-p") + 1])

    def serve(self, client_argv: Sequence[str]) -> ExecResult:
        address = client_argv[-1]
        if self.result is not None or self.refusals_left > 0:
            self.refusals_left -= 1
            return refused(address, self.port)
        self.result = self.behaviour.server
        return self.behaviour.client

    def wait(self, timeout: float) -> ExecResult | None:
        # Nothing changes a fake server while the caller waits, so waiting returns at once.
        return self.result

    def stop(self) -> ExecResult:
        self.stopped = True
        if self.result is None:
            self.result = ExecResult(143, "", "")
        return self.result


class RealBackground:
    """A real process on this machine standing for a server in a pod (for ``real_tools``)."""

    def __init__(self, argv: Sequence[str]) -> None:
        self._process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait(self, timeout: float) -> ExecResult | None:
        try:
            stdout, stderr = self._process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return ExecResult(self._process.returncode, stdout, stderr)

    def stop(self) -> ExecResult:
        if self._process.poll() is None:
            self._process.terminate()
        stdout, stderr = self._process.communicate()
        return ExecResult(self._process.returncode, stdout, stderr)


class FakeCluster:
    def __init__(
        self, pods: Sequence[FakePod], on_create: Callable[[Mapping[str, Any]], FakePod] | None = None
    ):
        self.pods = {pod.ref: pod for pod in pods}
        self.on_create = on_create
        self.log: list[tuple[str, str, tuple[str, ...]]] = []
        """(operation, pod name, argv) in call order."""
        self.servers: list[FakeServer] = []
        self.objects: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        """Namespaces and network policies by (kind, namespace, name)."""
        self.created: list[Mapping[str, Any]] = []
        self.deleted: list[str] = []
        """``Kind/name`` of each deleted object, in order."""

    # -- pods ---------------------------------------------------------------------------------------------
    def read(self, pod: PodRef) -> PodState | None:
        found = self.pods.get(pod)
        return found.state() if found else None

    def find(self, namespace: str, selector: str) -> list[PodState]:
        wanted = dict(term.split("=", 1) for term in selector.split(",") if term)
        return [
            pod.state()
            for pod in self.pods.values()
            if pod.namespace == namespace and all(pod.labels.get(k) == v for k, v in wanted.items())
        ]

    def exists(self, manifest: Mapping[str, Any]) -> bool:
        if manifest["kind"] == "Pod":
            return _ref(manifest) in self.pods
        return _key(manifest) in self.objects

    def create(self, manifest: Mapping[str, Any]) -> None:
        assert not self.exists(manifest), f"{_key(manifest)} exists already"
        if manifest["kind"] == "Pod":
            assert self.on_create is not None, "this fake cluster does not expect pods to be created"
            pod = self.on_create(manifest)
            self.pods[pod.ref] = pod
        else:
            self.objects[_key(manifest)] = manifest
        self.created.append(manifest)
        self.log.append(("create", _describe(manifest), ()))

    def delete(self, manifest: Mapping[str, Any]) -> None:
        if manifest["kind"] == "Pod":
            self.pods.pop(_ref(manifest))
        else:
            self.objects.pop(_key(manifest))
        self.deleted.append(_describe(manifest))
        self.log.append(("delete", _describe(manifest), ()))

    def wait_running(self, pods: Sequence[PodRef], timeout: float) -> list[PodState]:
        return [self.pods[ref].state() for ref in pods]

    # -- exec ---------------------------------------------------------------------------------------------
    def run(self, pod: PodRef, argv: Sequence[str], timeout: float) -> ExecResult:
        fake = self.pods[pod]
        self.log.append(("run", fake.name, tuple(argv)))
        if argv[0] in fake.real_tools:
            return _run_real(argv, timeout)
        if argv[0] in {"ib_read_bw", "ib_read_lat"}:
            return self._client(argv)
        return _answer(fake, list(argv))

    def start(self, pod: PodRef, argv: Sequence[str]) -> FakeServer | RealBackground:
        fake = self.pods[pod]
        self.log.append(("start", fake.name, tuple(argv)))
        if argv[0] in fake.real_tools:
            return RealBackground(argv)
        server = FakeServer(fake, argv, fake.tools[argv[0]])
        self.servers.append(server)
        return server

    def _client(self, argv: Sequence[str]) -> ExecResult:
        address, port = argv[-1], int(argv[list(argv).index("-p") + 1])
        assert _IPV4.match(address), f"client without a server address: {argv}"
        for server in self.servers:
            if server.argv[0] == argv[0] and server.pod.listens_on(address) and server.port == port:
                return server.serve(argv)
        return refused(address, port)


def _ref(manifest: Mapping[str, Any]) -> PodRef:
    return PodRef(manifest["metadata"]["namespace"], manifest["metadata"]["name"])


def _key(manifest: Mapping[str, Any]) -> tuple[str, str, str]:
    metadata = manifest["metadata"]
    return manifest["kind"], metadata.get("namespace", ""), metadata["name"]


def _describe(manifest: Mapping[str, Any]) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


def _run_real(argv: Sequence[str], timeout: float) -> ExecResult:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise ExecTimeoutError(
            argv, timeout, ExecResult(-1, str(error.stdout or ""), str(error.stderr or ""))
        ) from None
    return ExecResult(done.returncode, done.stdout, done.stderr)


def _answer(pod: FakePod, argv: list[str]) -> ExecResult:
    if argv == ["ls", "-1", "/dev/infiniband"]:
        if not pod.dev_infiniband:
            return ExecResult(2, "", "ls: cannot access '/dev/infiniband': No such file or directory\n")
        return ExecResult(0, "".join(f"{name}\n" for name in pod.dev_infiniband), "")
    if argv == devinfo.ARGV:
        return pod.ibv_devinfo
    if argv == memlock.ARGV:
        return ExecResult(0, f"{pod.memlock}\n", "")
    if argv == gid.probe_argv():
        assert pod.sysfs_root is not None, f"pod {pod.name} has no sysfs tree"
        return _run_real(gid.probe_argv(str(pod.sysfs_root)), 10)
    if argv[:6] == ["ip", "-4", "-o", "addr", "show", "dev"]:
        netdev = argv[6]
        if netdev not in pod.addresses:
            return ExecResult(1, "", f'Device "{netdev}" does not exist.\n')
        cidr = pod.addresses[netdev]
        line = (
            f"7: {netdev}    inet {cidr} brd 192.168.15.255 scope global {netdev}\\       valid_lft forever"
        )
        return ExecResult(0, f"{line} preferred_lft forever\n", "")
    raise AssertionError(f"the fake pod {pod.name} was asked to run an unexpected command: {argv}")
