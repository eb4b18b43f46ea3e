"""Other local processes on the plugin socket: one flooding it with HTTP/2 streams (HEADERS then RST_STREAM at
once, "rapid reset") must not cost kubelet its Allocate calls; idle connections are closed; connections beyond
the limit are refused while kubelet's keeps working. Real unix sockets, raw HTTP/2 clients."""

from __future__ import annotations

import asyncio
import contextlib
import struct

import grpc
import pytest
from plugin_harness import node, plugin_in_process, plugin_subprocess, run
from rdma_device_plugin import server

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, HEADERS, RST_STREAM = 4, 1, 3
END_HEADERS = 0x4
CANCEL = 8
STREAMS = 20_000
ALLOCATES = 30


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", kind, flags, stream) + payload


def literal(index: int, value: bytes) -> bytes:
    """HPACK literal header field without indexing, name from the static table (index < 15)."""
    return bytes([index]) + bytes([len(value)]) + value


# :method POST (static 3), :scheme http (static 6), :path, :authority, content-type, te: trailers.
REQUEST_HEADERS = (
    b"\x83\x86"
    + literal(4, b"/v1beta1.DevicePlugin/Allocate")
    + literal(1, b"localhost")
    + b"\x0f\x10"  # content-type: static 31, as a 4-bit prefix integer
    + bytes([len(b"application/grpc")])
    + b"application/grpc"
    + b"\x00\x02te\x08trailers"
)


async def flood(socket_path: str, done: asyncio.Event) -> int:
    """Open streams and reset each at once, as fast as the socket takes them; the number sent."""
    _reader, writer = await asyncio.open_unix_connection(socket_path)
    writer.write(PREFACE + frame(SETTINGS, 0, 0))
    sent = 0
    try:
        for stream in range(1, 2 * STREAMS, 2):
            writer.write(
                frame(HEADERS, END_HEADERS, stream, REQUEST_HEADERS)
                + frame(RST_STREAM, 0, stream, struct.pack(">I", CANCEL))
            )
            sent += 1
            if sent % 200 == 0:
                await writer.drain()
    except ConnectionError:
        pass  # the plugin may close a connection that misbehaves: that is its right
    finally:
        done.set()
        writer.close()
    return sent


def test_kubelets_allocates_all_succeed_while_another_client_floods_the_socket_with_reset_streams() -> None:
    async def scenario() -> None:
        async with node("erdma", {"mode": "hca"}) as host, plugin_subprocess(host):
            endpoint = await host.kubelet.wait_registered("rdma/hca", timeout=10)
            await endpoint.next_update()
            done = asyncio.Event()
            flooder = asyncio.create_task(flood(str(host.plugin_dir / "rdma_hca.sock"), done))
            codes: list[grpc.StatusCode] = []

            async def allocate() -> grpc.StatusCode:
                try:
                    await endpoint.allocate(["0"])
                except grpc.aio.AioRpcError as error:
                    return error.code()
                return grpc.StatusCode.OK

            # Rounds of concurrent calls, as kubelet admitting several pods, for as long as the flood lasts.
            while not done.is_set() or not codes:
                codes += await asyncio.gather(*(allocate() for _ in range(ALLOCATES)))
            await flooder
            assert [code for code in codes if code != grpc.StatusCode.OK] == []
            # kubelet's connection and stream are intact afterwards.
            assert (await endpoint.allocate(["1"])).container_responses

    run(scenario, timeout=60)


async def idle_client(socket_path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that says hello in HTTP/2 and then does nothing."""
    reader, writer = await asyncio.open_unix_connection(socket_path)
    writer.write(PREFACE + frame(SETTINGS, 0, 0))
    with contextlib.suppress(ConnectionError):
        await writer.drain()  # a refused connection is closed before it has read the preface
    return reader, writer


async def closed_by_server(reader: asyncio.StreamReader, timeout: float) -> bool:
    """Whether the server closes the connection within `timeout` (whatever it sends first)."""
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


def test_an_idle_connection_is_closed_and_kubelets_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "IDLE_CONNECTION_SECONDS", 1)

    async def scenario() -> None:
        async with node("erdma", {"mode": "hca"}) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/hca")
            reader, writer = await idle_client(str(host.plugin_dir / "rdma_hca.sock"))
            assert await closed_by_server(reader, 5)
            writer.close()
            # kubelet's connection holds ListAndWatch, so it is never idle.
            assert (await endpoint.allocate(["0"])).container_responses
            assert not endpoint.stream_ended.is_set()

    run(scenario)


def test_connections_beyond_the_limit_are_refused_and_kubelets_keeps_working(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "MAX_CONNECTIONS", 4)

    async def scenario() -> None:
        async with node("erdma", {"mode": "hca"}) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/hca")
            clients = [await idle_client(str(host.plugin_dir / "rdma_hca.sock")) for _ in range(20)]
            closed = [await closed_by_server(reader, 0.5) for reader, _ in clients]
            # kubelet's own connection counts: at most 3 more are kept.
            assert closed.count(False) <= 3
            assert (await endpoint.allocate(["0"])).container_responses
            for _, writer in clients:
                writer.close()

    run(scenario)
