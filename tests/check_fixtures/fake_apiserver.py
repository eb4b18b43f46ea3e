"""STAND-IN for a Kubernetes API server, for tests only: plain HTTP on 127.0.0.1 with just what the check's
Kubernetes transport calls, so the real ``kubernetes`` client library (REST, watch, exec websocket) is what
gets tested.

- ``GET /version``, the check's first request;
- ``GET/POST/DELETE /api/v1/namespaces/<ns>/pods[/<name>]``, and the same for namespaces and network
  policies; ``NotFound``/``Unauthorized`` as ``Status`` objects; ``?watch=true`` streams one JSON event per
  line (``ADDED``, then queued ``MODIFIED`` states) and holds the stream open until ``timeoutSeconds``, as
  the real server does.
- ``GET .../pods/<name>/exec`` upgrades to a websocket speaking ``v4.channel.k8s.io``: binary frames whose
  first byte is the channel (1 stdout, 2 stderr, 3 the exec ``Status``), then a close frame.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CHANNEL_PROTOCOL = "v4.channel.k8s.io"
_HOLD_LIMIT = 10.0
VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.1-aliyun.1",
    "gitCommit": "3b5c0c1b8f8f6a0d0e1e6f1a3c2f9d8e7b6a5c4d",
    "gitTreeState": "clean",
    "buildDate": "2024-10-24T07:35:42Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}
"""``GET /version`` as an ACK 1.31 API server answers it (fields of k8s.io/apimachinery's version.Info)."""


@dataclass
class ExecReply:
    stdout: str = ""
    stderr: str = ""
    rc: int = 0
    not_started: str | None = None
    """The runtime's message when the command could not start (no ``ExitCode`` cause)."""
    hold: threading.Event | None = None
    """Keep the stream open (a running server) until this is set."""
    then: Callable[[], ExecReply] | None = None
    """After ``hold``: the rest of the output and the exit code (else the command was killed: 143)."""


ExecHandler = Callable[[str, str, list[str]], ExecReply]


@dataclass
class FakeApiServer:
    exec_handler: ExecHandler = field(default=lambda ns, name, command: ExecReply())
    pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    pending_updates: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    """Pod states a watch streams as MODIFIED events after the current one, 50 ms apart."""
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Other objects (namespaces, network policies) by their URL path."""
    unauthorized: bool = False
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def kubeconfig(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester"}}],
            "current-context": "fake",
        }

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


def pod_json(
    name: str,
    phase: str,
    *,
    node: str | None = None,
    ip: str | None = None,
    host_network: bool = False,
    **status: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "rdma-test", "image": "tools"}]}
    if node:
        spec["nodeName"] = node
    if host_network:
        spec["hostNetwork"] = True
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "rdma-test"},
        "spec": spec,
        "status": {"phase": phase, **({"podIP": ip} if ip else {}), **status},
    }


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeApiServer
    protocol_version = "HTTP/1.1"  # watch streams are chunked, as the real server sends them

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _route(self) -> tuple[list[str], dict[str, list[str]]]:
        parts = urlsplit(self.path)
        self.server_fake.requests.append((self.command, parts.path))
        return parts.path.strip("/").split("/"), parse_qs(parts.query)

    def _json(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        if self.server_fake.unauthorized:
            self._json(401, _status(401, "Unauthorized", "Unauthorized"))
            return False
        return True

    def do_GET(self) -> None:
        path, query = self._route()
        if not self._authorized():
            return
        stored = self.server_fake.objects.get("/" + "/".join(path))
        if path == ["version"]:
            self._json(200, VERSION)
        elif stored is not None:
            self._json(200, stored)
        elif len(path) < 5 or path[4] != "pods":
            self._json(404, _status(404, "NotFound", f'{path[-2]} "{path[-1]}" not found'))
        elif len(path) == 7 and path[6] == "exec":  # api v1 namespaces <ns> pods <name> exec
            self._exec(path[3], path[5], query.get("command", []))
        elif len(path) == 6:
            pod = self.server_fake.pods.get((path[3], path[5]))
            if pod is None:
                self._json(404, _status(404, "NotFound", f'pods "{path[5]}" not found'))
            else:
                self._json(200, pod)
        elif query.get("watch", ["false"])[0].lower() == "true":
            self._watch(path[3], query)
        else:
            items = self._list(path[3], query)
            self._json(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})

    def do_POST(self) -> None:
        path, _ = self._route()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if path[-1] == "pods":
            body.setdefault("status", {"phase": "Pending"})
            self.server_fake.pods[(path[3], body["metadata"]["name"])] = body
        else:  # namespaces, networkpolicies: kept as they come
            self.server_fake.objects["/" + "/".join([*path, body["metadata"]["name"]])] = body
        self._json(201, body)

    def do_DELETE(self) -> None:
        path, _ = self._route()
        key = "/" + "/".join(path)
        if key in self.server_fake.objects:
            self._json(200, self.server_fake.objects.pop(key))
            return
        pod = (
            self.server_fake.pods.pop((path[3], path[5]), None)
            if len(path) == 6 and path[4] == "pods"
            else None
        )
        if pod is None:
            self._json(404, _status(404, "NotFound", f'{path[-2]} "{path[-1]}" not found'))
        else:
            self._json(200, pod)

    def _list(self, namespace: str, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        wanted = query.get("fieldSelector", [""])[0].removeprefix("metadata.name=")
        labels = dict(term.split("=", 1) for term in query.get("labelSelector", [""])[0].split(",") if term)
        return [
            pod
            for (ns, name), pod in self.server_fake.pods.items()
            if ns == namespace
            and wanted in ("", name)
            and all(pod["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())
        ]

    def _watch(self, namespace: str, query: dict[str, list[str]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        timeout = float(query.get("timeoutSeconds", ["5"])[0])
        deadline = time.monotonic() + timeout
        events = [("ADDED", pod) for pod in self._list(namespace, query)]
        for pod in self._list(namespace, query):
            key = (namespace, pod["metadata"]["name"])
            events += [("MODIFIED", update) for update in self.server_fake.pending_updates.pop(key, [])]
        for kind, pod in events:
            self._chunk(json.dumps({"type": kind, "object": pod}).encode() + b"\n")
            self.server_fake.pods[(namespace, pod["metadata"]["name"])] = pod
            time.sleep(0.05)  # the kubelet's status updates arrive over time
        while time.monotonic() < deadline:
            time.sleep(0.05)
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        try:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped watching

    def _exec(self, namespace: str, name: str, command: list[str]) -> None:
        key = self.headers["Sec-WebSocket-Key"]
        offered = [p.strip() for p in (self.headers["Sec-WebSocket-Protocol"] or "").split(",")]
        assert _CHANNEL_PROTOCOL in offered, offered
        accept = base64.b64encode(hashlib.sha1((key + _WEBSOCKET_GUID).encode()).digest()).decode()
        self.wfile.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {_CHANNEL_PROTOCOL}\r\n\r\n"
            ).encode()
        )
        reply = self.server_fake.exec_handler(namespace, name, command)
        for channel, text in ((1, reply.stdout), (2, reply.stderr)):
            if text:
                self._frame(0x2, bytes([channel]) + text.encode())
        if reply.hold is not None:
            reply.hold.wait(_HOLD_LIMIT)
            reply = reply.then() if reply.then is not None else ExecReply(rc=143)
            for channel, text in ((1, reply.stdout), (2, reply.stderr)):
                if text:
                    self._frame(0x2, bytes([channel]) + text.encode())
        self._frame(0x2, bytes([3]) + json.dumps(_exec_status(reply)).encode())
        self._frame(0x8, struct.pack("!H", 1000))
        self.close_connection = True

    def _frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        if len(payload) < 126:
            header += bytes([len(payload)])
        elif len(payload) < 1 << 16:
            header += bytes([126]) + struct.pack("!H", len(payload))
        else:
            header += bytes([127]) + struct.pack("!Q", len(payload))
        try:
            self.wfile.write(header + payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client closed the stream first


def _exec_status(reply: ExecReply) -> dict[str, Any]:
    if reply.not_started is not None:
        return {
            "metadata": {},
            "status": "Failure",
            "message": reply.not_started,
            "reason": "InternalError",
            "details": {"causes": [{"message": reply.not_started}]},
            "code": 500,
        }
    if reply.rc == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit code {reply.rc}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(reply.rc)}]},
    }
