"""A kubelet stand-in for the device-plugin tests, the image smoke test and the benchmarks.

It does what kubelet's device manager does, over real gRPC on real unix sockets: on start it empties the
device-plugin directory (every non-directory except its checkpoint) and serves Registration on kubelet.sock;
inside Register it checks the version and the resource name like kubelet, dials `<dir>/<endpoint>`
synchronously, calls GetDevicePluginOptions and then keeps a ListAndWatch stream, recording every update.
A second registration of the same resource replaces the first (its stream is closed), as in kubelet.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc
from rdma_device_plugin.api import api_pb2, api_pb2_grpc

SUPPORTED_VERSIONS = ("v1beta1",)
KUBELET_SOCKET = "kubelet.sock"
CHECKPOINT = "kubelet_internal_checkpoint"
DIAL_TIMEOUT = 10.0
DEFAULT_WAIT = 5.0

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

Devices = list[api_pb2.Device]


def is_extended_resource_name(name: str) -> bool:
    """kubelet's v1helper.IsExtendedResourceName: `domain/name`, outside kubernetes.io, quota-name valid."""
    if "/" not in name or "kubernetes.io/" in name or name.startswith("requests."):
        return False
    prefix, _, short = f"requests.{name}".partition("/")
    return (
        len(prefix) <= 253
        and _DNS1123_SUBDOMAIN.match(prefix) is not None
        and len(short) <= 63
        and _QUALIFIED_NAME.match(short) is not None
    )


class StreamEndedError(Exception):
    """The plugin ended the ListAndWatch stream while a test was waiting for an update."""


