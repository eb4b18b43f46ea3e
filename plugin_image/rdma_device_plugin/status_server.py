"""The HTTP endpoint of --metrics-address: `/metrics` for Prometheus, `/healthz` for the DaemonSet probes.

Served with asyncio streams on the plugin's own loop, so a scrape reads the plugin's state without locks or
threads. One request per connection (``Connection: close``), which is all Prometheus and kubelet's probes
need; a client that does not send its request head promptly is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.exposition import choose_encoder

from rdma_device_plugin.metrics import PluginMetrics
from rdma_device_plugin.settings import MetricsAddress

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 5.0
MAX_HEAD_BYTES = 16 * 1024
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str
    """One line per resource, e.g. ``rdma/hca: serving, registered``."""


class StatusServerError(Exception):
    """The address cannot be served; str() is one paragraph naming it and the fix."""


@dataclass(frozen=True)
class _Response:
    status: int
    content_type: str
    body: bytes


def _text(status: int, text: str) -> _Response:
    return _Response(status, "text/plain; charset=utf-8", text.encode())


class StatusServer:
    def __init__(self, metrics: PluginMetrics, health: Callable[[], Health]) -> None:
        self._metrics = metrics
        self._health = health
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self, address: MetricsAddress) -> None:
        try:
            self._server = await asyncio.start_server(
                self._serve, address.host, address.port, limit=MAX_HEAD_BYTES, reuse_address=True
            )
        except OSError as error:
            raise StatusServerError(
                f"cannot serve /metrics and /healthz on {address} (--metrics-address, env "
                f"RDMA_DP_METRICS_ADDRESS): {error.strerror or error}; give an address of this node and a "
                "free port, or an empty value to disable the endpoint"
            ) from error
        log.info("serving /metrics and /healthz on %s", address)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            method, response = self._respond(head)
            writer.write(
                f"HTTP/1.1 {response.status} {REASONS[response.status]}\r\n"
                f"Content-Type: {response.content_type}\r\n"
                f"Content-Length: {len(response.body)}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            if method != "HEAD":
                writer.write(response.body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a client that went away or never finished its request: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _respond(self, head: bytes) -> tuple[str, _Response]:
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3:
            return "", _text(400, "malformed request line\n")
        method, target, _version = parts
        if method not in ("GET", "HEAD"):
            return method, _text(405, "only GET and HEAD are served\n")
        path = target.split("?", 1)[0]
        if path == "/metrics":
            headers = dict(line.split(":", 1) for line in header_lines if ":" in line)
            accept = next((value.strip() for name, value in headers.items() if name.lower() == "accept"), "")
            encoder, content_type = choose_encoder(accept)
            return method, _Response(200, content_type, encoder(self._metrics.registry))
        if path == "/healthz":
            health = self._health()
            return method, _text(200 if health.ok else 503, health.detail + "\n")
        return method, _text(404, "not found; try /metrics or /healthz\n")
