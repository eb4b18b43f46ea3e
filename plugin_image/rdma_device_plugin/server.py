"""One resource's DevicePlugin gRPC server on its own unix socket in the device-plugin directory."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import TypeVar

import grpc

from rdma_device_plugin.api import api_pb2_grpc
from rdma_device_plugin.servicer import (
    MAX_ANSWER_BYTES,
    AllocateObserver,
    DeviceFeed,
    DevicePluginServicer,
    StatusInterceptor,
)

log = logging.getLogger(__name__)

# sockaddr_un.sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH_BYTES = 107
SELF_DIAL_TIMEOUT = 5.0

# Limits of the plugin socket. Its one legitimate client is kubelet: one connection per registration, holding
# one ListAndWatch stream and making one Allocate or GetPreferredAllocation call at a time per pod admission.
# Anything else on the socket (any local process that can open it) must not starve kubelet nor grow memory.
MAX_CONNECTIONS = 32
"""Connections open at once; kubelet needs one (two across a re-registration). Further ones are refused."""
MAX_STREAMS_PER_CONNECTION = 100
"""Concurrent calls per connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). kubelet has two open at most;
100 is RFC 9113's recommended minimum, as a client may open that many before it reads the setting (16 made
a grpc client's 30 concurrent calls fail with REFUSED_STREAM). Unbounded, a client resetting 20,000 streams
got kubelet's own calls on another connection CANCELLED (tests/test_flood.py)."""
IDLE_CONNECTION_SECONDS = 60
"""A connection without a call in flight is closed after this; kubelet's always holds ListAndWatch."""
KEEPALIVE_SECONDS = 30
"""Ping an idle connection this often; a peer that does not answer within KEEPALIVE_TIMEOUT_SECONDS is cut."""
KEEPALIVE_TIMEOUT_SECONDS = 10
MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""A request message (grpc's own default, stated): ~500,000 IDs, far beyond any pool."""
MAX_METADATA_BYTES = 16 * 1024
"""Request headers per call; kubelet sends a few hundred bytes."""


def server_options() -> list[tuple[str, int]]:
    return [
        ("grpc.max_allowed_incoming_connections", MAX_CONNECTIONS),
        ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
        ("grpc.max_connection_idle_ms", IDLE_CONNECTION_SECONDS * 1000),
        ("grpc.keepalive_time_ms", KEEPALIVE_SECONDS * 1000),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_SECONDS * 1000),
        ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
        ("grpc.max_send_message_length", MAX_ANSWER_BYTES),
        ("grpc.max_metadata_size", MAX_METADATA_BYTES),
    ]


# How often a wait on a socket checks that the socket is still there: kubelet deletes every plugin socket
# and replaces kubelet.sock when it restarts, and a wait on a deleted socket lasts until its timeout (5 s
# for the self-dial, kubelet's own 10 s dial-back inside Register). A few stat() calls per ms of wait.
SOCKET_CHECK_INTERVAL = 0.002

T = TypeVar("T")
FileIdentity = tuple[int, int]


class PluginServerError(Exception):
    """The socket cannot be bound or does not answer; str() is one paragraph naming the path and the fix."""


