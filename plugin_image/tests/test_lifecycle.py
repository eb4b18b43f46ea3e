"""kubelet restarts, a kubelet that comes late or refuses, streams that kubelet drops, and SIGTERM.

All against the kubelet stand-in over real unix sockets, which restarts the way kubelet does: it deletes
every socket in the device-plugin directory, re-creates kubelet.sock and serves Registration again."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import stat
import time

import pytest
from kubelet_standin import Devices, KubeletStandin, PluginEndpoint
from lifecycle_harness import supervised, until
from plugin_harness import node, plugin_in_process, run, start_plugin_process
from rdma_device_plugin.resource import BACKOFF_FIRST, BACKOFF_MAX, backoff_delay

RESOURCE = "rdma/ib"
SOCKET = "rdma_ib.sock"
POOL = {"periodicUpdateInterval": 0, "configList": [{"resourceName": "ib", "rdmaHcaMax": 4, "selectors": {}}]}
FULL_HEALTHY = [("0", "Healthy"), ("1", "Healthy"), ("2", "Healthy"), ("3", "Healthy")]
RESTARTS = 20


def ids_health(devices: Devices) -> list[tuple[str, str]]:
    return [(device.ID, device.health) for device in devices]


def socket_names(host_dir: os.PathLike[str]) -> list[str]:
    return sorted(os.listdir(host_dir))


def test_twenty_kubelet_restarts_each_re_register_and_the_new_stream_starts_with_the_full_list() -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", POOL) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered(RESOURCE)
            assert ids_health(await endpoint.next_update()) == FULL_HEALTHY
            for restart in range(1, RESTARTS + 1):
                await host.kubelet.restart()
                endpoint = await host.kubelet.wait_registered(RESOURCE)
                assert ids_health(await endpoint.next_update()) == FULL_HEALTHY, f"restart {restart}"
                # One socket, one server: kubelet dialled the re-created socket, which answers Allocate.
                assert socket_names(host.plugin_dir) == ["kubelet.sock", SOCKET]
                (container,) = (await endpoint.allocate(["2"])).container_responses
                assert dict(container.envs) == {"RDMA_DEVICES": "mlx5_0,mlx5_1"}
            # Each restart cost exactly one Register: no duplicate from the socket deletion and the
            # kubelet.sock creation arriving as separate hints.
            assert len(host.kubelet.requests) == RESTARTS + 1

    run(scenario)


def test_a_spurious_kubelet_sock_event_re_registers_once_and_keeps_one_server() -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", POOL) as host, plugin_in_process(host):
            first = await host.kubelet.wait_registered(RESOURCE)
            await first.next_update()
            socket_inode = (host.plugin_dir / SOCKET).stat().st_ino
            # The same kubelet's socket moved out and back: inotify reports kubelet.sock vanishing and
            # appearing although nothing restarted.
            kubelet_sock = host.plugin_dir / "kubelet.sock"
            aside = host.plugin_dir / "kubelet.sock.aside"
            kubelet_sock.rename(aside)
            aside.rename(kubelet_sock)
            second = await host.kubelet.wait_registered(RESOURCE, after=first)
            assert ids_health(await second.next_update()) == FULL_HEALTHY
            assert (host.plugin_dir / SOCKET).stat().st_ino == socket_inode
            assert socket_names(host.plugin_dir) == ["kubelet.sock", SOCKET]
            assert len(host.kubelet.requests) == 2
            (container,) = (await second.allocate(["0"])).container_responses
            assert len(container.devices) == 7

    run(scenario)


def test_kubelet_started_after_the_plugin_gets_it_registered_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with node("erdma", {"mode": "hca"}) as host:
            await host.kubelet.stop()
            assert socket_names(host.plugin_dir) == []
            async with plugin_in_process(host) as plugin:
                await until((host.plugin_dir / "rdma_hca.sock").exists, what="the plugin's socket")
                await until(lambda: "waiting for kubelet" in caplog.text, what="the waiting message")
                assert not plugin.done()
                assert host.kubelet.requests == []
                # kubelet comes up: it deletes the plugin's socket first, then creates kubelet.sock.
                await host.kubelet.start()
                endpoint = await host.kubelet.wait_registered("rdma/hca")
                assert len(await endpoint.next_update()) == 1000
                assert stat.S_ISSOCK((host.plugin_dir / "rdma_hca.sock").stat().st_mode)

    with caplog.at_level(logging.INFO, logger="rdma_device_plugin"):
        run(scenario)
    assert "Traceback" not in caplog.text


def test_a_refused_register_is_retried_with_growing_delays_and_logged_once_per_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refusals = 4

    async def scenario() -> list[float]:
        async with node("erdma", {"mode": "hca"}) as host:
            await host.kubelet.stop()
            host.kubelet = KubeletStandin(host.plugin_dir, refusals=refusals)
            await host.kubelet.start()
            async with plugin_in_process(host):
                await host.kubelet.wait_registered("rdma/hca")
            return host.kubelet.arrivals

    with caplog.at_level(logging.WARNING, logger="rdma_device_plugin"):
        arrivals = run(scenario)
    assert len(arrivals) == refusals + 1
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    for attempt, gap in enumerate(gaps, start=1):
        assert gap >= backoff_delay(attempt), (attempt, gaps)
    failures = [r.getMessage() for r in caplog.records if "device manager is not ready" in r.getMessage()]
    assert [f"(attempt {n});" in line for n, line in enumerate(failures, start=1)] == [True] * refusals
    assert all("rdma/hca" in line and "UNAVAILABLE" in line for line in failures)
    assert not any(r.exc_info for r in caplog.records)


def test_backoff_doubles_from_its_first_delay_up_to_its_cap() -> None:
    delays = [backoff_delay(n) for n in range(1, 40)]
    assert delays[:4] == [BACKOFF_FIRST, 2 * BACKOFF_FIRST, 4 * BACKOFF_FIRST, 8 * BACKOFF_FIRST]
    assert all(a <= b for a, b in itertools.pairwise(delays))
    assert delays[-1] == BACKOFF_MAX


def test_a_stream_kubelet_drops_is_replaced_by_one_starting_with_the_current_list() -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", POOL) as host, supervised(host) as running:
            pool = running.supervisor.plugins[RESOURCE].pool
            endpoint = await host.kubelet.wait_registered(RESOURCE)
            assert ids_health(await endpoint.next_update()) == FULL_HEALTHY
            await endpoint.close()
            # A change while no stream is open must not be lost: the next stream starts with it.
            host.tree.set_port_state("mlx5_1")
            await until(lambda: not all(d.healthy for d in pool.devices()), what="the port poll")
            replacement = PluginEndpoint(endpoint.request, endpoint.socket_path)
            await replacement.connect()
            try:
                assert ids_health(await replacement.next_update()) == [
                    ("0", "Healthy"),
                    ("1", "Unhealthy"),
                    ("2", "Healthy"),
                    ("3", "Unhealthy"),
                ]
            finally:
                await replacement.close()

    run(scenario)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_sigint_stops_serving_removes_every_socket_and_exits_0_within_2_s(signum: int) -> None:
    config = {
        "configList": [
            {"resourceName": "a", "rdmaHcaMax": 2, "selectors": {}},
            {"resourceName": "b", "rdmaHcaMax": 2, "selectors": {"linkTypes": ["infiniband"]}},
        ]
    }

    async def scenario() -> None:
        async with node("ib_two_numa", config) as host:
            plugin = await start_plugin_process(host)
            a = await host.kubelet.wait_registered("rdma/a", timeout=10)
            b = await host.kubelet.wait_registered("rdma/b", timeout=10)
            assert socket_names(host.plugin_dir) == ["kubelet.sock", "rdma_a.sock", "rdma_b.sock"]
            started = time.monotonic()
            plugin.process.send_signal(signum)
            status = await asyncio.wait_for(plugin.process.wait(), 2)
            assert time.monotonic() - started < 2
            assert status == 0, plugin.log()
            assert socket_names(host.plugin_dir) == ["kubelet.sock"]
            for endpoint in (a, b):
                await asyncio.wait_for(endpoint.stream_ended.wait(), 2)
            log = plugin.log()
            assert f"{signal.Signals(signum).name} received: stopping" in log
            assert "Traceback" not in log

    run(scenario)
