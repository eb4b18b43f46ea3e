"""Abuse of the /metrics and /healthz endpoint: every request gets a status, nothing a client sends is echoed
into the response head, and nothing is logged as an error. The plugin's Supervisor in-process, its endpoint on
a loopback port, raw TCP clients."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
from lifecycle_harness import LOOPBACK, http_get, registered, supervised
from plugin_harness import node, run
from prometheus_client.parser import text_string_to_metric_families
from rdma_device_plugin.status_server import MAX_BODY_BYTES, MAX_HEAD_BYTES
from test_hostile_rpc import add_hca_named_not_utf8

POOL = {"periodicUpdateInterval": 0, "configList": [{"resourceName": "ib", "rdmaHcaMax": 4, "selectors": {}}]}
TIMEOUT = 5.0


async def exchange(port: int, request: bytes) -> bytes:
    """Send `request` raw, half-close, and return everything the server answers before closing."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    writer.write(request)
    await writer.drain()
    writer.write_eof()
    response = await asyncio.wait_for(reader.read(), TIMEOUT)
    writer.close()
    return response


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def head_of(response: bytes) -> list[bytes]:
    return response.partition(b"\r\n\r\n")[0].split(b"\r\n")


def serve_and_check(
    scenario_body: Callable[[int], Awaitable[None]], caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with node("erdma", POOL) as host, supervised(host) as running:
            await host.kubelet.wait_registered("rdma/ib")
            with caplog.at_level(logging.INFO):
                await scenario_body(running.port)

    run(scenario)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_an_accept_version_prometheus_client_cannot_read_gets_the_default_format(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(port: int) -> None:
        for accept in ("application/openmetrics-text; version=abc", "text/plain; version=x.y"):
            status, content_type, text = await http_get(port, "/metrics", headers=f"Accept: {accept}\r\n")
            assert status == 200
            assert content_type == "text/plain; version=0.0.4; charset=utf-8"
            assert "rdma_device_plugin_devices" in text

    serve_and_check(body, caplog)


def test_a_bare_lf_in_an_accept_header_is_never_echoed_into_the_response_head(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(port: int) -> None:
        response = await exchange(
            port,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
            b"Accept: application/openmetrics-text; version=1.0.0\nX-Injected: yes\r\n\r\n",
        )
        assert status_of(response) == 200
        assert not any(line.lower().startswith(b"x-injected") for line in head_of(response))
        assert b"X-Injected" not in response.partition(b"\r\n\r\n")[0]

    serve_and_check(body, caplog)


def test_a_head_over_its_limit_gets_431(caplog: pytest.LogCaptureFixture) -> None:
    async def body(port: int) -> None:
        # h11 checks the limit on what it holds unparsed, read in chunks: well over it is always refused.
        filler = b"X-Filler: " + b"a" * 2 * MAX_HEAD_BYTES + b"\r\n"
        response = await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + filler + b"\r\n")
        assert status_of(response) == 431
        assert response.endswith(b"request head too large\n")

    serve_and_check(body, caplog)


def test_a_post_gets_405_with_a_small_body_and_413_with_a_large_one(caplog: pytest.LogCaptureFixture) -> None:
    async def body(port: int) -> None:
        small = await exchange(port, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        assert status_of(small) == 405
        size = MAX_BODY_BYTES * 4
        large = await exchange(
            port, b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size + b"a" * size
        )
        assert status_of(large) == 413

    serve_and_check(body, caplog)


def test_garbage_and_half_requests_get_400(caplog: pytest.LogCaptureFixture) -> None:
    async def body(port: int) -> None:
        assert status_of(await exchange(port, b"\x00\x01 not http at all\r\n\r\n")) == 400
        assert status_of(await exchange(port, b"GET /healthz HTTP/1.1\r\nBad Header Line\r\n\r\n")) == 400
        # Half a request, then the client stops sending.
        assert status_of(await exchange(port, b"GET /hea")) == 400

    serve_and_check(body, caplog)


def test_metrics_answer_when_an_ibdev_name_is_not_utf8_with_the_name_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with node("erdma", POOL) as host:
            add_hca_named_not_utf8(host, verbs_node=True)
            async with supervised(host) as running:
                await registered(host, running)
                status, _, text = await http_get(running.port, "/metrics")
                assert status == 200
                labels = {
                    sample.labels.get("ibdev")
                    for family in text_string_to_metric_families(text)
                    for sample in family.samples
                }
                assert "mlx5_\\udcff" in labels
                assert (await http_get(running.port, "/healthz"))[0] == 200

    with caplog.at_level(logging.INFO):
        run(scenario)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