class SocketReplacedError(Exception):
    """A socket a call depends on was deleted or replaced while the call waited."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} was deleted or replaced meanwhile")
        self.path = path


def unix_target(path: Path) -> str:
    return f"unix:{path}"


def file_identity(path: Path) -> FileIdentity | None:
    """(device, inode) of the file at `path`, None if there is none: a re-created socket is another file."""
    try:
        stat = os.lstat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


async def unless_replaced(awaitable: Awaitable[T], files: Mapping[Path, FileIdentity | None]) -> T:
    """Await `awaitable`; cancel it and raise SocketReplacedError as soon as a file in `files` no longer has
    the identity given (a file that was already missing, identity None, fails at once)."""
    task = asyncio.ensure_future(awaitable)
    try:
        while True:
            for path, identity in files.items():
                if identity is None or file_identity(path) != identity:
                    raise SocketReplacedError(path)
            done, _ = await asyncio.wait({task}, timeout=SOCKET_CHECK_INTERVAL)
            if done:
                return task.result()
    finally:
        if not task.done():
            task.cancel()


class PluginServer:
    """Serves a pool's DevicePlugin service on one socket. start() and stop() may alternate any number of
    times (a kubelet restart deletes the socket, so serving again needs a fresh bind); each start gets a
    fresh gRPC server and servicer."""

    def __init__(self, feed: DeviceFeed, socket_path: Path, observer: AllocateObserver | None = None) -> None:
        self.feed = feed
        self.socket_path = socket_path
        self._observer = observer
        self._server: grpc.aio.Server | None = None
        self._servicer: DevicePluginServicer | None = None
        self._bound: tuple[int, int] | None = None

    @property
    def serving(self) -> bool:
        return self._server is not None

    def _socket_identity(self) -> FileIdentity | None:
        return file_identity(self.socket_path)

    def socket_intact(self) -> bool:
        """Serving, and the file at the socket path is still the socket this server bound: kubelet deletes
        every socket in its directory when it starts, and a server on a deleted path is unreachable."""
        return self._server is not None and self._bound is not None and self._socket_identity() == self._bound

    async def start(self) -> None:
        """Bind (replacing a stale socket), serve, and return only once a client can connect."""
        path = self.socket_path
        length = len(str(path).encode())
        if length > MAX_SOCKET_PATH_BYTES:
            raise PluginServerError(
                f"socket path {path} is {length} bytes, more than the {MAX_SOCKET_PATH_BYTES} a unix socket "
                "path may have: use a shorter --device-plugin-dir"
            )
        if not path.parent.is_dir():
            raise PluginServerError(
                f"the device-plugin directory {path.parent} does not exist: point --device-plugin-dir at "
                "kubelet's device-plugin directory (default /var/lib/kubelet/device-plugins) and mount it"
            )
        try:
            # A socket left by a previous run would make bind() fail with EADDRINUSE.
            path.unlink(missing_ok=True)
        except OSError as error:
            raise PluginServerError(
                f"cannot remove the stale file at socket path {path}: {error.strerror}; remove it or choose "
                "another --device-plugin-dir"
            ) from error
        resource = self.feed.pool.config.resource_name
        server = grpc.aio.server(interceptors=[StatusInterceptor(resource)], options=server_options())
        servicer = DevicePluginServicer(self.feed, self._observer)
        api_pb2_grpc.add_DevicePluginServicer_to_server(servicer, server)
        try:
            server.add_insecure_port(unix_target(path))
        except RuntimeError as error:
            # grpc's own message only says "Failed to bind"; the cause is in its C-core log line.
            raise PluginServerError(
                f"cannot listen on unix socket {path}: make sure --device-plugin-dir {path.parent} is "
                "writable by the plugin"
            ) from error
        # Owned from here on, so that stop() cleans up even if starting fails or is cancelled halfway.
        self._server, self._servicer, self._bound = server, servicer, self._socket_identity()
        try:
            await server.start()
            await self._self_dial()
        except PluginServerError:
            await self.stop(grace=0)
            raise
        log.info("serving %s on %s", resource, path, extra={"resource": resource})

    async def _self_dial(self) -> None:
        # kubelet dials back inside Register: prove the socket answers before asking it to.
        async with grpc.aio.insecure_channel(unix_target(self.socket_path)) as channel:
            try:
                async with asyncio.timeout(SELF_DIAL_TIMEOUT):
                    await unless_replaced(channel.channel_ready(), {self.socket_path: self._bound})
            except SocketReplacedError as error:
                raise PluginServerError(
                    f"the plugin's own socket {self.socket_path} was deleted while the plugin started "
                    "serving it (kubelet deletes plugin sockets when it starts); serving it again"
                ) from error
            except TimeoutError as error:
                raise PluginServerError(
                    f"the plugin's own socket {self.socket_path} did not accept a connection within "
                    f"{SELF_DIAL_TIMEOUT:g} s; check that nothing else manages that path"
                ) from error

    async def stop(self, grace: float) -> None:
        """End the streams, give in-flight calls `grace` seconds, and remove the socket if it is still ours
        (kubelet may already have deleted it, and a file now at that path belongs to someone else)."""
        server, servicer, bound = self._server, self._servicer, self._bound
        self._server = self._servicer = self._bound = None
        if servicer is not None:
            servicer.close()
        if server is not None:
            await server.stop(grace)
        if bound is not None and self._socket_identity() == bound:
            self.socket_path.unlink(missing_ok=True)
