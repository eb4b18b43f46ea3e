"""The HTTP endpoint of --metrics-address: `/metrics` for Prometheus, `/healthz` for the DaemonSet probes.

HTTP/1.1 is parsed and written by h11 (a maintained, sans-I/O implementation), driven by asyncio streams on
the plugin's own loop, so a scrape reads the plugin's state without locks or threads. One request per
connection (``Connection: close``), which is all Prometheus and kubelet's probes need. Every request gets a
status: a head or body over its limit, a malformed request and an Accept header prometheus_client cannot read
included.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

import h11
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.registry import CollectorRegistry

from rdma_device_plugin.metrics import PluginMetrics
from rdma_device_plugin.settings import MetricsAddress
from rdma_device_plugin.text import printable

log = logging.getLogger(__name__)

# A client has this long to send its whole request; then the connection is closed (slow clients hold nothing).
REQUEST_TIMEOUT = 5.0
# Request line and headers; Prometheus and kubelet's probes send a few hundred bytes. Over it: 431.
MAX_HEAD_BYTES = 16 * 1024
# A body is never needed (only GET and HEAD are served); one is read up to this much, to answer 405, else 413.
MAX_BODY_BYTES = 64 * 1024
# Connections open at once. Prometheus and the two probes need one each at a time; beyond this a connection
# is closed at once, so HTTP clients cannot exhaust the plugin's file descriptors.
MAX_CONNECTIONS = 64
_READ_SIZE = 4096
# After refusing a request that was not read to its end, the rest is read and dropped for up to this long
# before closing (closing with unread input makes the kernel reset the connection, losing the answer).
LINGER_SECONDS = 1.0
# A media type and its parameters, as prometheus_client builds it from the Accept header: what may go back.
_SAFE_CONTENT_TYPE = re.compile(r"[\x20-\x7e]{1,200}")


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str
    """One line per resource, e.g. ``rdma/hca: serving, registered``."""


class StatusServerError(Exception):
    """The address cannot be served: bad input (exit 2); str() is one paragraph naming it and the fix."""


@dataclass(frozen=True)
class _Response:
    status: int
    content_type: str
    body: bytes


def _text(status: int, text: str) -> _Response:
    return _Response(status, "text/plain; charset=utf-8", printable(text).encode())


class _TooLargeError(Exception):
    pass


def exposition(registry: CollectorRegistry, accept: str) -> _Response:
    """/metrics in the format `accept` asks for, as prometheus_client chooses it; its default text format when
    prometheus_client cannot read the header (it raises on some version parameters) or would echo back
    something that cannot go in a response header."""
    try:
        encoder, content_type = choose_encoder(accept)
    except Exception:  # a third-party parser of client input: any failure means "not understood"
        encoder, content_type = generate_latest, None
    if content_type is None or not _SAFE_CONTENT_TYPE.fullmatch(content_type):
        encoder, content_type = choose_encoder("")
    return _Response(200, content_type, encoder(registry))


def _send(connection: h11.Connection, response: _Response, head_only: bool = False) -> bytes:
    head = h11.Response(
        status_code=response.status,
        reason=HTTPStatus(response.status).phrase.encode(),
        headers=[
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            ("Connection", "close"),
        ],
    )
    body = b"" if head_only else response.body
    return b"".join(
        connection.send(event) or b"" for event in (head, h11.Data(data=body), h11.EndOfMessage())
    )


def _answer_unparsed(response: _Response) -> bytes:
    """`response` to a request h11 could not parse: h11 writes a response only once it has read a request,
    so it is given a minimal one."""
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(b"GET / HTTP/1.1\r\nHost: -\r\n\r\n")
    connection.next_event()
    return _send(connection, response)


async def _refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, response: _Response) -> None:
    """Answer a request that was not read to its end, then drop what the client still sends for a while."""
    writer.write(_answer_unparsed(response))
    await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(LINGER_SECONDS):
            while await reader.read(64 * 1024):
                pass


class StatusServer:
    def __init__(self, metrics: PluginMetrics, health: Callable[[], Health]) -> None:
        self._metrics = metrics
        self._health = health
        self._server: asyncio.Server | None = None
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self, address: MetricsAddress) -> None:
        try:
            self._server = await asyncio.start_server(
                self._serve, address.host, address.port, reuse_address=True
            )
        except OSError as error:
            hint = (
                "another process listens on that port; choose a free one"
                if error.errno == errno.EADDRINUSE
                else "give an address of this node (the DaemonSet passes $(HOST_IP))"
            )
            # asyncio rewords the bind error around the address; the errno's own words are shorter.
            reason = os.strerror(error.errno) if error.errno else str(error)
            raise StatusServerError(
                f"cannot serve /metrics and /healthz on {address} (--metrics-address, env "
                f"RDMA_DP_METRICS_ADDRESS): {reason}; {hint}, or an empty value to disable the endpoint"
            ) from error
        log.info("serving /metrics and /healthz on %s", address)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._slots.locked():
            writer.close()
            return
        async with self._slots:
            try:
                await self._exchange(reader, writer)
            except (TimeoutError, ConnectionError):
                pass  # a client that went away or never finished its request: nothing to answer
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                request = await self._read_request(connection, reader)
        except h11.RemoteProtocolError as error:
            # The text is ours: h11's message may quote what the client sent.
            reason = "request head too large" if error.error_status_hint == 431 else "malformed HTTP request"
            await _refuse(reader, writer, _text(error.error_status_hint, f"{reason}\n"))
        except _TooLargeError:
            await _refuse(
                reader, writer, _text(413, f"a body is never needed; at most {MAX_BODY_BYTES} bytes\n")
            )
        else:
            response = self._respond(request)
            writer.write(_send(connection, response, head_only=request.method == b"HEAD"))
            await writer.drain()

    @staticmethod
    async def _read_request(connection: h11.Connection, reader: asyncio.StreamReader) -> h11.Request:
        """The request head, its body read and dropped (only GET and HEAD are served)."""
        request: h11.Request | None = None
        body = 0
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await reader.read(_READ_SIZE))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += len(event.data)
                if body > MAX_BODY_BYTES:
                    raise _TooLargeError
            elif isinstance(event, h11.EndOfMessage) and request is not None:
                return request
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionResetError

    def _respond(self, request: h11.Request) -> _Response:
        method = request.method.decode("ascii")
        if method not in ("GET", "HEAD"):
            return _text(405, "only GET and HEAD are served\n")
        path = request.target.split(b"?", 1)[0]
        if path == b"/metrics":
            accept = b",".join(value for name, value in request.headers if name == b"accept")
            return exposition(self._metrics.registry, accept.decode("latin-1"))
        if path == b"/healthz":
            health = self._health()
            return _text(200 if health.ok else 503, health.detail + "\n")
        return _text(404, "not found; try /metrics or /healthz\n")
