"""One pool's DevicePlugin service, and the change broadcast its ListAndWatch streams follow."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeAlias

import grpc

from rdma_device_plugin.api import api_pb2, api_pb2_grpc
from rdma_device_plugin.discovery import Hca
from rdma_device_plugin.pools import Allocation, DeviceState, ResourcePool
from rdma_device_plugin.rpc_status import (
    MAX_DETAIL_CHARS,
    AnswerTooLargeError,
    RefusalLog,
    TooManyContainersError,
    check_parsed,
    status_of,
    tolerant,
)
from rdma_device_plugin.text import shorten

log = logging.getLogger(__name__)

HEALTHY = "Healthy"
UNHEALTHY = "Unhealthy"
# kubelet sends one Allocate per pod, with one container request per container that asks for the resource:
# a few, at most tens in any real pod. The bound keeps one call from blocking the loop for seconds.
MAX_CONTAINERS_PER_REQUEST = 1024
# kubelet's gRPC client refuses a message over grpc-go's default receive size, 4 MiB
# (defaultClientMaxReceiveMessageSize): a bigger answer could only fail there.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
# Answers kept for reuse, in serialized bytes: a few hundred typical answers, whatever their count says.
ANSWER_CACHE_BYTES = 4 * 1024 * 1024


def plugin_options() -> api_pb2.DevicePluginOptions:
    """Sent both in RegisterRequest and from GetDevicePluginOptions (kubelet keeps the latter)."""
    return api_pb2.DevicePluginOptions(pre_start_required=False, get_preferred_allocation_available=True)


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
    when full, by count or by bytes, which bounds it however many distinct answers an SR-IOV pool can give
    and however large each is."""

    LIMIT = 256
    MAX_BYTES = ANSWER_CACHE_BYTES

    def __init__(self) -> None:
        self._built: dict[tuple[tuple[object, ...], ...], api_pb2.AllocateResponse] = {}
        self._bytes = 0

    def answer(self, allocations: Sequence[Allocation]) -> api_pb2.AllocateResponse:
        """The response for `allocations`, one per container in request order. Callers must not modify it.
        AnswerTooLargeError if it would be more than kubelet accepts."""
        key = tuple((allocation.device_nodes, *allocation.envs.items()) for allocation in allocations)
        response = self._built.get(key)
        if response is None:
            response = api_pb2.AllocateResponse(container_responses=map(allocation_message, allocations))
            size = response.ByteSize()
            if size > MAX_ANSWER_BYTES:
                raise AnswerTooLargeError(
                    f"the answer for {len(allocations)} containers would be {size} bytes, more than the "
                    f"{MAX_ANSWER_BYTES} kubelet accepts in one message; ask for fewer containers per pod"
                )
            if len(self._built) >= self.LIMIT or self._bytes + size > self.MAX_BYTES:
                self._built.clear()
                self._bytes = 0
            self._built[key] = response
            self._bytes += size
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
        try:
            response = self._allocate(request)
        except Exception as error:
            if self._observer is not None:
                self._observer.refused(status_of(error), time.perf_counter() - started)
            raise
        if self._observer is not None:
            self._observer.allocated(len(response.container_responses), time.perf_counter() - started)
        return response

    def _allocate(self, request: api_pb2.AllocateRequest) -> api_pb2.AllocateResponse:
        resource = self._pool.config.resource_name
        self._check_containers("Allocate", len(request.container_requests))
        allocations = []
        for container in request.container_requests:
            allocation = self._pool.allocate(container.devices_ids)
            allocations.append(allocation)
            # The allocations metric counts them; a line per container is for debugging only.
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "allocated %s ids=%s devices=%s",
                    resource,
                    shorten(",".join(container.devices_ids), MAX_DETAIL_CHARS),
                    ",".join(allocation.device_nodes),
                    extra={"resource": resource},
                )
        return self._responses.answer(allocations)

    def _check_containers(self, rpc: str, containers: int) -> None:
        if containers > MAX_CONTAINERS_PER_REQUEST:
            raise TooManyContainersError(
                f"{self._pool.config.resource_name}: the {rpc} request names {containers} containers, more "
                f"than the {MAX_CONTAINERS_PER_REQUEST} one call may carry"
            )

    async def GetPreferredAllocation(  # noqa: N802
        self,
        request: api_pb2.PreferredAllocationRequest,
        context: grpc.aio.ServicerContext[
            api_pb2.PreferredAllocationRequest, api_pb2.PreferredAllocationResponse
        ],
    ) -> api_pb2.PreferredAllocationResponse:
        self._check_containers("GetPreferredAllocation", len(request.container_requests))
        response = api_pb2.PreferredAllocationResponse()
        for container in request.container_requests:
            ids = self._pool.preferred(
                list(container.available_deviceIDs),
                list(container.must_include_deviceIDs),
                container.allocation_size,
            )
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


# grpc's classes are generic only in its type stubs.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
if TYPE_CHECKING:
    Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    Interceptor = grpc.aio.ServerInterceptor


class StatusInterceptor(Interceptor):
    """Wraps every unary and server-streaming handler of one resource's socket."""

    def __init__(self, resource: str) -> None:
        self._resource = resource
        self._refusals = RefusalLog()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler: Any = await continuation(handler_call_details)
        if handler is None:
            return None  # type: ignore[return-value]  # an unknown method: grpc answers UNIMPLEMENTED
        rpc = handler_call_details.method.rsplit("/", 1)[-1]
        deserializer = tolerant(handler.request_deserializer)
        wrapped: Handler = handler
        # grpc's handlers are namedtuples: _replace keeps the serializer and the streaming flags.
        if handler.unary_unary is not None:
            wrapped = handler._replace(
                request_deserializer=deserializer, unary_unary=self._unary(rpc, handler.unary_unary)
            )
        elif handler.unary_stream is not None:
            wrapped = handler._replace(
                request_deserializer=deserializer, unary_stream=self._stream(rpc, handler.unary_stream)
            )
        return wrapped

    def _unary(
        self, rpc: str, behaviour: Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
    ) -> Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]:
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                check_parsed(rpc, request)
                return await behaviour(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as error:  # every failure must end the call with a status
                await self._refuse(context, rpc, error)

        return call

    def _stream(
        self, rpc: str, behaviour: Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]]
    ) -> Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]]:
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            try:
                check_parsed(rpc, request)
                async for response in behaviour(request, context):
                    yield response
            except grpc.aio.AbortError:
                raise
            except Exception as error:  # every failure must end the call with a status
                await self._refuse(context, rpc, error)

        return call

    async def _refuse(
        self, context: grpc.aio.ServicerContext[Any, Any], rpc: str, error: Exception
    ) -> NoReturn:
        code = status_of(error)
        detail = shorten(str(error), MAX_DETAIL_CHARS)
        if code == grpc.StatusCode.INTERNAL:
            detail = f"{rpc} failed inside the plugin ({type(error).__name__}): {detail}"
        left_out = self._refusals.admit((rpc, code))
        if left_out is not None:
            more = f" ({left_out} more like it not logged)" if left_out else ""
            extra = {"resource": self._resource}
            if code == grpc.StatusCode.INTERNAL:
                log.error("%s%s", detail, more, exc_info=error, extra=extra)
            else:
                log.warning(
                    "%s refused for %s: %s: %s%s", rpc, self._resource, code.name, detail, more, extra=extra
                )
        await context.abort(code, detail)
