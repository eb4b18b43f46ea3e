"""The plugin process: one asyncio loop serving, registering and watching every configured resource.

Work on the loop: one task per resource keeping its socket served and registered (resource.py), the
device-plugin directory's inotify events (kubelet restarts), the port-state poll (health.py), periodic
rediscovery, SIGHUP reloads, and the optional /metrics and /healthz endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

from rdma_device_plugin.config import ConfigError, PluginConfig, ResourceConfig, load_config
from rdma_device_plugin.discovery import Hca, discover
from rdma_device_plugin.health import PortPoller
from rdma_device_plugin.inotify import DirectoryWatch, DirEvent, WatchError
from rdma_device_plugin.kubelet import dispatch
from rdma_device_plugin.metrics import PluginMetrics, ResourceStatus
from rdma_device_plugin.pools import ResourcePool, build_pools
from rdma_device_plugin.resource import ResourcePlugin
from rdma_device_plugin.server import PluginServerError
from rdma_device_plugin.settings import ServeOptions
from rdma_device_plugin.status_server import Health, StatusServer, StatusServerError
from rdma_device_plugin.sysfs import SysfsReader
from rdma_device_plugin.verbs_events import VerbsEvents

__all__ = ["ResourcePlugin", "Supervisor", "run", "serve"]

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class Supervisor:
    """Owns the resource plugins of the current config and the background work that keeps them current."""

    def __init__(self, opts: ServeOptions, config: PluginConfig, metrics: PluginMetrics) -> None:
        self.opts = opts
        self.config = config
        self.metrics = metrics
        self.plugins: dict[str, ResourcePlugin] = {}
        self.hcas: list[Hca] = []
        self.watching = False
        self.reader = SysfsReader(on_failure=metrics.sysfs_read_failed)
        self.poller = PortPoller(
            opts.sysfs_root,
            opts.health_poll_interval,
            self.current_hcas,
            self.apply,
            dev_root=opts.dev_root,
            reader=self.reader,
            on_gone=self._rediscover_soon,
        )
        self.events = VerbsEvents(self.poller.wake)
        self._watch = DirectoryWatch(opts.device_plugin_dir, self._on_directory_events)
        self._group: asyncio.TaskGroup | None = None
        self._maintainers: dict[str, asyncio.Task[None]] = {}
        self._rediscovery: asyncio.Task[None] | None = None
        self._prompt_rediscovery: asyncio.Task[None] | None = None
        for pool in build_pools(config, opts.dev_root):
            self._add(pool)
        metrics.watch(self)

    def _add(self, pool: ResourcePool) -> ResourcePlugin:
        plugin = ResourcePlugin(pool, self.opts.device_plugin_dir, self.metrics)
        self.plugins[plugin.resource_name] = plugin
        return plugin

    # -- state, as metrics and /healthz see it ---------------------------------------------------------

    def current_hcas(self) -> Sequence[Hca]:
        return self.hcas

    def resource_statuses(self) -> list[ResourceStatus]:
        return [plugin.status() for plugin in self.plugins.values()]

    def health(self) -> Health:
        statuses = self.resource_statuses()
        lines = [
            f"{s.resource}: {'serving' if s.serving else 'NOT serving'}, "
            f"{'registered' if s.registered else 'NOT registered'}"
            for s in statuses
        ]
        if not self.watching:
            lines.append(f"{self.opts.device_plugin_dir}: NOT watched, kubelet restarts would go unnoticed")
        ok = self.watching and all(s.serving and s.registered for s in statuses)
        return Health(ok, "\n".join(lines))

    # -- devices -------------------------------------------------------------------------------------

    def apply(self, hcas: list[Hca]) -> None:
        """Make `hcas` the node's devices; every stream whose devices changed is woken."""
        self.hcas = hcas
        for plugin in self.plugins.values():
            plugin.refresh(hcas)

    async def discover(self) -> list[Hca]:
        # sysfs reads block; keep the loop free for Allocate meanwhile.
        return await asyncio.to_thread(
            discover, self.opts.sysfs_root, self.opts.dev_root, self.hcas, self.reader
        )

    async def rediscover(self) -> None:
        self.apply(await self.discover())
        self.metrics.rediscoveries.inc()

    def _rediscover_soon(self) -> None:
        # A shared pool hands every container every member's nodes, so one member gone from sysfs makes all
        # of its IDs unhealthy; dropping that member now, not at the next periodic rediscovery, makes the
        # others' IDs allocatable again within a poll. periodicUpdateInterval 0 means no rediscovery at all.
        if self._group is None or self.config.periodic_update_interval <= 0:
            return
        if self._prompt_rediscovery is not None and not self._prompt_rediscovery.done():
            return
        self._prompt_rediscovery = self._group.create_task(self.rediscover(), name="rediscovery: HCA gone")

    async def _rediscover_every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.rediscover()

    # -- the device-plugin directory (kubelet.DirectoryListener) --------------------------------------

    def _on_directory_events(self, events: list[DirEvent]) -> None:
        dispatch(events, self)

    def kubelet_started(self) -> None:
        self.metrics.kubelet_restarts.inc()
        log.info("kubelet.sock created: kubelet (re)started; registering every resource again")
        for plugin in self.plugins.values():
            plugin.kubelet_started()

    def kubelet_stopped(self) -> None:
        log.info("kubelet.sock removed: kubelet stopped; registering again when it is back")
        for plugin in self.plugins.values():
            plugin.kubelet_stopped()

    def socket_removed(self, name: str) -> None:
        for plugin in self.plugins.values():
            if plugin.socket_name == name:
                plugin.reconcile()

    def events_lost(self) -> None:
        log.warning("the device-plugin directory's event queue overflowed; re-checking every socket")
        self.kubelet_started()

    def watch_lost(self) -> None:
        if not self.watching:
            return
        self.watching = False
        # Its sockets went with the directory: registered with no kubelet that can reach them.
        for plugin in self.plugins.values():
            plugin.kubelet_stopped()
        log.error(
            "the device-plugin directory %s was removed or moved; serving and registering again when it is "
            "back (its parent is watched); meanwhile /healthz fails",
            self.opts.device_plugin_dir,
        )

    def watch_restored(self) -> None:
        self.watching = True
        log.info(
            "the device-plugin directory %s is back: serving and registering again",
            self.opts.device_plugin_dir,
        )
        for plugin in self.plugins.values():
            plugin.kubelet_started()

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Discover, serve every socket, and watch the directory; registration follows in run_until()."""
        self.apply(await self.discover())
        log.info(
            "health: port states read from sysfs every %g s (--health-poll-interval); verbs async events %s",
            self.opts.health_poll_interval,
            self.events.open(self.hcas, self.opts.sysfs_root, self.opts.dev_root),
        )
        for plugin in self.plugins.values():
            await plugin.start()
        self._watch.start()
        self.watching = True

    def _spawn(self, plugin: ResourcePlugin) -> None:
        assert self._group is not None
        task = self._group.create_task(plugin.maintain(), name=f"maintain {plugin.resource_name}")
        self._maintainers[plugin.resource_name] = task
        plugin.reconcile()

    def _schedule_rediscovery(self) -> None:
        assert self._group is not None
        if self._rediscovery is not None:
            self._rediscovery.cancel()
            self._rediscovery = None
        interval = self.config.periodic_update_interval
        if interval > 0:
            self._rediscovery = self._group.create_task(self._rediscover_every(interval), name="rediscovery")

    async def _reload_on(self, reload: asyncio.Event) -> None:
        while True:
            await reload.wait()
            reload.clear()
            await self.reload()

    async def run_until(self, stop: asyncio.Event, reload: asyncio.Event | None = None) -> None:
        """Register, then keep everything current until `stop` is set; `reload` re-reads the config."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            background = [group.create_task(self.poller.run(), name="port poll")]
            if reload is not None:
                background.append(group.create_task(self._reload_on(reload), name="reload"))
            for plugin in self.plugins.values():
                self._spawn(plugin)
            self._schedule_rediscovery()
            await stop.wait()
            rediscoveries = [self._rediscovery, self._prompt_rediscovery]
            for task in [*background, *self._maintainers.values(), *rediscoveries]:
                if task is not None:
                    task.cancel()
        self._group = None
        self._maintainers.clear()
        self._rediscovery = None
        self._prompt_rediscovery = None

    async def reload(self) -> None:
        """Re-read the config file; on error keep the current one. Resources added, removed or changed get
        their sockets started or stopped and their registrations; unchanged ones are left alone."""
        try:
            config = load_config(self.opts.config_path, self.opts.device_plugin_dir)
        except ConfigError as error:
            log.error("reload refused, still serving the previous config: %s", error)
            return
        wanted: dict[str, ResourceConfig] = {r.resource_name: r for r in config.resources}
        current = {name: plugin.pool.config for name, plugin in self.plugins.items()}
        gone = [name for name in current if wanted.get(name) != current[name]]
        new = [name for name in wanted if current.get(name) != wanted[name]]
        for name in gone:
            await self._remove(name)
        for pool in build_pools(config, self.opts.dev_root):
            if pool.config.resource_name in new:
                plugin = self._add(pool)
                plugin.refresh(self.hcas)
                self._spawn(plugin)
        interval_changed = config.periodic_update_interval != self.config.periodic_update_interval
        self.config = config
        if interval_changed:
            self._schedule_rediscovery()
        changed = sorted(set(gone) & set(new))
        log.info(
            "reloaded %s: added %s; removed %s; changed %s; rediscovery every %g s",
            self.opts.config_path,
            ", ".join(sorted(set(new) - set(changed))) or "none",
            ", ".join(sorted(set(gone) - set(changed))) or "none",
            ", ".join(changed) or "none",
            config.periodic_update_interval,
        )

    async def _remove(self, name: str) -> None:
        plugin = self.plugins.pop(name)
        task = self._maintainers.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await plugin.stop()

    async def stop(self) -> None:
        """Stop watching first (our own socket removals must not look like kubelet's), then every server."""
        self._watch.close()
        self.watching = False
        self.events.close()
        await asyncio.gather(*(plugin.stop() for plugin in self.plugins.values()))


