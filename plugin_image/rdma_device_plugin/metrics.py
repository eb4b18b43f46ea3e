"""Prometheus metrics of one plugin process, in a registry of its own (no prometheus_client global state).

Counters and the Allocate histogram are updated where things happen; device, port and resource gauges are
computed at scrape time from the plugin's current state, so a device that went away simply stops being
reported instead of leaving a stale series behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rdma_device_plugin.discovery import Hca
from rdma_device_plugin.text import printable

PREFIX = "rdma_device_plugin"
# Allocate answers in well under a millisecond; the upper buckets catch a loop stalled by something else.
ALLOCATE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# The kernel's port states (ib_port_state) and physical states, as sysfs labels them; always exported so
# that a dashboard can sum over them, plus whatever other value a port shows.
PORT_STATES = ("DOWN", "INIT", "ARMED", "ACTIVE", "ACTIVE_DEFER")
PHYS_STATES = ("Sleep", "Polling", "Disabled", "PortConfigurationTraining", "LinkUp", "LinkErrorRecovery")


@dataclass(frozen=True)
class ResourceStatus:
    """What the metrics and /healthz report about one resource."""

    resource: str
    healthy_ids: int
    unhealthy_ids: int
    serving: bool
    registered: bool


class PluginState(Protocol):
    """The live state the scrape-time gauges read."""

    def resource_statuses(self) -> Sequence[ResourceStatus]: ...

    def current_hcas(self) -> Sequence[Hca]: ...


class PluginMetrics:
    """Every metric the plugin exports, registered in `registry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.allocations = Counter(
            f"{PREFIX}_allocations",
            "Containers given devices by Allocate.",
            ["resource"],
            registry=self.registry,
        )
        self.allocation_errors = Counter(
            f"{PREFIX}_allocation_errors",
            "Allocate calls refused, by gRPC status code.",
            ["resource", "code"],
            registry=self.registry,
        )
        self.allocate_seconds = Histogram(
            f"{PREFIX}_allocate_duration_seconds",
            "Time to answer one Allocate call.",
            ["resource"],
            buckets=ALLOCATE_BUCKETS,
            registry=self.registry,
        )
        self.registrations = Counter(
            f"{PREFIX}_registrations",
            "Successful registrations with kubelet.",
            ["resource"],
            registry=self.registry,
        )
        self.registration_failures = Counter(
            f"{PREFIX}_registration_failures",
            "Failed registration attempts (each is retried with backoff).",
            ["resource"],
            registry=self.registry,
        )
        self.kubelet_restarts = Counter(
            f"{PREFIX}_kubelet_restarts",
            "Times kubelet.sock was created while the plugin ran (a kubelet start or restart).",
            registry=self.registry,
        )
        self.rediscoveries = Counter(
            f"{PREFIX}_rediscoveries",
            "Full rediscoveries of the node's RDMA devices.",
            registry=self.registry,
        )
        self.sysfs_read_failures = Counter(
            f"{PREFIX}_sysfs_read_failures",
            "sysfs reads that failed (an errno name, timeout, too_large, not_regular_file); the last known "
            "values were kept.",
            ["reason"],
            registry=self.registry,
        )

    def sysfs_read_failed(self, reason: str) -> None:
        self.sysfs_read_failures.labels(reason).inc()

    def add_resource(self, resource: str) -> None:
        """Export a resource's counters at 0 before anything has happened to it."""
        self.allocations.labels(resource)
        self.allocate_seconds.labels(resource)
        self.registrations.labels(resource)
        self.registration_failures.labels(resource)

    def for_resource(self, resource: str) -> AllocateMetrics:
        return AllocateMetrics(self, resource)

    def watch(self, state: PluginState) -> None:
        """Export the gauges computed from `state` at every scrape."""
        self.registry.register(_StateCollector(state))


class AllocateMetrics:
    """One resource's Allocate counters and latency, as the servicer records them."""

    def __init__(self, metrics: PluginMetrics, resource: str) -> None:
        self._allocations = metrics.allocations.labels(resource)
        self._seconds = metrics.allocate_seconds.labels(resource)
        self._errors = metrics.allocation_errors
        self._resource = resource

    def allocated(self, containers: int, seconds: float) -> None:
        self._allocations.inc(containers)
        self._seconds.observe(seconds)

    def refused(self, code: grpc.StatusCode, seconds: float) -> None:
        self._errors.labels(self._resource, code.name).inc()
        self._seconds.observe(seconds)


def _state_set(
    name: str, documentation: str, label: str, known: Iterable[str], current: dict[tuple[str, str], str]
) -> GaugeMetricFamily:
    """kube-state-metrics style: one series per possible value of `label`, 1 for the current one."""
    family = GaugeMetricFamily(name, documentation, labels=["ibdev", "port", label])
    for (ibdev, port), value in current.items():
        for candidate in dict.fromkeys((*known, value)):
            family.add_metric([ibdev, port, candidate], 1.0 if candidate == value else 0.0)
    return family


class _StateCollector(Collector):
    def __init__(self, state: PluginState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        devices = GaugeMetricFamily(
            f"{PREFIX}_devices", "Device IDs advertised, by health.", labels=["resource", "health"]
        )
        serving = GaugeMetricFamily(
            f"{PREFIX}_resource_serving", "1 while the resource's socket is served.", labels=["resource"]
        )
        registered = GaugeMetricFamily(
            f"{PREFIX}_resource_registered",
            "1 while the resource is registered with the running kubelet.",
            labels=["resource"],
        )
        for status in self._state.resource_statuses():
            devices.add_metric([status.resource, "Healthy"], status.healthy_ids)
            devices.add_metric([status.resource, "Unhealthy"], status.unhealthy_ids)
            serving.add_metric([status.resource], float(status.serving))
            registered.add_metric([status.resource], float(status.registered))
        yield from (devices, serving, registered)
        states: dict[tuple[str, str], str] = {}
        phys: dict[tuple[str, str], str] = {}
        active = GaugeMetricFamily(
            f"{PREFIX}_port_active",
            "1 when the port is ACTIVE with its link up (what device health follows).",
            labels=["ibdev", "port"],
        )
        for hca in self._state.current_hcas():
            for port in hca.ports:
                # Names and states come from sysfs, where bytes that are not UTF-8 would fail the scrape.
                key = (printable(hca.name), str(port.number))
                states[key], phys[key] = printable(port.state), printable(port.phys_state)
                active.add_metric(list(key), float(port.active))
        yield active
        yield _state_set(
            f"{PREFIX}_port_state", "Port state (sysfs ports/N/state).", "state", PORT_STATES, states
        )
        yield _state_set(
            f"{PREFIX}_port_phys_state",
            "Physical port state (sysfs ports/N/phys_state).",
            "phys_state",
            PHYS_STATES,
            phys,
        )
