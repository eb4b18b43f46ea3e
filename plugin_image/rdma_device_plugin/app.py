"""The plugin process: one asyncio loop serving and registering every configured resource until stopped."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from pathlib import Path

from rdma_device_plugin.config import ConfigError, PluginConfig, load_config
from rdma_device_plugin.discovery import Hca, discover
from rdma_device_plugin.kubelet import RegistrationError, register
from rdma_device_plugin.pools import ResourcePool, build_pools
from rdma_device_plugin.server import PluginServer, PluginServerError
from rdma_device_plugin.servicer import DeviceFeed, plugin_options
from rdma_device_plugin.settings import ServeOptions

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
# In-flight Allocate calls finish well within this; ListAndWatch streams end at once on stop.
STOP_GRACE = 0.5


class ResourcePlugin:
    """One configured resource: its pool's device feed, its socket, its registration with kubelet."""

    def __init__(self, pool: ResourcePool, device_plugin_dir: Path) -> None:
        self.pool = pool
        self.feed = DeviceFeed(pool)
        self.server = PluginServer(self.feed, device_plugin_dir / pool.config.socket_name)
        self._device_plugin_dir = device_plugin_dir
        self._empty_logged = False

    @property
    def resource_name(self) -> str:
        return self.pool.config.resource_name

    def refresh(self, hcas: Sequence[Hca]) -> bool:
        """Apply a discovery result; streams are woken if the devices changed. True iff they changed."""
        changed = self.feed.refresh(hcas)
        devices = self.pool.devices()
        if changed:
            healthy = sum(device.healthy for device in devices)
            log.info(
                "%s: %d devices, %d healthy",
                self.resource_name,
                len(devices),
                healthy,
                extra={"resource": self.resource_name},
            )
        # Once per stretch of emptiness, not once per rediscovery: an empty node is a normal state.
        if not devices and not self._empty_logged:
            log.warning(
                "%s: no RDMA device on this node matches this resource; advertising 0 devices and staying up",
                self.resource_name,
                extra={"resource": self.resource_name},
            )
        self._empty_logged = not devices
        return changed

    async def start(self) -> None:
        await self.server.start()

    async def register(self) -> None:
        await register(
            self._device_plugin_dir, self.pool.config.socket_name, self.resource_name, plugin_options()
        )
        log.info(
            "registered %s with kubelet (endpoint %s)",
            self.resource_name,
            self.pool.config.socket_name,
            extra={"resource": self.resource_name},
        )

    async def stop(self) -> None:
        await self.server.stop(STOP_GRACE)


class Supervisor:
    """Owns the resource plugins of one config and the background work that keeps them current."""

    def __init__(self, opts: ServeOptions, config: PluginConfig) -> None:
        self.opts = opts
        self.config = config
        self.plugins = [
            ResourcePlugin(pool, opts.device_plugin_dir) for pool in build_pools(config, opts.dev_root)
        ]

    async def discover(self) -> list[Hca]:
        # sysfs reads block; keep the loop free for Allocate meanwhile.
        return await asyncio.to_thread(discover, self.opts.sysfs_root, self.opts.dev_root)

    async def rediscover(self) -> None:
        hcas = await self.discover()
        for plugin in self.plugins:
            plugin.refresh(hcas)

    async def start(self) -> None:
        """Discover, then for each resource serve its socket first and register it second."""
        await self.rediscover()
        for plugin in self.plugins:
            await plugin.start()
            await plugin.register()

    async def rediscover_periodically(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.rediscover()

    async def stop(self) -> None:
        for plugin in self.plugins:
            await plugin.stop()

    async def run_until(self, stop: asyncio.Event) -> None:
        """Run the background work until `stop` is set. Servers stay up; stop() takes them down."""
        async with asyncio.TaskGroup() as tasks:
            background = []
            if self.config.periodic_update_interval > 0:
                background.append(
                    tasks.create_task(self.rediscover_periodically(self.config.periodic_update_interval))
                )
            await stop.wait()
            for task in background:
                task.cancel()


async def run(opts: ServeOptions, stop: asyncio.Event) -> int:
    """Serve every configured resource until `stop` is set; return the process exit status."""
    try:
        config = load_config(opts.config_path)
    except ConfigError as error:
        log.error("%s", error)
        return EXIT_BAD_INPUT
    supervisor = Supervisor(opts, config)
    try:
        await supervisor.start()
        await supervisor.run_until(stop)
    except (PluginServerError, RegistrationError) as error:
        log.error("%s", error)
        return EXIT_FAILED
    finally:
        await supervisor.stop()
    return EXIT_OK


async def _run_until_signalled(opts: ServeOptions) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return await run(opts, stop)


def serve(opts: ServeOptions) -> int:
    """The `serve` command: run the plugin in this process until SIGTERM/SIGINT; return the exit status."""
    return asyncio.run(_run_until_signalled(opts))
