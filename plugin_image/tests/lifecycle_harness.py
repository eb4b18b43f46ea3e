"""Helpers of the lifecycle tests: the plugin's Supervisor run in-process with its /metrics and /healthz
endpoint on a free loopback port, an HTTP client for it, and waiting for a condition with a deadline."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from kubelet_standin import PluginEndpoint
from plugin_harness import EXIT_TIMEOUT, Node
from prometheus_client.parser import text_string_to_metric_families
from rdma_device_plugin.app import Supervisor
from rdma_device_plugin.config import load_config
from rdma_device_plugin.metrics import PluginMetrics
from rdma_device_plugin.settings import MetricsAddress
from rdma_device_plugin.status_server import StatusServer

LOOPBACK = "127.0.0.1"
# Port polls in tests: fast enough that a change shows up at once, slow enough to leave the loop idle.
FAST_POLL = 0.05
CHECK_EVERY = 0.005


async def until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Return as soon as `condition()` holds; TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:g} s")
        await asyncio.sleep(CHECK_EVERY)


@dataclass
class Running:
    supervisor: Supervisor
    port: int
    """The loopback port of /metrics and /healthz."""
    reload: asyncio.Event


async def registered(host: Node, running: Running, resource: str = "rdma/ib") -> PluginEndpoint:
    """kubelet got the Register call and the plugin got its answer: the plugin counts a registration, and
    reports it in /healthz, only once the answer is back, a moment after kubelet has seen the call."""
    endpoint = await host.kubelet.wait_registered(resource)
    await until(lambda: running.supervisor.health().ok, what="the plugin seeing Register answered")
    return endpoint


@asynccontextmanager
async def supervised(host: Node, poll: float = FAST_POLL) -> AsyncIterator[Running]:
    """The plugin as app.run() assembles it, with its Supervisor at hand; stopped on exit."""
    opts = dataclasses.replace(host.serve_options(), health_poll_interval=poll)
    metrics = PluginMetrics()
    supervisor = Supervisor(opts, load_config(host.config_path), metrics)
    status = StatusServer(metrics, supervisor.health)
    await status.start(MetricsAddress(LOOPBACK, 0))
    stop, reload = asyncio.Event(), asyncio.Event()
    try:
        await supervisor.start()
        task = asyncio.create_task(supervisor.run_until(stop, reload), name="supervisor")
        try:
            yield Running(supervisor, status.port, reload)
        finally:
            stop.set()
            await asyncio.wait_for(task, EXIT_TIMEOUT)
    finally:
        await supervisor.stop()
        await status.close()


async def http_get(port: int, path: str, headers: str = "") -> tuple[int, str, str]:
    """GET http://127.0.0.1:<port><path>: (status, content type, body)."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}\r\n{headers}\r\n".encode())
    response = await asyncio.wait_for(reader.read(), EXIT_TIMEOUT)
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split(" ")[1]), fields.get("Content-Type", ""), body.decode()


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(port: int) -> Samples:
    """Every sample of /metrics, keyed by (name, sorted labels), parsed by prometheus_client's own parser."""
    status, _, body = await http_get(port, "/metrics")
    assert status == 200, body
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]
