"""The cluster transport over the official Kubernetes client: pods through CoreV1Api, commands through the
exec subresource's websocket stream (``kubernetes.stream``).

Exec status arrives on the stream's error channel as a ``Status`` object: ``Success``, or ``Failure`` with the
exit code in ``details.causes[reason=ExitCode]``; a command the runtime cannot start at all fails without
such a cause, which is passed on as exit code 127 with the runtime's message on stderr."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import urllib3
from kubernetes import watch
from kubernetes.client import (
    ApiClient,
    ApiException,
    Configuration,
    CoreV1Api,
    NetworkingV1Api,
    V1Namespace,
    V1NetworkPolicy,
    V1Pod,
    V1ServiceAccount,
    VersionApi,
)
from kubernetes.config.kube_config import new_client_from_config, new_client_from_config_dict
from kubernetes.stream import stream
from kubernetes.stream.ws_client import ERROR_CHANNEL, STDERR_CHANNEL, STDOUT_CHANNEL
from urllib3.exceptions import ConnectTimeoutError
from websocket import WebSocketException

from ack_rdma_check.errors import SetupError, UsageError
from ack_rdma_check.input_files import one_line
from ack_rdma_check.transport import ExecResult, ExecTimeoutError, Kubeconfig, PodRef, PodState

_POLL_SECONDS = 0.5
_STOP_SECONDS = 10.0
_CLOSE_SECONDS = 1.0
"""How long closing a websocket waits for the server's close frame."""
_EXIT_NOT_STARTED = 127
_RETRIES = 1
"""One retry for a glitch; urllib3's default 3 made an unreachable server cost four connect timeouts."""
_PROBE_TIMEOUT = (5.0, 10.0)
"""Connect and read seconds for the first request."""
_CONNECTION_REPR = re.compile(
    r"^\(?<?[\w.]*Connection(?:Pool)?(?:\(host='[^']*', port=\d+\)| object at 0x[0-9a-f]+)>?[:,] '?"
)
_HINTS = {
    401: "the kubeconfig's credentials were rejected, most likely expired: take a fresh one with "
    "`pulumi stack output kubeconfig --show-secrets` after `pulumi up` (or `pulumi refresh`)",
    403: "the kubeconfig's user is not allowed to do this",
}
# `$$` of the shell is the PID the command keeps after `exec`: printed first, it lets stop() kill it.
_WITH_PID = 'echo "$$"; exec "$@"'


def connect(kubeconfig: Kubeconfig) -> KubeCluster:
    configuration = Configuration()
    configuration.retries = _RETRIES
    with _logged_errors() as plugin_errors:
        try:
            # kubernetes.config, .watch and .stream carry no annotations; their results are typed on receipt.
            if kubeconfig.content is not None:
                new_client_from_config_dict(  # type: ignore[no-untyped-call]
                    dict(kubeconfig.content), persist_config=False, client_configuration=configuration
                )
            else:
                new_client_from_config(  # type: ignore[no-untyped-call]
                    kubeconfig.path, persist_config=False, client_configuration=configuration
                )
        # Loading fails in as many ways as a kubeconfig can be wrong (YAML, schema, missing context, files);
        # all of them are bad input and get the same one-paragraph answer.
        except Exception as error:
            raise UsageError(
                f"The kubeconfig {kubeconfig.origin} cannot be used: {one_line(str(error))}. Give a "
                "valid kubeconfig with --kubeconfig PATH or KUBECONFIG, or the stack outputs with "
                "--outputs/--stack."
            ) from None
    if plugin_errors:
        # The client logs a failing exec credential plugin and goes on without credentials.
        raise UsageError(
            f"The kubeconfig {kubeconfig.origin} cannot be used: its exec credential plugin (user.exec) "
            f"failed: {one_line(plugin_errors[0])}. Make the plugin's command work (run it by hand to see "
            "why), or use a kubeconfig with a certificate or token such as the stack's kubeconfig output."
        )
    cluster = KubeCluster(ApiClient(configuration))
    cluster.check_reachable(kubeconfig.origin)
    return cluster


