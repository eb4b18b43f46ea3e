"""One resource's socket: bind over a stale file, self-dial, fan-out of changes, stop, delete, serve again."""

from __future__ import annotations

import shutil
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from kubelet_standin import PluginEndpoint
from plugin_harness import run, short_tempdir
from rdma_device_plugin.api import api_pb2
from rdma_device_plugin.config import parse_config
from rdma_device_plugin.discovery import discover
from rdma_device_plugin.pools import build_pools
from rdma_device_plugin.server import MAX_SOCKET_PATH_BYTES, PluginServer, PluginServerError
from rdma_device_plugin.servicer import DeviceFeed
from sysfs_fixture import SHAPES, FixtureTree

CONFIG = {"configList": [{"resourceName": "ib", "rdmaHcaMax": 2, "selectors": {"linkTypes": ["infiniband"]}}]}


@dataclass
class Rig:
    tree: FixtureTree
    feed: DeviceFeed
    server: PluginServer

    def rediscover(self) -> bool:
        return self.feed.refresh(discover(self.tree.sysfs_root, self.tree.dev_root))

    @asynccontextmanager
    async def client(self) -> AsyncIterator[PluginEndpoint]:
        """A kubelet-like connection (dial, GetDevicePluginOptions, ListAndWatch) without registration."""
        endpoint = PluginEndpoint(api_pb2.RegisterRequest(resource_name="rdma/ib"), self.server.socket_path)
        await endpoint.connect()
        try:
            yield endpoint
        finally:
            await endpoint.close()


@pytest.fixture
def rig() -> Iterator[Rig]:
    root = short_tempdir()
    tree = SHAPES["ib_two_numa"](root / "host")
    (pool,) = build_pools(parse_config(CONFIG), tree.dev_root)
    feed = DeviceFeed(pool)
    (root / "dp").mkdir()
    rig = Rig(tree, feed, PluginServer(feed, root / "dp" / "rdma_ib.sock"))
    rig.rediscover()
    yield rig
    shutil.rmtree(root)


def ids_health(devices: list[api_pb2.Device]) -> list[tuple[str, str]]:
    return [(d.ID, d.health) for d in devices]


def test_start_replaces_a_stale_socket_and_stop_deletes_it(rig: Rig) -> None:
    rig.server.socket_path.write_text("left over by a crashed run")

    async def scenario() -> None:
        await rig.server.start()
        assert stat.S_ISSOCK(rig.server.socket_path.stat().st_mode)
        async with rig.client() as client:
            assert ids_health(await client.next_update()) == [("0", "Healthy"), ("1", "Healthy")]
            await rig.server.stop(grace=1)
            # Stopping ends the stream cleanly rather than cancelling it after the grace period.
            await client.stream_ended.wait()
            assert client.stream_code == grpc.StatusCode.OK
        assert not rig.server.socket_path.exists()
        assert not rig.server.serving

    run(scenario)


def test_stop_tolerates_a_socket_kubelet_already_deleted_and_serves_again(rig: Rig) -> None:
    async def scenario() -> None:
        await rig.server.start()
        rig.server.socket_path.unlink()
        await rig.server.stop(grace=0)
        await rig.server.stop(grace=0)
        await rig.server.start()
        async with rig.client() as client:
            assert ids_health(await client.next_update()) == [("0", "Healthy"), ("1", "Healthy")]
        await rig.server.stop(grace=0)

    run(scenario)


def test_every_stream_gets_each_change_once_and_a_new_stream_starts_with_the_current_list(rig: Rig) -> None:
    async def scenario() -> None:
        await rig.server.start()
        async with rig.client() as first, rig.client() as second:
            for client in (first, second):
                assert ids_health(await client.next_update()) == [("0", "Healthy"), ("1", "Healthy")]
            rig.tree.set_port_state("mlx5_1")
            assert rig.rediscover()
            for client in (first, second):
                assert ids_health(await client.next_update()) == [("0", "Healthy"), ("1", "Unhealthy")]
            # A wake without a change pushes nothing; the next real change is the next update.
            rig.feed.wake()
            assert not rig.rediscover()
            rig.tree.remove_hca("mlx5_1")
            assert rig.rediscover()
            for client in (first, second):
                assert ids_health(await client.next_update()) == [("0", "Healthy"), ("1", "Healthy")]
                assert [d.topology.nodes[0].ID for d in client.updates[-1]] == [0, 0]
                assert len(client.updates) == 3
            async with rig.client() as late:
                assert ids_health(await late.next_update()) == [("0", "Healthy"), ("1", "Healthy")]
                assert [d.topology.nodes[0].ID for d in late.updates[0]] == [0, 0]
        await rig.server.stop(grace=0)

    run(scenario)


def test_a_socket_path_longer_than_unix_allows_is_refused_naming_the_fix(rig: Rig) -> None:
    deep = Path("/tmp") / ("d" * MAX_SOCKET_PATH_BYTES) / "rdma_ib.sock"
    server = PluginServer(rig.feed, deep)

    async def scenario() -> None:
        with pytest.raises(PluginServerError, match="--device-plugin-dir") as caught:
            await server.start()
        assert str(deep) in str(caught.value)

    run(scenario)


def test_a_missing_device_plugin_dir_is_refused_naming_it(rig: Rig) -> None:
    missing = rig.server.socket_path.parent / "absent"
    server = PluginServer(rig.feed, missing / "rdma_ib.sock")

    async def scenario() -> None:
        with pytest.raises(PluginServerError, match="--device-plugin-dir") as caught:
            await server.start()
        assert str(missing) in str(caught.value)
        assert not server.serving

    run(scenario)
