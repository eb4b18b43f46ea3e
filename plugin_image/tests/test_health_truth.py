"""Health is true: an ID kubelet sees as Healthy is one Allocate succeeds for, now. Checked through the
kubelet stand-in over real sockets when a verbs node vanishes and comes back (before and after
rediscovery), and when an RDMA device has no verbs device at all, for shared and exclusive pools."""

from __future__ import annotations

import logging

import grpc
import pytest
from kubelet_standin import Devices, PluginEndpoint
from lifecycle_harness import supervised
from plugin_harness import node, run

SHARED = {
    "periodicUpdateInterval": 0,
    "configList": [{"resourceName": "ib", "rdmaHcaMax": 4, "selectors": {}}],
}
EXCLUSIVE = {
    "periodicUpdateInterval": 0,
    "configList": [{"resourceName": "ib", "rdmaHcaMax": 4, "selectors": {}, "allocation": "exclusive"}],
}


def health(devices: Devices) -> dict[str, str]:
    return {d.ID: d.health for d in devices}


async def allocates(endpoint: PluginEndpoint, device_id: str) -> bool:
    try:
        await endpoint.allocate([device_id])
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
        return False
    return True


async def assert_health_is_true(endpoint: PluginEndpoint, devices: Devices) -> None:
    """Every ID Allocate succeeds for is Healthy, and every Healthy ID Allocate succeeds for."""
    for device in devices:
        assert await allocates(endpoint, device.ID) == (device.health == "Healthy"), device


def test_a_vanished_verbs_node_makes_every_id_of_a_shared_pool_unhealthy_until_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", SHARED) as host, supervised(host) as running:
            endpoint = await host.kubelet.wait_registered("rdma/ib")
            first = await endpoint.next_update()
            assert set(health(first).values()) == {"Healthy"}
            await assert_health_is_true(endpoint, first)

            # udev or an operator removes mlx5_1's verbs node; sysfs still shows the device, port ACTIVE.
            host.tree.remove_dev_node("uverbs1")
            gone = await endpoint.next_update()
            assert set(health(gone).values()) == {"Unhealthy"}
            await assert_health_is_true(endpoint, gone)
            # A rediscovery sees the same: nothing changes, nothing is pushed.
            await running.supervisor.rediscover()
            assert {d.healthy for d in running.supervisor.plugins["rdma/ib"].pool.devices()} == {False}
            with pytest.raises(TimeoutError):
                await endpoint.next_update(timeout=0.3)

            (host.tree.dev_root / "infiniband" / "uverbs1").touch()
            back = await endpoint.next_update()
            assert set(health(back).values()) == {"Healthy"}
            await assert_health_is_true(endpoint, back)

    with caplog.at_level(logging.INFO):
        run(scenario)
    messages = [r.getMessage() for r in caplog.records]
    assert (
        "mlx5_1: /dev/infiniband/uverbs1 is gone from the dev root; the IDs that need it turn unhealthy"
        in (messages)
    )
    blocked = [m for m in messages if "has no usable verbs device" in m]
    assert blocked == [
        "rdma/ib: every container of this shared pool gets every member's device nodes, and mlx5_1 has no "
        "usable verbs device (no uverbs in sysfs or no node under --dev-root), so Allocate would fail: every "
        "ID is unhealthy until it has one; or narrow the pool's selectors to leave it out"
    ]
    assert "rdma/ib: every member has its verbs device again" in messages


def test_in_an_exclusive_pool_only_the_ids_of_the_device_without_its_node_turn_unhealthy() -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", EXCLUSIVE) as host, supervised(host) as running:
            endpoint = await host.kubelet.wait_registered("rdma/ib")
            await assert_health_is_true(endpoint, await endpoint.next_update())
            host.tree.remove_dev_node("uverbs1")
            gone = await endpoint.next_update()
            # IDs 1 and 3 are backed by mlx5_1.
            assert health(gone) == {"0": "Healthy", "1": "Unhealthy", "2": "Healthy", "3": "Unhealthy"}
            await assert_health_is_true(endpoint, gone)
            await running.supervisor.rediscover()
            with pytest.raises(TimeoutError):
                await endpoint.next_update(timeout=0.3)
            await assert_health_is_true(endpoint, gone)

    run(scenario)


@pytest.mark.parametrize(
    ("config", "expected"), [(SHARED, {"Unhealthy"}), (EXCLUSIVE, {"Healthy", "Unhealthy"})]
)
def test_a_device_with_no_verbs_device_in_sysfs_is_never_advertised_as_allocatable(
    config: dict[str, object], expected: set[str]
) -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", config) as host:
            # mlx5_1 without ib_uverbs: class/infiniband lists it, class/infiniband_verbs has no uverbs
            # for it.
            (host.tree.sysfs_root / "class/infiniband_verbs/uverbs1").unlink()
            host.tree.remove_dev_node("uverbs1")
            async with supervised(host) as running:
                endpoint = await host.kubelet.wait_registered("rdma/ib")
                devices = await endpoint.next_update()
                assert set(health(devices).values()) == expected
                await assert_health_is_true(endpoint, devices)
                # And after a rediscovery, too.
                await running.supervisor.rediscover()
                with pytest.raises(TimeoutError):
                    await endpoint.next_update(timeout=0.3)
                await assert_health_is_true(endpoint, devices)

    run(scenario)