@contextmanager
def _logged_errors() -> Iterator[list[str]]:
    """Errors logged on the root logger meanwhile, kept from stderr (where logging's default handler, which
    ``logging.error`` installs when there is none, would print them as ``ERROR:root:``)."""
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    root = logging.getLogger()
    handler = Keep(logging.ERROR)
    root.addHandler(handler)
    try:
        yield messages
    finally:
        root.removeHandler(handler)


def network_reason(error: BaseException) -> str:
    """The innermost cause of a connection failure, without urllib3's pool and connection reprs."""
    while isinstance(getattr(error, "reason", None), BaseException):
        error = error.reason  # type: ignore[attr-defined]  # MaxRetryError, ProtocolError wrap the cause
    text = str(error.args[-1]) if isinstance(error, ConnectTimeoutError) and error.args else str(error)
    return one_line(_CONNECTION_REPR.sub("", text))


@contextmanager
def _api(what: str) -> Iterator[None]:
    try:
        yield
    except ApiException as error:
        hint = _HINTS.get(error.status or 0)
        detail = f"{error.status} {error.reason}" if error.status else str(error.reason)
        raise SetupError(
            f"Kubernetes API: {what} failed ({detail.strip()})" + (f": {hint}" if hint else "")
        ) from None
    except (urllib3.exceptions.HTTPError, WebSocketException, OSError) as error:
        raise SetupError(
            f"cannot reach the Kubernetes API server to {what}: {network_reason(error)}"
        ) from None