async def run(opts: ServeOptions, stop: asyncio.Event, reload: asyncio.Event | None = None) -> int:
    """Serve every configured resource until `stop` is set; return the process exit status."""
    try:
        config = load_config(opts.config_path, opts.device_plugin_dir)
    except ConfigError as error:
        log.error("%s", error)
        return EXIT_BAD_INPUT
    metrics = PluginMetrics()
    supervisor = Supervisor(opts, config, metrics)
    status_server = StatusServer(metrics, supervisor.health) if opts.metrics_address else None
    try:
        if status_server is not None and opts.metrics_address is not None:
            await status_server.start(opts.metrics_address)
        await supervisor.start()
        await supervisor.run_until(stop, reload)
    except StatusServerError as error:
        # Bound before anything else starts: an address of another host or a port in use is bad input.
        log.error("%s", error)
        return EXIT_BAD_INPUT
    except (PluginServerError, WatchError) as error:
        log.error("%s", error)
        return EXIT_FAILED
    finally:
        await supervisor.stop()
        if status_server is not None:
            await status_server.close()
    log.info("stopped; sockets removed")
    return EXIT_OK


async def _run_until_signalled(opts: ServeOptions) -> int:
    stop, reload = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def stop_on(signum: signal.Signals) -> None:
        log.info("%s received: stopping", signum.name)
        stop.set()

    def reload_on_hup() -> None:
        log.info("SIGHUP received: reloading %s", opts.config_path)
        reload.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_on, signum)
    loop.add_signal_handler(signal.SIGHUP, reload_on_hup)
    return await run(opts, stop, reload)


def serve(opts: ServeOptions) -> int:
    """The `serve` command: run the plugin in this process until SIGTERM/SIGINT; return the exit status."""
    return asyncio.run(_run_until_signalled(opts))
