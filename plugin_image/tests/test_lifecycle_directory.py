"""The device-plugin directory removed and created again (a host cleanup, a remount): the plugin watches it
again, serves and registers again, and /healthz says what is true meanwhile. Real directory, real sockets."""

from __future__ import annotations

import asyncio
import shutil

from lifecycle_harness import http_get, registered, supervised, until
from plugin_harness import node, run, short_tempdir
from rdma_device_plugin.inotify import IN_CREATE, WATCH_RESTORED, DirectoryWatch, DirEvent

POOL = {"periodicUpdateInterval": 0, "configList": [{"resourceName": "ib", "rdmaHcaMax": 4, "selectors": {}}]}


def test_a_directory_removed_and_created_again_is_watched_again() -> None:
    parent = short_tempdir()
    directory = parent / "dp"
    directory.mkdir()

    async def scenario() -> None:
        queue: asyncio.Queue[list[DirEvent]] = asyncio.Queue()
        watch = DirectoryWatch(directory, queue.put_nowait)
        watch.start()
        try:
            directory.rmdir()
            while not any(event.mask & WATCH_RESTORED for event in await asyncio.wait_for(queue.get(), 2)):
                if not directory.exists():
                    directory.mkdir()
            (directory / "kubelet.sock").touch()
            assert await asyncio.wait_for(queue.get(), 2) == [DirEvent(IN_CREATE, "kubelet.sock")]
        finally:
            watch.close()

    run(scenario)
    shutil.rmtree(parent)


def test_the_plugin_serves_and_registers_again_once_its_directory_is_back_and_healthz_follows() -> None:
    async def scenario() -> None:
        async with node("erdma", POOL) as host, supervised(host) as running:
            await registered(host, running)
            await host.kubelet.stop()
            shutil.rmtree(host.plugin_dir)
            await until(lambda: not running.supervisor.watching, what="the lost watch")
            status, _, body = await http_get(running.port, "/healthz")
            assert status == 503
            # Nothing is registered with anyone while the directory is gone.
            assert "rdma/ib: NOT serving, NOT registered\n" in body
            # The directory comes back and kubelet starts in it at once, as after a remount.
            host.plugin_dir.mkdir()
            await host.kubelet.start()
            endpoint = await host.kubelet.wait_registered("rdma/ib")
            assert len(await endpoint.next_update()) == 4
            await until(lambda: running.supervisor.health().ok, what="healthy again")
            assert await http_get(running.port, "/healthz") == (
                200,
                "text/plain; charset=utf-8",
                "rdma/ib: serving, registered\n",
            )
            # And kubelet restarts in the new directory are seen.
            await host.kubelet.restart()
            assert len(await (await host.kubelet.wait_registered("rdma/ib")).next_update()) == 4

    run(scenario)