class KubeCluster:
    def __init__(self, client: ApiClient) -> None:
        self._host = client.configuration.host
        self._version = VersionApi(client)
        self._core = core = CoreV1Api(client)
        networking = NetworkingV1Api(client)
        # The kinds --create makes (build_test_objects): name and namespace in, the API call out.
        self._kinds = {
            "Namespace": _Kind(
                read=lambda name, _: core.read_namespace(name),
                create=lambda _, m: core.create_namespace(_model(V1Namespace, m)),
                delete=lambda name, _: core.delete_namespace(name),
            ),
            "ServiceAccount": _Kind(
                read=core.read_namespaced_service_account,
                create=lambda ns, m: core.create_namespaced_service_account(ns, _model(V1ServiceAccount, m)),
                delete=core.delete_namespaced_service_account,
            ),
            "NetworkPolicy": _Kind(
                read=networking.read_namespaced_network_policy,
                create=lambda ns, m: networking.create_namespaced_network_policy(
                    ns, _model(V1NetworkPolicy, m)
                ),
                delete=networking.delete_namespaced_network_policy,
            ),
            "Pod": _Kind(
                read=core.read_namespaced_pod,
                create=lambda ns, m: core.create_namespaced_pod(ns, _model(V1Pod, m)),
                delete=core.delete_namespaced_pod,
            ),
        }

    def check_reachable(self, origin: str) -> None:
        """One request before anything else, so that a server that cannot be reached, or that refuses the
        credentials, is reported once, before any step, naming the server and where its address came from."""
        try:
            self._version.get_code(_request_timeout=_PROBE_TIMEOUT)
        except ApiException as error:
            if error.status == 401:
                raise SetupError(
                    f"The Kubernetes API server {self._host} refused the credentials of the kubeconfig "
                    f"{origin} (401 Unauthorized): {_HINTS[401]}"
                ) from None
            # Any other answer (403, 404) still shows the server is there; each call reports its own.
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise SetupError(
                f"Cannot reach the Kubernetes API server {self._host} named by the kubeconfig {origin}: "
                f"{network_reason(error)}. Check that this machine can reach it (the cluster's API server "
                "needs a public endpoint, or run the check from inside the VPC) and that the kubeconfig is "
                "the cluster's current one."
            ) from None

    def read(self, pod: PodRef) -> PodState | None:
        with _api(f"read pod {pod}"):
            try:
                return _state(self._core.read_namespaced_pod(pod.name, pod.namespace))
            except ApiException as error:
                if error.status == 404:
                    return None
                raise

    def find(self, namespace: str, selector: str) -> list[PodState]:
        with _api(f"list pods in {namespace} by {selector!r}"):
            return [
                _state(pod)
                for pod in self._core.list_namespaced_pod(namespace, label_selector=selector).items
            ]

    def exists(self, manifest: Mapping[str, Any]) -> bool:
        kind, name, namespace = _identity(manifest)
        with _api(f"read {kind} {name}"):
            try:
                self._kinds[kind].read(name, namespace)
            except ApiException as error:
                if error.status == 404:
                    return False
                raise
        return True

    def create(self, manifest: Mapping[str, Any]) -> None:
        kind, name, namespace = _identity(manifest)
        with _api(f"create {kind} {name}"):
            self._kinds[kind].create(namespace, manifest)

    def delete(self, manifest: Mapping[str, Any]) -> None:
        kind, name, namespace = _identity(manifest)
        with _api(f"delete {kind} {name}"):
            self._kinds[kind].delete(name, namespace)

    def wait_running(self, pods: Sequence[PodRef], timeout: float) -> list[PodState]:
        deadline = time.monotonic() + timeout
        return [self._wait_one(pod, deadline) for pod in pods]

    def _wait_one(self, pod: PodRef, deadline: float) -> PodState:
        state = self.read(pod)
        if state is None:
            return PodState(pod, "Missing", None, None, False, "the pod does not exist")
        watcher: Any = watch.Watch()  # type: ignore[no-untyped-call]
        with _api(f"watch pod {pod}"):
            while not _settled(state) and (remaining := deadline - time.monotonic()) > 0:
                for event in watcher.stream(
                    self._core.list_namespaced_pod,
                    pod.namespace,
                    field_selector=f"metadata.name={pod.name}",
                    timeout_seconds=max(1, int(remaining)),
                ):
                    state = _state(event["object"])
                    if _settled(state) or time.monotonic() >= deadline:
                        watcher.stop()
                        break  # closes the stream now instead of at the server's timeout
        return state

    def run(self, pod: PodRef, argv: Sequence[str], timeout: float) -> ExecResult:
        return self._run(pod, argv, timeout, kill_on_timeout=True)

    def _run(self, pod: PodRef, argv: Sequence[str], timeout: float, *, kill_on_timeout: bool) -> ExecResult:
        command = _Command(self, pod, argv)
        try:
            if not command.pump(timeout):
                partial = command.result()
                if kill_on_timeout:
                    command.kill()
                raise ExecTimeoutError(argv, timeout, partial)
            return command.result()
        finally:
            command.close()

    def start(self, pod: PodRef, argv: Sequence[str]) -> KubeBackground:
        return KubeBackground(_Command(self, pod, argv))

    def open_exec(self, pod: PodRef, argv: Sequence[str]) -> Any:
        """The exec websocket (a ``kubernetes.stream.ws_client.WSClient``) of ``argv`` in the pod."""
        with _api(f"exec {argv[0]} in pod {pod}"):
            client: Any = stream(
                self._core.connect_get_namespaced_pod_exec,
                pod.name,
                pod.namespace,
                command=list(argv),
                stderr=True,
                stdin=False,
                stdout=True,
                tty=False,
                _preload_content=False,
            )
        return client


class KubeBackground:
    """The perftest server: its websocket is read whenever the orchestration waits on it."""

    def __init__(self, command: _Command) -> None:
        self._command = command

    def wait(self, timeout: float) -> ExecResult | None:
        return self._command.result() if self._command.pump(timeout) else None

    def stop(self) -> ExecResult:
        self._command.kill()
        self._command.close()
        return self._command.result()


