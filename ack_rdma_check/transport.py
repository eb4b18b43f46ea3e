"""How the check talks to the cluster: read pods, create and delete the test objects, run commands in pods.

``kube.KubeCluster`` implements it with the official Kubernetes client; the orchestration only sees this
interface, so it runs unchanged against an in-process stand-in in the tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Kubeconfig:
    """Where the kubeconfig came from (for messages) and either its path(s) or its parsed content."""

    origin: str
    path: str | None = None
    content: Mapping[str, Any] | None = None


@dataclass(frozen=True, order=True)
class PodRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class PodState:
    ref: PodRef
    phase: str
    """``Pending``, ``Running``, ``Succeeded``, ``Failed`` or ``Unknown``."""
    node: str | None
    pod_ip: str | None
    host_network: bool
    problem: str | None = None
    """Why the pod is not running yet: the scheduler's message or a container's waiting reason."""

    @property
    def running(self) -> bool:
        return self.phase == "Running"


@dataclass(frozen=True)
class ExecResult:
    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class ExecTimeoutError(Exception):
    """The command did not finish in time; ``partial`` holds what it printed so far."""

    def __init__(self, argv: Sequence[str], timeout: float, partial: ExecResult) -> None:
        super().__init__(f"{' '.join(argv)} did not finish within {timeout:g} s")
        self.partial = partial


class Background(Protocol):
    """A command left running in a pod (the perftest server)."""

    def wait(self, timeout: float) -> ExecResult | None:
        """The result once the command has exited, or None if it is still running after ``timeout`` s."""
        ...

    def stop(self) -> ExecResult:
        """Ends the command if it still runs and returns what it printed."""
        ...


class Cluster(Protocol):
    def read(self, pod: PodRef) -> PodState | None:
        """The pod's state, or None if it does not exist."""
        ...

    def find(self, namespace: str, selector: str) -> list[PodState]:
        """Pods matching a label selector."""
        ...

    def exists(self, manifest: Mapping[str, Any]) -> bool:
        """Whether the object (a Namespace, NetworkPolicy or Pod manifest) exists."""
        ...

    def create(self, manifest: Mapping[str, Any]) -> None: ...

    def delete(self, manifest: Mapping[str, Any]) -> None: ...

    def wait_running(self, pods: Sequence[PodRef], timeout: float) -> list[PodState]:
        """The pods' states as soon as all run, or as they are when ``timeout`` s pass (or one fails)."""
        ...

    def run(self, pod: PodRef, argv: Sequence[str], timeout: float) -> ExecResult:
        """Runs ``argv`` in the pod's first container; raises ExecTimeoutError."""
        ...

    def start(self, pod: PodRef, argv: Sequence[str]) -> Background: ...
