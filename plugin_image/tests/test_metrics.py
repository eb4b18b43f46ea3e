"""/metrics and /healthz: counters moving with what kubelet does, gauges following the devices and ports,
/healthz following registration, and the DaemonSet's contract (RDMA_DP_METRICS_ADDRESS, /healthz probes)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import grpc
import pytest
from lifecycle_harness import LOOPBACK, http_get, registered, sample, scrape, supervised, until
from plugin_harness import node, plugin_subprocess, run, start_plugin_process

POOL = {"periodicUpdateInterval": 0, "configList": [{"resourceName": "ib", "rdmaHcaMax": 4, "selectors": {}}]}
IB = {"resource": "rdma/ib"}


def test_a_scrape_shows_the_counters_and_gauges_moving() -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", POOL) as host, supervised(host) as running:
            endpoint = await registered(host, running)
            await endpoint.next_update()
            before = await scrape(running.port)
            assert sample(before, "rdma_device_plugin_devices", health="Healthy", **IB) == 4
            assert sample(before, "rdma_device_plugin_devices", health="Unhealthy", **IB) == 0
            assert sample(before, "rdma_device_plugin_resource_serving", **IB) == 1
            assert sample(before, "rdma_device_plugin_resource_registered", **IB) == 1
            assert sample(before, "rdma_device_plugin_registrations_total", **IB) == 1
            assert sample(before, "rdma_device_plugin_allocations_total", **IB) == 0
            assert sample(before, "rdma_device_plugin_kubelet_restarts_total") == 0
            assert sample(before, "rdma_device_plugin_rediscoveries_total") == 0
            assert sample(before, "rdma_device_plugin_port_active", ibdev="mlx5_1", port="1") == 1
            assert (
                sample(before, "rdma_device_plugin_port_state", ibdev="mlx5_1", port="1", state="ACTIVE") == 1
            )
            assert (
                sample(before, "rdma_device_plugin_port_state", ibdev="mlx5_1", port="1", state="DOWN") == 0
            )

            await endpoint.allocate(["0"])
            await endpoint.allocate(["1"], ["2"])
            with pytest.raises(grpc.aio.AioRpcError):
                await endpoint.allocate(["4"])
            host.tree.set_port_state("mlx5_1", state="1: DOWN", phys_state="3: Disabled")
            await endpoint.next_update()
            await running.supervisor.rediscover()
            await host.kubelet.restart()
            await registered(host, running)

            after = await scrape(running.port)
            assert sample(after, "rdma_device_plugin_allocations_total", **IB) == 3
            assert (
                sample(after, "rdma_device_plugin_allocation_errors_total", code="INVALID_ARGUMENT", **IB)
                == 1
            )
            assert sample(after, "rdma_device_plugin_allocate_duration_seconds_count", **IB) == 3
            assert 0 < sample(after, "rdma_device_plugin_allocate_duration_seconds_sum", **IB) < 1
            assert sample(after, "rdma_device_plugin_allocate_duration_seconds_bucket", le="+Inf", **IB) == 3
            assert sample(after, "rdma_device_plugin_registrations_total", **IB) == 2
            assert sample(after, "rdma_device_plugin_kubelet_restarts_total") == 1
            assert sample(after, "rdma_device_plugin_rediscoveries_total") == 1
            assert sample(after, "rdma_device_plugin_devices", health="Unhealthy", **IB) == 2
            assert sample(after, "rdma_device_plugin_port_active", ibdev="mlx5_1", port="1") == 0
            assert sample(after, "rdma_device_plugin_port_state", ibdev="mlx5_1", port="1", state="DOWN") == 1
            assert (
                sample(
                    after,
                    "rdma_device_plugin_port_phys_state",
                    ibdev="mlx5_1",
                    port="1",
                    phys_state="Disabled",
                )
                == 1
            )

    run(scenario)


def test_healthz_is_200_while_every_resource_is_served_and_registered_and_503_otherwise() -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", POOL) as host, supervised(host) as running:
            await registered(host, running)
            assert await http_get(running.port, "/healthz") == (
                200,
                "text/plain; charset=utf-8",
                "rdma/ib: serving, registered\n",
            )
            await host.kubelet.stop()
            await until(lambda: not running.supervisor.health().ok, what="kubelet.sock's removal seen")
            status, _, body = await http_get(running.port, "/healthz")
            assert (status, body) == (503, "rdma/ib: serving, NOT registered\n")
            await host.kubelet.start()
            await host.kubelet.wait_registered("rdma/ib")
            await until(lambda: running.supervisor.health().ok, what="healthy again")
            assert (await http_get(running.port, "/healthz"))[0] == 200

    run(scenario)


def test_healthz_fails_once_the_device_plugin_directory_itself_is_gone() -> None:
    async def scenario() -> None:
        async with node("erdma", POOL) as host, supervised(host) as running:
            await host.kubelet.wait_registered("rdma/ib")
            await host.kubelet.stop()
            for entry in host.plugin_dir.iterdir():
                entry.unlink()
            host.plugin_dir.rmdir()
            await until(lambda: not running.supervisor.watching, what="the lost watch")
            status, _, body = await http_get(running.port, "/healthz")
            assert status == 503
            assert body.endswith(f"{host.plugin_dir}: NOT watched, kubelet restarts would go unnoticed\n")
            host.plugin_dir.mkdir()

    run(scenario)


def test_the_endpoint_answers_only_get_and_head_on_its_two_paths() -> None:
    async def scenario() -> None:
        async with node("erdma", POOL) as host, supervised(host) as running:
            await host.kubelet.wait_registered("rdma/ib")
            assert (await http_get(running.port, "/"))[0] == 404
            status, content_type, body = await http_get(
                running.port, "/metrics?x=1", headers="Accept: application/openmetrics-text\r\n"
            )
            assert status == 200
            assert content_type.startswith("application/openmetrics-text")
            assert body.endswith("# EOF\n")
            reader, writer = await asyncio.open_connection(LOOPBACK, running.port)
            writer.write(b"POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert (await reader.read()).startswith(b"HTTP/1.1 405 ")
            writer.close()
            reader, writer = await asyncio.open_connection(LOOPBACK, running.port)
            writer.write(b"HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert (await reader.read()).endswith(b"Connection: close\r\n\r\n")
            writer.close()

    run(scenario)


@pytest.fixture
def free_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
    yield port


def test_the_daemonset_contract_metrics_address_from_the_environment_and_healthz(
    free_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RDMA_DP_METRICS_ADDRESS", f"{LOOPBACK}:{free_port}")

    async def scenario() -> None:
        async with node("scc_roce_lag", {"mode": "hca"}) as host, plugin_subprocess(host) as plugin:
            await host.kubelet.wait_registered("rdma/hca", timeout=10)
            await until(lambda: "registered rdma/hca" in plugin.log(), what="registration")
            status, _, body = await http_get(free_port, "/healthz")
            assert (status, body) == (200, "rdma/hca: serving, registered\n")
            samples = await scrape(free_port)
            assert (
                sample(samples, "rdma_device_plugin_devices", resource="rdma/hca", health="Healthy") == 1000
            )

    run(scenario)


def test_an_address_already_in_use_exits_2_naming_the_flag_in_one_paragraph(free_port: int) -> None:
    async def scenario() -> None:
        async with node("erdma", {"mode": "hca"}) as host:
            with socket.socket() as taken:
                taken.bind((LOOPBACK, free_port))
                taken.listen()
                plugin = await start_plugin_process(host, "--metrics-address", f"{LOOPBACK}:{free_port}")
                # Bad input, found before anything starts: exit 2 (the README's promise), one paragraph.
                assert await asyncio.wait_for(plugin.process.wait(), 10) == 2
            log = plugin.log()
            assert f"cannot serve /metrics and /healthz on {LOOPBACK}:{free_port} (--metrics-address" in log
            assert "Address already in use; another process listens on that port; choose a free one" in log
            assert log.count("\n") == 1
            assert "Traceback" not in log
            assert host.kubelet.requests == []

    run(scenario)