class _Command:
    """One command in a pod, started as ``sh -c 'echo $$; exec "$@"'`` so its PID is known: a command that
    outlives its caller (a timed-out client, the server) is killed instead of left running in the pod."""

    def __init__(self, cluster: KubeCluster, pod: PodRef, argv: Sequence[str]) -> None:
        self._cluster = cluster
        self._pod = pod
        self._argv = argv
        self._client = cluster.open_exec(pod, ["sh", "-c", _WITH_PID, "ack-rdma-check", *argv])
        self._stdout = ""
        self._stderr = ""
        self._status = ""

    def pump(self, timeout: float) -> bool:
        """Reads the stream until the command ends (True) or ``timeout`` s pass (False)."""
        deadline = time.monotonic() + timeout
        while self._client.is_open():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with _api(f"read the output of {self._argv[0]}"):
                self._client.update(timeout=min(remaining, _POLL_SECONDS))
            self._drain()
        self._drain()
        return True

    def _drain(self) -> None:
        self._stdout += self._client.read_channel(STDOUT_CHANNEL)
        self._stderr += self._client.read_channel(STDERR_CHANNEL)
        self._status += self._client.read_channel(ERROR_CHANNEL)

    def result(self) -> ExecResult:
        rc, message = (-1, "") if self._client.is_open() else exit_status(self._status)
        return ExecResult(rc, self._stdout.partition("\n")[2], self._stderr + message)

    def kill(self) -> None:
        pid = self._stdout.partition("\n")[0].strip()
        if self._client.is_open() and pid.isdigit():
            with suppress(ExecTimeoutError):
                self._cluster._run(self._pod, ["kill", pid], _STOP_SECONDS, kill_on_timeout=False)
            self.pump(_STOP_SECONDS)

    def close(self) -> None:
        self._client.close(timeout=_CLOSE_SECONDS)


def exit_status(status_json: str) -> tuple[int, str]:
    """Exit code and, when the command never started, the runtime's message, from the exec ``Status``."""
    if not status_json.strip():
        return -1, "exec stream closed without an exit status\n"
    status = json.loads(status_json)
    if status.get("status") == "Success":
        return 0, ""
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause["message"]), ""
    return _EXIT_NOT_STARTED, f"{status.get('message', status_json)}\n"


Model = TypeVar("Model", V1Namespace, V1NetworkPolicy, V1Pod, V1ServiceAccount)


@dataclass(frozen=True)
class _Kind:
    read: Callable[[str, str], object]
    create: Callable[[str, Mapping[str, Any]], object]
    delete: Callable[[str, str], object]


def _identity(manifest: Mapping[str, Any]) -> tuple[str, str, str]:
    """Kind, name and namespace (empty for a Namespace) of one of the test objects."""
    metadata = manifest["metadata"]
    return manifest["kind"], metadata["name"], metadata.get("namespace", "")


def _model(model: type[Model], manifest: Mapping[str, Any]) -> Model:
    body = model.from_dict(dict(manifest))
    assert body is not None, "from_dict returns None only for None"
    return body


def _settled(state: PodState) -> bool:
    return state.phase in {"Running", "Succeeded", "Failed"}


def _state(pod: V1Pod) -> PodState:
    metadata, spec, status = pod.metadata, pod.spec, pod.status
    assert metadata is not None and metadata.name is not None and metadata.namespace is not None
    return PodState(
        ref=PodRef(metadata.namespace, metadata.name),
        phase=(status.phase if status is not None else None) or "Unknown",
        node=spec.node_name if spec is not None else None,
        pod_ip=status.pod_ip if status is not None else None,
        host_network=bool(spec.host_network) if spec is not None else False,
        problem=_problem(pod),
    )


def _problem(pod: V1Pod) -> str | None:
    status = pod.status
    if status is None:
        return None
    for condition in status.conditions or []:
        if condition.type == "PodScheduled" and condition.status == "False":
            return condition.message or condition.reason
    for container in status.container_statuses or []:
        state = container.state
        if state is not None and state.waiting is not None:
            message = f": {state.waiting.message}" if state.waiting.message else ""
            return f"container {container.name} {state.waiting.reason}{message}"
        if state is not None and state.terminated is not None:
            return f"container {container.name} terminated: {state.terminated.reason}"
    return status.message or status.reason
