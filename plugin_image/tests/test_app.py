"""The supervisor: bad config, periodic rediscovery reaching kubelet, and an empty node logged once."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
import pytest
from kubelet_standin import Devices
from plugin_harness import node, plugin_in_process, run
from rdma_device_plugin import app
from rdma_device_plugin.config import parse_config
from rdma_device_plugin.discovery import discover
from rdma_device_plugin.pools import build_pools
from sysfs_fixture import SHAPES

FAST = {
    "periodicUpdateInterval": 0.05,
    "configList": [{"resourceName": "ib", "rdmaHcaMax": 4, "selectors": {}}],
}


def health(devices: Devices) -> list[tuple[str, str, int]]:
    return [(d.ID, d.health, d.topology.nodes[0].ID) for d in devices]


def test_rediscovery_pushes_health_changes_and_removals_to_kubelet() -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", FAST) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/ib")
            assert health(await endpoint.next_update()) == [
                ("0", "Healthy", 0),
                ("1", "Healthy", 1),
                ("2", "Healthy", 0),
                ("3", "Healthy", 1),
            ]
            host.tree.set_port_state("mlx5_1", state="2: INIT", phys_state="5: LinkUp")
            assert health(await endpoint.next_update()) == [
                ("0", "Healthy", 0),
                ("1", "Unhealthy", 1),
                ("2", "Healthy", 0),
                ("3", "Unhealthy", 1),
            ]
            host.tree.set_port_state("mlx5_1", state="4: ACTIVE", phys_state="5: LinkUp")
            assert {d.health for d in await endpoint.next_update()} == {"Healthy"}
            host.tree.remove_hca("mlx5_1")
            update = health(await endpoint.next_update())
            # The port poll may see mlx5_1 vanish before a rediscovery does. Every container of this shared
            # pool gets mlx5_1's nodes too, which are gone, so no ID can be allocated: all turn unhealthy
            # first.
            if update == [
                ("0", "Unhealthy", 0),
                ("1", "Unhealthy", 1),
                ("2", "Unhealthy", 0),
                ("3", "Unhealthy", 1),
            ]:
                update = health(await endpoint.next_update())
            # Every ID is now backed by the remaining HCA; its allocation lists only that HCA.
            assert update == [
                ("0", "Healthy", 0),
                ("1", "Healthy", 0),
                ("2", "Healthy", 0),
                ("3", "Healthy", 0),
            ]
            (container,) = (await endpoint.allocate(["1"])).container_responses
            assert dict(container.envs) == {"RDMA_DEVICES": "mlx5_0"}

    run(scenario)


def test_interval_zero_disables_rediscovery() -> None:
    config = {"periodicUpdateInterval": 0, "mode": "hca"}

    async def scenario() -> None:
        async with node("ib_two_numa", config) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/hca")
            await endpoint.next_update()
            host.tree.remove_hca("mlx5_1")
            # The port poll (every second by default) sees the vanished HCA; only a rediscovery could remove
            # it. Until then every Allocate of this shared pool fails (a container gets every member's nodes,
            # mlx5_1's are gone), so every ID is unhealthy, not only those backed by mlx5_1.
            devices = await endpoint.next_update(timeout=3)
            assert len(devices) == 1000
            assert {d.health for d in devices} == {"Unhealthy"}
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await endpoint.allocate(["0"])
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            # Nothing to await for an update that must not come: give a rediscovery ample time not to happen.
            with pytest.raises(TimeoutError):
                await endpoint.next_update(timeout=0.3)

    run(scenario)


def test_invalid_config_exits_2_with_its_paragraph_and_serves_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> int:
        async with node("ib_two_numa", '{"mode": "hca", "pfNetdevices": "eth0"}') as host:
            status = await app.run(host.serve_options(), asyncio.Event())
            assert host.kubelet.requests == []
            assert [p.name for p in host.plugin_dir.iterdir()] == ["kubelet.sock"]
            return status

    with caplog.at_level(logging.ERROR):
        assert run(scenario) == 2
    (record,) = caplog.records
    assert "pfNetdevices" in record.getMessage()
    assert "\n" not in record.getMessage()


def test_an_empty_resource_is_logged_once_per_stretch_of_emptiness(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tree = SHAPES["ib_two_numa"](tmp_path)
    (pool,) = build_pools(parse_config({"mode": "hca"}), tree.dev_root)
    plugin = app.ResourcePlugin(pool, tmp_path / "dp")
    present = discover(tree.sysfs_root, tree.dev_root)

    def warnings() -> int:
        return sum("advertising 0 devices" in r.getMessage() for r in caplog.records)

    with caplog.at_level(logging.WARNING, logger="rdma_device_plugin.app"):
        assert not plugin.refresh([])
        assert not plugin.refresh([])
        assert warnings() == 1
        assert plugin.refresh(present)
        assert plugin.refresh([])
        assert not plugin.refresh([])
        assert warnings() == 2
