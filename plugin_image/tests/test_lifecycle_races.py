"""kubelet restarting while the plugin is in the middle of serving or registering: the plugin registers with
the newest kubelet within milliseconds instead of waiting out a dial or a call meant for an older one.

Real unix sockets, the kubelet stand-in, the plugin in-process."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import grpc
from kubelet_standin import KubeletStandin
from plugin_harness import node, plugin_in_process, run
from rdma_device_plugin.api import api_pb2

RESOURCE = "rdma/ib"
SOCKET = "rdma_ib.sock"
POOL = {"periodicUpdateInterval": 0, "configList": [{"resourceName": "ib", "rdmaHcaMax": 4, "selectors": {}}]}
# Far below the waits these races used to cost (the 5 s self-dial, kubelet's 10 s dial-back), far above a
# registration on a busy machine (milliseconds).
PROMPTLY = 2.0


class SocketDeletingKubelet(KubeletStandin):
    """A kubelet whose first Register finds the plugin's socket deleted, as when another kubelet start
    deleted it a moment earlier: the dial-back can only time out, after 10 s."""

    async def Register(  # noqa: N802 (the protocol's name)
        self,
        request: api_pb2.RegisterRequest,
        context: grpc.aio.ServicerContext[api_pb2.RegisterRequest, api_pb2.Empty],
    ) -> api_pb2.Empty:
        if not self.arrivals:
            (self.plugin_dir / request.endpoint).unlink()
        return await super().Register(request, context)


class HangingKubelet(KubeletStandin):
    """A kubelet that takes Register calls and never answers them."""

    async def Register(  # noqa: N802 (the protocol's name)
        self,
        request: api_pb2.RegisterRequest,
        context: grpc.aio.ServicerContext[api_pb2.RegisterRequest, api_pb2.Empty],
    ) -> Any:
        self.arrivals.append(time.perf_counter())
        await asyncio.Event().wait()


def test_a_register_whose_plugin_socket_is_deleted_meanwhile_is_redone_at_once() -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", POOL) as host:
            await host.kubelet.stop()
            kubelet = SocketDeletingKubelet(host.plugin_dir)
            await kubelet.start()
            try:
                async with plugin_in_process(host):
                    started = time.perf_counter()
                    endpoint = await kubelet.wait_registered(RESOURCE, timeout=PROMPTLY)
                    assert len(await endpoint.next_update()) == 4
                    assert time.perf_counter() - started < PROMPTLY
                    assert len(kubelet.arrivals) == 2
            finally:
                await kubelet.stop()

    run(scenario)


def test_a_register_in_flight_to_a_kubelet_that_was_replaced_is_abandoned_for_the_new_one() -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", POOL) as host:
            await host.kubelet.stop()
            hanging = HangingKubelet(host.plugin_dir)
            await hanging.start()
            try:
                async with plugin_in_process(host):
                    while not hanging.arrivals:
                        await asyncio.sleep(0.001)
                    # A new kubelet takes over the directory while the old one still holds the call.
                    fresh = KubeletStandin(host.plugin_dir)
                    await fresh.start()
                    try:
                        endpoint = await fresh.wait_registered(RESOURCE, timeout=PROMPTLY)
                        assert len(await endpoint.next_update()) == 4
                    finally:
                        await fresh.stop()
            finally:
                await hanging.stop()

    run(scenario)


def test_two_kubelet_restarts_2_to_5_ms_apart_re_register_promptly_every_time() -> None:
    rng = random.Random(15)

    async def scenario() -> None:
        async with node("ib_two_numa", POOL) as host, plugin_in_process(host):
            await host.kubelet.wait_registered(RESOURCE)
            for trial in range(20):
                await host.kubelet.restart()
                await asyncio.sleep(rng.uniform(0.002, 0.005))
                await host.kubelet.restart()
                started = time.perf_counter()
                endpoint = await host.kubelet.wait_registered(RESOURCE, timeout=PROMPTLY)
                assert len(await endpoint.next_update()) == 4, f"trial {trial}"
                assert time.perf_counter() - started < PROMPTLY, f"trial {trial}"

    run(scenario, timeout=60)
