"""One configured resource: its pool's device feed, its socket, and keeping it registered with kubelet.

Registration is level-triggered: every hint that something may have changed (startup, kubelet.sock created,
the socket deleted, a failed attempt's backoff expired) sets one flag, and one task per resource brings
things back to "socket served and registered with the current kubelet". Hints that pile up while it works
are handled once, so a burst of events or a spurious one costs at most one extra Register call, and there is
never more than one server per socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

from rdma_device_plugin.discovery import Hca
from rdma_device_plugin.kubelet import KUBELET_SOCKET, RegistrationError, register
from rdma_device_plugin.metrics import PluginMetrics, ResourceStatus
from rdma_device_plugin.pools import ResourcePool
from rdma_device_plugin.server import PluginServer, PluginServerError
from rdma_device_plugin.servicer import DeviceFeed, plugin_options

log = logging.getLogger(__name__)

# In-flight Allocate calls finish well within this; ListAndWatch streams end at once on stop.
STOP_GRACE = 0.5
# kubelet.sock appears at bind(), a moment before kubelet listens on it: the first retry comes quickly.
# The cap bounds both the log rate and the wait when kubelet.sock exists but nothing answers on it; a
# re-created kubelet.sock cuts any wait short.
BACKOFF_FIRST = 0.01
BACKOFF_MAX = 10.0


def backoff_delay(failures: int) -> float:
    """Seconds to wait after the `failures`-th consecutive failed attempt."""
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(failures - 1, 32)))


class ResourcePlugin:
    def __init__(
        self, pool: ResourcePool, device_plugin_dir: Path, metrics: PluginMetrics | None = None
    ) -> None:
        self.pool = pool
        self.feed = DeviceFeed(pool)
        self.metrics = metrics or PluginMetrics()
        self.metrics.add_resource(self.resource_name)
        self.server = PluginServer(
            self.feed,
            device_plugin_dir / pool.config.socket_name,
            self.metrics.for_resource(self.resource_name),
        )
        # Registration is valid for one epoch: a new kubelet, a lost kubelet or a re-created socket starts a
        # new one, even while a Register call for the old one is in flight.
        self._epoch = 0
        self._registered_epoch: int | None = None
        self._device_plugin_dir = device_plugin_dir
        self._wanted = asyncio.Event()
        self._empty_logged = False
        self._waiting_logged = False
        self._blocking: tuple[str, ...] = ()

    @property
    def resource_name(self) -> str:
        return self.pool.config.resource_name

    @property
    def registered(self) -> bool:
        return self._registered_epoch == self._epoch

    def _invalidate_registration(self) -> None:
        self._epoch += 1

    @property
    def socket_name(self) -> str:
        return self.pool.config.socket_name

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
        self._log_blocking()
        return changed

    def _log_blocking(self) -> None:
        """Say once, when it starts and when it ends, that members without verbs hold the pool down."""
        blocking = tuple(hca.name for hca in self.pool.blocking())
        if blocking == self._blocking:
            return
        self._blocking = blocking
        if blocking:
            log.warning(
                "%s: every container of this shared pool gets every member's device nodes, and %s %s no "
                "usable verbs device (no uverbs in sysfs or no node under --dev-root), so Allocate would "
                "fail: every ID is unhealthy until %s; or narrow the pool's selectors to leave %s out",
                self.resource_name,
                ", ".join(blocking),
                "has" if len(blocking) == 1 else "have",
                "it has one" if len(blocking) == 1 else "they have one",
                "it" if len(blocking) == 1 else "them",
                extra={"resource": self.resource_name},
            )
        else:
            log.info(
                "%s: every member has its verbs device again",
                self.resource_name,
                extra={"resource": self.resource_name},
            )

    def status(self) -> ResourceStatus:
        devices = self.pool.devices()
        healthy = sum(device.healthy for device in devices)
        return ResourceStatus(
            self.resource_name, healthy, len(devices) - healthy, self.server.socket_intact(), self.registered
        )

    # -- hints from the device-plugin directory ------------------------------------------------------

    def reconcile(self) -> None:
        """Check the socket and the registration soon (at start, and when the socket may be gone)."""
        self._wanted.set()

    def kubelet_started(self) -> None:
        # A new kubelet knows no plugin, even if this one was registered with its predecessor.
        self._invalidate_registration()
        self._wanted.set()

    def kubelet_stopped(self) -> None:
        self._invalidate_registration()

    # -- serving and registering ---------------------------------------------------------------------

    async def start(self) -> None:
        """Serve the socket (before any registration: kubelet dials back inside Register)."""
        await self.server.start()

    async def maintain(self) -> None:
        """Keep the socket served and registered, on every hint, until cancelled."""
        failures = 0
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            try:
                await self._serve_and_register()
            except (PluginServerError, RegistrationError) as error:
                failures += 1
                self.metrics.registration_failures.labels(self.resource_name).inc()
                delay = backoff_delay(failures)
                log.warning(
                    "%s (attempt %d); retrying in %.2g s, or as soon as kubelet.sock is created",
                    error,
                    failures,
                    delay,
                    extra={"resource": self.resource_name},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wanted.wait(), delay)
                self._wanted.set()
            else:
                failures = 0

    async def _serve_and_register(self) -> None:
        if not self.server.socket_intact():
            if self.server.serving:
                log.info(
                    "%s: %s was removed (kubelet deletes plugin sockets when it starts); serving it again",
                    self.resource_name,
                    self.server.socket_path,
                    extra={"resource": self.resource_name},
                )
            self._invalidate_registration()
            await self.server.stop(STOP_GRACE)
            await self.server.start()
        if self.registered:
            return
        kubelet_socket = self._device_plugin_dir / KUBELET_SOCKET
        if not kubelet_socket.exists():
            if not self._waiting_logged:
                log.info(
                    "%s: waiting for kubelet: %s does not exist yet; registering as soon as it appears",
                    self.resource_name,
                    kubelet_socket,
                    extra={"resource": self.resource_name},
                )
            self._waiting_logged = True
            return
        self._waiting_logged = False
        epoch = self._epoch
        await register(self._device_plugin_dir, self.socket_name, self.resource_name, plugin_options())
        self._registered_epoch = epoch
        self.metrics.registrations.labels(self.resource_name).inc()
        log.info(
            "registered %s with kubelet (endpoint %s)",
            self.resource_name,
            self.socket_name,
            extra={"resource": self.resource_name},
        )

    async def stop(self) -> None:
        self._invalidate_registration()
        await self.server.stop(STOP_GRACE)
