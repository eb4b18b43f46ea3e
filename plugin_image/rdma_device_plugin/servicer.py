"""One pool's DevicePlugin service, and the change broadcast its ListAndWatch streams follow."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, NoReturn, Protocol

import grpc

from rdma_device_plugin.api import api_pb2, api_pb2_grpc
from rdma_device_plugin.discovery import Hca
from rdma_device_plugin.pools import (
    Allocation,
    AllocationError,
    DeviceState,
    MissingDeviceNodeError,
    ResourcePool,
    UnknownDeviceError,
)

log = logging.getLogger(__name__)

HEALTHY = "Healthy"
UNHEALTHY = "Unhealthy"


def plugin_options() -> api_pb2.DevicePluginOptions:
    """Sent both in RegisterRequest and from GetDevicePluginOptions (kubelet keeps the latter)."""
    return api_pb2.DevicePluginOptions(pre_start_required=False, get_preferred_allocation_available=True)


# The one place where a refused allocation becomes a gRPC status. Looked up along the exception's MRO, so a
# new AllocationError subclass without its own entry still gets the base class's code.
STATUS_OF_ERROR: dict[type[AllocationError], grpc.StatusCode] = {
    UnknownDeviceError: grpc.StatusCode.INVALID_ARGUMENT,
    MissingDeviceNodeError: grpc.StatusCode.FAILED_PRECONDITION,
    AllocationError: grpc.StatusCode.FAILED_PRECONDITION,
}


def status_of(error: AllocationError) -> grpc.StatusCode:
    return next(STATUS_OF_ERROR[cls] for cls in type(error).__mro__ if cls in STATUS_OF_ERROR)


class AllocateObserver(Protocol):
    """Told about every Allocate call (metrics.AllocateMetrics)."""

    def allocated(self, containers: int, seconds: float) -> None: ...

    def refused(self, code: grpc.StatusCode, seconds: float) -> None: ...


class DeviceFeed:
    """Owns a pool's refreshes and wakes every ListAndWatch stream of that pool when its devices change.

    Every wake replaces the event, so a stream that captured the event before reading the device list is
    woken by any change made after that read: nothing changes unseen between a stream's read and its wait.
    """

    def __init__(self, pool: ResourcePool) -> None:
        self.pool = pool
        self._changed = asyncio.Event()

    def refresh(self, hcas: Sequence[Hca]) -> bool:
        """Re-evaluate the pool against freshly discovered HCAs; wake the streams if its devices changed."""
        changed = self.pool.refresh(hcas)
        if changed:
            self.wake()
        return changed

    def wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def next_change(self) -> asyncio.Event:
        """The event the next wake() sets; take it before reading devices()."""
        return self._changed


def device_message(device: DeviceState) -> api_pb2.Device:
    message = api_pb2.Device(ID=device.id, health=HEALTHY if device.healthy else UNHEALTHY)
    if device.numa_node is not None:
        message.topology.nodes.add(ID=device.numa_node)
    return message


def allocation_message(allocation: Allocation) -> api_pb2.ContainerAllocateResponse:
    return api_pb2.ContainerAllocateResponse(
        envs=allocation.envs,
        devices=[
            api_pb2.DeviceSpec(container_path=node, host_path=node, permissions="rw")
            for node in allocation.device_nodes
        ],
    )


class AllocateResponses:
    """AllocateResponse messages already built, by content. kubelet asks for the same few answers over and
    over (a shared pool gives every container the same nodes), and building the message costs more than
    the rest of an Allocate. Keyed by everything the message holds, so an entry is never stale; emptied
    when full, which bounds it however many distinct answers an SR-IOV pool can give."""

    LIMIT = 256

    def __init__(self) -> None:
        self._built: dict[tuple[tuple[object, ...], ...], api_pb2.AllocateResponse] = {}

    def answer(self, allocations: Sequence[Allocation]) -> api_pb2.AllocateResponse:
        """The response for `allocations`, one per container in request order. Callers must not modify it."""
        key = tuple((allocation.device_nodes, *allocation.envs.items()) for allocation in allocations)
        response = self._built.get(key)
        if response is None:
            if len(self._built) >= self.LIMIT:
                self._built.clear()
            response = api_pb2.AllocateResponse(container_responses=map(allocation_message, allocations))
            self._built[key] = response
        return response


class DevicePluginServicer(api_pb2_grpc.DevicePluginServicer):
    """The five v1beta1 RPCs over one ResourcePool (method names are the protocol's, hence noqa N802).
    One instance per server lifetime: close() ends its streams."""

    def __init__(self, feed: DeviceFeed, observer: AllocateObserver | None = None) -> None:
        self._feed = feed
        self._pool = feed.pool
        self._observer = observer
        self._responses = AllocateResponses()
        self._closed = False

    def close(self) -> None:
        """End this servicer's ListAndWatch streams cleanly (kubelet then sees the stream finish)."""
        self._closed = True
        self._feed.wake()

    async def GetDevicePluginOptions(  # noqa: N802
        self,
        request: api_pb2.Empty,
        context: grpc.aio.ServicerContext[api_pb2.Empty, api_pb2.DevicePluginOptions],
    ) -> api_pb2.DevicePluginOptions:
        return plugin_options()

    async def ListAndWatch(  # noqa: N802
        self,
        request: api_pb2.Empty,
        context: grpc.aio.ServicerContext[api_pb2.Empty, api_pb2.ListAndWatchResponse],
    ) -> AsyncIterator[api_pb2.ListAndWatchResponse]:
        sent: list[DeviceState] | None = None
        while not self._closed:
            change = self._feed.next_change()
            devices = self._pool.devices()
            # Wakes are coalesced and a change can be undone before a stream runs: push only real changes.
            if devices != sent:
                yield api_pb2.ListAndWatchResponse(devices=[device_message(d) for d in devices])
                sent = devices
            await change.wait()

    async def Allocate(  # noqa: N802
        self,
        request: api_pb2.AllocateRequest,
        context: grpc.aio.ServicerContext[api_pb2.AllocateRequest, api_pb2.AllocateResponse],
    ) -> api_pb2.AllocateResponse:
        started = time.perf_counter()
        allocations = []
        for container in request.container_requests:
            try:
                allocation = self._pool.allocate(container.devices_ids)
            except AllocationError as error:
                if self._observer is not None:
                    self._observer.refused(status_of(error), time.perf_counter() - started)
                await self._refuse(context, "Allocate", error)
            allocations.append(allocation)
            # The allocations metric counts them; a line per container is for debugging only.
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "allocated %s ids=%s devices=%s",
                    self._pool.config.resource_name,
                    ",".join(container.devices_ids),
                    ",".join(allocation.device_nodes),
                    extra={"resource": self._pool.config.resource_name},
                )
        response = self._responses.answer(allocations)
        if self._observer is not None:
            self._observer.allocated(len(allocations), time.perf_counter() - started)
        return response

    async def GetPreferredAllocation(  # noqa: N802
        self,
        request: api_pb2.PreferredAllocationRequest,
        context: grpc.aio.ServicerContext[
            api_pb2.PreferredAllocationRequest, api_pb2.PreferredAllocationResponse
        ],
    ) -> api_pb2.PreferredAllocationResponse:
        response = api_pb2.PreferredAllocationResponse()
        for container in request.container_requests:
            try:
                ids = self._pool.preferred(
                    list(container.available_deviceIDs),
                    list(container.must_include_deviceIDs),
                    container.allocation_size,
                )
            except AllocationError as error:
                await self._refuse(context, "GetPreferredAllocation", error)
            response.container_responses.add(deviceIDs=ids)
        return response

    async def PreStartContainer(  # noqa: N802
        self,
        request: api_pb2.PreStartContainerRequest,
        context: grpc.aio.ServicerContext[
            api_pb2.PreStartContainerRequest, api_pb2.PreStartContainerResponse
        ],
    ) -> api_pb2.PreStartContainerResponse:
        # Registered with pre_start_required=false, so kubelet never calls this; nothing to prepare anyway.
        return api_pb2.PreStartContainerResponse()

    async def _refuse(
        self, context: grpc.aio.ServicerContext[Any, Any], rpc: str, error: AllocationError
    ) -> NoReturn:
        code = status_of(error)
        resource = self._pool.config.resource_name
        log.warning(
            "%s refused for %s: %s: %s", rpc, resource, code.name, error, extra={"resource": resource}
        )
        await context.abort(code, str(error))