class PluginEndpoint:
    """kubelet's connection to one registered plugin: its options, its ListAndWatch updates, and the calls
    kubelet makes at pod admission."""

    def __init__(self, request: api_pb2.RegisterRequest, socket_path: Path) -> None:
        self.request = request
        self.socket_path = socket_path
        self.options = api_pb2.DevicePluginOptions()
        self.updates: list[Devices] = []
        self.stream_code: grpc.StatusCode | None = None
        self.stream_ended = asyncio.Event()
        self._channel = grpc.aio.insecure_channel(f"unix:{socket_path}")
        self._stub = api_pb2_grpc.DevicePluginStub(self._channel)
        self._arrived = asyncio.Condition()
        self._cursor = 0
        self._stream_task: asyncio.Task[None] | None = None

    @property
    def resource_name(self) -> str:
        return self.request.resource_name

    async def connect(self, timeout: float = DIAL_TIMEOUT) -> None:
        """What kubelet does inside Register: a blocking dial, then GetDevicePluginOptions."""
        await asyncio.wait_for(self._channel.channel_ready(), timeout)
        self.options = await self._stub.GetDevicePluginOptions(api_pb2.Empty(), timeout=timeout)
        self._stream_task = asyncio.create_task(self._watch(), name=f"ListAndWatch {self.resource_name}")

    async def _watch(self) -> None:
        try:
            async for response in self._stub.ListAndWatch(api_pb2.Empty()):
                async with self._arrived:
                    self.updates.append(list(response.devices))
                    self._arrived.notify_all()
            self.stream_code = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as error:
            self.stream_code = error.code()
        finally:
            self.stream_ended.set()
            async with self._arrived:
                self._arrived.notify_all()

    async def next_update(self, timeout: float = DEFAULT_WAIT) -> Devices:
        """The first update this helper has not returned yet, waiting for it if needed."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(
                lambda: self._cursor < len(self.updates) or self.stream_ended.is_set()
            )
            if self._cursor >= len(self.updates):
                raise StreamEndedError(f"{self.resource_name}: ListAndWatch ended ({self.stream_code})")
            self._cursor += 1
            return self.updates[self._cursor - 1]

    async def wait_update(
        self, predicate: Callable[[Devices], bool], timeout: float = DEFAULT_WAIT
    ) -> Devices:
        """Consume updates until one satisfies `predicate`; return it."""
        async with asyncio.timeout(timeout):
            while not predicate(devices := await self.next_update(timeout)):
                pass
            return devices

    async def allocate(self, *containers: Sequence[str]) -> api_pb2.AllocateResponse:
        """Allocate, one container request per argument (each a sequence of device IDs)."""
        request = api_pb2.AllocateRequest(
            container_requests=[api_pb2.ContainerAllocateRequest(devices_ids=ids) for ids in containers]
        )
        return await self._stub.Allocate(request, timeout=DEFAULT_WAIT)

    async def preferred(
        self, available: Sequence[str], must_include: Sequence[str], size: int
    ) -> api_pb2.PreferredAllocationResponse:
        request = api_pb2.PreferredAllocationRequest(
            container_requests=[
                api_pb2.ContainerPreferredAllocationRequest(
                    available_deviceIDs=available, must_include_deviceIDs=must_include, allocation_size=size
                )
            ]
        )
        return await self._stub.GetPreferredAllocation(request, timeout=DEFAULT_WAIT)

    async def pre_start(self, ids: Sequence[str]) -> api_pb2.PreStartContainerResponse:
        return await self._stub.PreStartContainer(
            api_pb2.PreStartContainerRequest(devices_ids=ids), timeout=DEFAULT_WAIT
        )

    async def close(self) -> None:
        if self._stream_task is not None:
            self._stream_task.cancel()
            await asyncio.gather(self._stream_task, return_exceptions=True)
        await self._channel.close(None)


class KubeletStandin(api_pb2_grpc.RegistrationServicer):
    """kubelet's device manager for one device-plugin directory."""

    def __init__(self, plugin_dir: Path, dial_timeout: float = DIAL_TIMEOUT, refusals: int = 0) -> None:
        """`refusals`: how many Register calls to refuse first, as a kubelet whose device manager is not
        ready yet does."""
        self.plugin_dir = plugin_dir
        self.dial_timeout = dial_timeout
        self.refusals = refusals
        self.socket_path = plugin_dir / KUBELET_SOCKET
        self.requests: list[api_pb2.RegisterRequest] = []
        # time.perf_counter() of every Register call's arrival, refused ones included.
        self.arrivals: list[float] = []
        self.endpoints: dict[str, PluginEndpoint] = {}
        self._registered = asyncio.Condition()
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        """Start like kubelet: remove every non-directory file but the checkpoint, then serve kubelet.sock."""
        for entry in self.plugin_dir.iterdir():
            if entry.name != CHECKPOINT and not entry.is_dir():
                entry.unlink()
        server = grpc.aio.server()
        api_pb2_grpc.add_RegistrationServicer_to_server(self, server)
        server.add_insecure_port(f"unix:{self.socket_path}")
        await server.start()
        self._server = server

    async def stop(self) -> None:
        """Go away like a stopping kubelet: stop serving Registration and drop every plugin connection."""
        if self._server is not None:
            await self._server.stop(0)
            self._server = None
        endpoints, self.endpoints = list(self.endpoints.values()), {}
        for endpoint in endpoints:
            await endpoint.close()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def Register(  # noqa: N802 (the protocol's name)
        self,
        request: api_pb2.RegisterRequest,
        context: grpc.aio.ServicerContext[api_pb2.RegisterRequest, api_pb2.Empty],
    ) -> api_pb2.Empty:
        self.arrivals.append(time.perf_counter())
        serving = self._server
        if len(self.arrivals) <= self.refusals:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "device manager is not ready")
        self.requests.append(request)
        # kubelet returns plain Go errors here, which reach the plugin as status UNKNOWN.
        if request.version not in SUPPORTED_VERSIONS:
            await context.abort(
                grpc.StatusCode.UNKNOWN,
                f'requested API version "{request.version}" is not supported by kubelet. '
                f"Supported versions are {list(SUPPORTED_VERSIONS)}",
            )
        if not is_extended_resource_name(request.resource_name):
            await context.abort(
                grpc.StatusCode.UNKNOWN, f'the ResourceName "{request.resource_name}" is invalid'
            )
        endpoint = PluginEndpoint(request, self.plugin_dir / request.endpoint)
        try:
            await endpoint.connect(self.dial_timeout)
        except (grpc.aio.AioRpcError, TimeoutError) as error:
            await endpoint.close()
            await context.abort(
                grpc.StatusCode.UNKNOWN, f"failed to dial device plugin {request.endpoint}: {error!r}"
            )
        if self._server is not serving:
            # This kubelet stopped while dialling back: a dead kubelet registers nothing (the stand-in object
            # outlives it, so its call must not register with the kubelet that replaced it).
            await endpoint.close()
            await context.abort(grpc.StatusCode.UNAVAILABLE, "kubelet stopped during Register")
        previous = self.endpoints.get(request.resource_name)
        if previous is not None:
            await previous.close()
        async with self._registered:
            self.endpoints[request.resource_name] = endpoint
            self._registered.notify_all()
        return api_pb2.Empty()

    async def wait_registered(
        self, resource_name: str, after: PluginEndpoint | None = None, timeout: float = DEFAULT_WAIT
    ) -> PluginEndpoint:
        """The endpoint of `resource_name` once registered (a new one, if `after` is the one known so far)."""

        def ready() -> bool:
            current = self.endpoints.get(resource_name)
            return current is not None and current is not after

        async with asyncio.timeout(timeout), self._registered:
            await self._registered.wait_for(ready)
            return self.endpoints[resource_name]
