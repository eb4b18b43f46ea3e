"""kubelet's side of the device-plugin directory: the Registration client, and what the directory's inotify
events mean (kubelet deletes every plugin socket, then creates kubelet.sock, each time it starts)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import grpc

from rdma_device_plugin.api import api_pb2, api_pb2_grpc
from rdma_device_plugin.inotify import APPEARED, IN_Q_OVERFLOW, VANISHED, WATCH_LOST, WATCH_RESTORED, DirEvent
from rdma_device_plugin.server import SocketReplacedError, file_identity, unix_target, unless_replaced

API_VERSION = "v1beta1"
KUBELET_SOCKET = "kubelet.sock"
# kubelet dials the plugin back with a 10 s timeout inside Register; allow for that plus the call itself.
REGISTER_TIMEOUT = 15.0
# kubelet.sock appears at bind(), a moment before kubelet listens on it. register() waits for the connection
# rather than failing and backing off, so the channel retries it at once; the Register call itself is sent
# only on a connection to the kubelet.sock it started with (a reconnection by path could reach a newer
# kubelet with a call this plugin is about to abandon, and register twice there).
REGISTER_CHANNEL_OPTIONS = [
    # grpc shares connections between channels to the same target: a new channel would reuse the old
    # kubelet's connection (alive on the deleted kubelet.sock) and send Register there.
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.initial_reconnect_backoff_ms", 2),
    ("grpc.min_reconnect_backoff_ms", 2),
    ("grpc.max_reconnect_backoff_ms", 20),
]


class RegistrationError(Exception):
    """kubelet refused or did not answer Register; str() is one paragraph naming the resource and cause."""


async def register(
    device_plugin_dir: Path,
    endpoint: str,
    resource_name: str,
    options: api_pb2.DevicePluginOptions,
    timeout: float = REGISTER_TIMEOUT,
) -> None:
    """Register `resource_name`, served on `<device_plugin_dir>/<endpoint>`, with that directory's kubelet.

    Abandoned (RegistrationError) as soon as kubelet.sock is replaced, a newer kubelet that knows nothing of
    this call, or the plugin's socket is deleted, which kubelet would dial back in vain for 10 s."""
    kubelet_socket = device_plugin_dir / KUBELET_SOCKET
    plugin_socket = device_plugin_dir / endpoint
    request = api_pb2.RegisterRequest(
        version=API_VERSION, endpoint=endpoint, resource_name=resource_name, options=options
    )
    watched = {kubelet_socket: file_identity(kubelet_socket), plugin_socket: file_identity(plugin_socket)}
    async with grpc.aio.insecure_channel(unix_target(kubelet_socket), REGISTER_CHANNEL_OPTIONS) as channel:
        stub = api_pb2_grpc.RegistrationStub(channel)
        try:
            async with asyncio.timeout(timeout):
                await unless_replaced(channel.channel_ready(), watched)
                await unless_replaced(stub.Register(request, timeout=timeout), watched)
        except TimeoutError as error:
            raise RegistrationError(
                f"registering {resource_name} (endpoint {endpoint}): kubelet at {kubelet_socket} did not "
                f"answer within {timeout:g} s; retrying, and at once when kubelet.sock is created again"
            ) from error
        except grpc.aio.AioRpcError as error:
            raise RegistrationError(
                f"registering {resource_name} (endpoint {endpoint}) with kubelet at {kubelet_socket} failed: "
                f"{error.code().name}: {error.details()}"
            ) from error
        except SocketReplacedError as error:
            raise RegistrationError(
                f"registering {resource_name} (endpoint {endpoint}) with kubelet at {kubelet_socket} was "
                f"abandoned: {error} (kubelet restarted)"
            ) from error


class DirectoryListener(Protocol):
    """What happens in the device-plugin directory, as far as a plugin cares."""

    def kubelet_started(self) -> None:
        """kubelet.sock appeared: a kubelet (re)started and knows no plugin yet."""

    def kubelet_stopped(self) -> None:
        """kubelet.sock went away."""

    def socket_removed(self, name: str) -> None:
        """Another entry went away (kubelet deletes every plugin socket when it starts)."""

    def events_lost(self) -> None:
        """The kernel's event queue overflowed: anything may have happened."""

    def watch_lost(self) -> None:
        """The directory itself was removed or moved: no further event will come until it is back."""

    def watch_restored(self) -> None:
        """The directory exists again and is watched again; what is in it is unknown."""


def dispatch(events: Iterable[DirEvent], listener: DirectoryListener) -> None:
    """Hand a batch of inotify events on the device-plugin directory to `listener`, in order."""
    for event in events:
        if event.mask & IN_Q_OVERFLOW:
            listener.events_lost()
        elif event.mask & WATCH_RESTORED:
            listener.watch_restored()
        elif event.mask & WATCH_LOST:
            listener.watch_lost()
        elif event.name == KUBELET_SOCKET:
            if event.mask & APPEARED:
                listener.kubelet_started()
            elif event.mask & VANISHED:
                listener.kubelet_stopped()
        elif event.mask & VANISHED:
            listener.socket_removed(event.name)
