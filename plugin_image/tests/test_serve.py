"""`rdma-device-plugin serve` as a real process, against the kubelet stand-in over real unix sockets."""

from __future__ import annotations

import asyncio

from plugin_harness import node, plugin_subprocess, run, start_plugin_process

POOLS = {
    "periodicUpdateInterval": 60,
    "configList": [
        {"resourceName": "roce", "rdmaHcaMax": 10, "selectors": {"linkTypes": ["ether"]}},
        {
            "resourceName": "vf",
            "rdmaHcaMax": 8,
            "selectors": {"deviceIDs": ["1018"]},
            "allocation": "exclusive",
        },
    ],
}


def test_serves_registers_allocates_and_cleans_up_on_sigterm() -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", {"mode": "hca"}) as host:
            async with plugin_subprocess(host) as plugin:
                endpoint = await host.kubelet.wait_registered("rdma/hca", timeout=10)
                assert endpoint.request.endpoint == "rdma_hca.sock"
                devices = await endpoint.next_update()
                assert [(d.ID, d.health, d.topology.nodes[0].ID) for d in devices[:2]] == [
                    ("0", "Healthy", 0),
                    ("1", "Healthy", 1),
                ]
                (container,) = (await endpoint.allocate(["42"])).container_responses
                assert dict(container.envs) == {"RDMA_DEVICES": "mlx5_0,mlx5_1"}
                assert len(container.devices) == 7
            # SIGTERM: exit 0 (checked by the harness), socket gone, kubelet saw the stream end cleanly.
            assert not (host.plugin_dir / "rdma_hca.sock").exists()
            await asyncio.wait_for(endpoint.stream_ended.wait(), 2)
            assert "registered rdma/hca" in plugin.log()
            assert "Traceback" not in plugin.log()

    run(scenario)


def test_one_process_serves_every_resource_of_the_pool_format() -> None:
    async def scenario() -> None:
        async with node("sriov_cx5", POOLS) as host, plugin_subprocess(host):
            roce = await host.kubelet.wait_registered("rdma/roce", timeout=10)
            vf = await host.kubelet.wait_registered("rdma/vf", timeout=10)
            assert len(await roce.next_update()) == 10
            assert len(await vf.next_update()) == 8
            # Exclusive pool over the 4 VFs: IDs 1 and 5 both sit on the second VF (mlx5_2).
            (container,) = (await vf.allocate(["1", "5"])).container_responses
            assert dict(container.envs) == {"RDMA_DEVICES": "mlx5_2"}
            (everything,) = (await roce.allocate(["0"])).container_responses
            assert dict(everything.envs) == {"RDMA_DEVICES": "mlx5_0,mlx5_1,mlx5_2,mlx5_3,mlx5_4"}

    run(scenario)


def test_no_rdma_node_stays_up_with_zero_devices_and_says_so_once() -> None:
    async def scenario() -> None:
        async with node("no_rdma", {"mode": "hca"}) as host, plugin_subprocess(host) as plugin:
            endpoint = await host.kubelet.wait_registered("rdma/hca", timeout=10)
            assert await endpoint.next_update() == []
            assert plugin.process.returncode is None
            assert plugin.log().count("advertising 0 devices") == 1

    run(scenario)


def test_bad_config_exits_2_with_one_paragraph_and_no_traceback() -> None:
    async def scenario() -> None:
        config = {"configList": [{"resourceName": "a", "rdmaHcaMax": 1, "selectors": {"vendors": ["15B"]}}]}
        async with node("ib_two_numa", config) as host:
            plugin = await start_plugin_process(host, "--log-format", "json")
            assert await asyncio.wait_for(plugin.process.wait(), 10) == 2
            log = plugin.log()
            assert "configList[0].selectors.vendors[0]" in log
            assert len(log.strip().splitlines()) == 1
            assert "Traceback" not in log
            assert host.kubelet.requests == []

    run(scenario)
