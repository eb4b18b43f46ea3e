"""Published facts about the ECS instance types the program buys or recognises, each with its source.

What the bandwidth check expects, which system disk a pool may take, which eRDMA driver mode a GPU family
needs and which families ACK no longer supports are all read from here, never guessed.

Sources (Alibaba Cloud ECS documentation; figures copied as published, the tables themselves are not):

- ``GENERAL_PURPOSE``: "General-purpose instance families",
  help/en/ecs/user-guide/general-purpose-instance-families, sections "g8i general-purpose instance family"
  and "g8ae performance-enhanced general-purpose instance family": vCPU, memory, "Baseline/Burst network
  bandwidth (Gbit/s)", "These instances support eRDMA", supported disk types "ESSDs, ESSD AutoPL disks,
  Regional ESSDs" (no ``cloud_efficiency``/``cloud_ssd``).
- ``GPU``: "GPU-accelerated compute-optimized instance families", sections "gn8v" and "gn8is, GPU-accelerated
  compute-optimized instance family": vCPUs, memory, "Network baseline bandwidth (Gbit/s)" (no burst
  published), "Supports elastic RDMA interfaces (ERIs)",
  disks "ESSDs, ESSD AutoPL disks". gn8is is sold in specific regions through sales only.
- ``ACK_ERDMA``: ACK "Use eRDMA to accelerate container networks" (help/en/ack/ack-managed-and-ack-dedicated/
  user-guide/use-erdma-in-ack-clusters): driver type ``ofed`` "is suitable for GPU-accelerated instance types"
  and is the one NCCL needs.
- ECS "Enable eRDMA on an enterprise-level instance"
  (help/en/ecs/user-guide/configure-erdma-on-a-cpu-instance), network limits: GPU-accelerated instances with
  eRDMA cannot communicate with enterprise-level eRDMA instances.

The family tables do not publish how many ERIs a type takes (``DescribeInstanceTypes.EriQuantity`` answers
that at deploy time; the eRDMA controller's agent uses ``min(NetworkCardQuantity, EriQuantity)`` devices), so
the catalogue records only that the family supports ERIs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

GENERAL_PURPOSE: Final = (
    "Alibaba Cloud ECS docs, General-purpose instance families "
    "(help/en/ecs/user-guide/general-purpose-instance-families)"
)
GPU: Final = (
    "Alibaba Cloud ECS docs, GPU-accelerated compute-optimized instance families (gn8v, gn8is sections)"
)
ACK_ERDMA: Final = (
    "ACK docs, Use eRDMA to accelerate container networks "
    "(help/en/ack/ack-managed-and-ack-dedicated/user-guide/use-erdma-in-ack-clusters)"
)
# Disk categories these families take, in the provider's names (cs.NodePool system_disk_category):
# ESSD = cloud_essd, ESSD AutoPL = cloud_auto.
ESSD_FAMILY_DISKS: Final = ("cloud_essd", "cloud_auto")
# ACK's "Instance types not supported by ACK": Super Computing Cluster (SCC) - not supported. The
# walkthrough's ecs.scch5 is also retired on the China site (ECS "retired instance types").
UNSUPPORTED_BY_ACK_PREFIXES: Final = ("ecs.scc",)
SCC_SOURCE: Final = (
    "ACK docs, Select ECS instances for worker nodes, table 'Instance types not supported by ACK': "
    "Super Computing Cluster (SCC) - Not supported"
)
# The share of the published baseline bandwidth ack-rdma-check demands by default: a project choice (perftest
# counts payload only, and the VPC bandwidth is the instance's total), not an Alibaba figure.
CHECK_SHARE_OF_BASELINE: Final = 0.8


@dataclass(frozen=True)
class InstanceTypeFacts:
    """One instance type as Alibaba publishes it."""

    name: str
    vcpus: int
    memory_gib: int
    baseline_gbits: float
    """Published baseline VPC bandwidth; eRDMA traffic shares it (it rides the VPC)."""
    burst_gbits: float | None
    """Published burst bandwidth; ``None`` where the table gives none (large types, GPU families)."""
    gpus: int
    disk_categories: tuple[str, ...]
    source: str

    @property
    def family(self) -> str:
        return self.name.rsplit(".", 1)[0]

    @property
    def gpu_erdma(self) -> bool:
        """GPU eRDMA instances cannot talk eRDMA to CPU (enterprise) ones and need the ``ofed`` driver."""
        return self.gpus > 0


def _general(name: str, vcpus: int, memory: int, baseline: float, burst: float | None) -> InstanceTypeFacts:
    return InstanceTypeFacts(name, vcpus, memory, baseline, burst, 0, ESSD_FAMILY_DISKS, GENERAL_PURPOSE)


def _gpu(name: str, vcpus: int, memory: int, baseline: float, gpus: int) -> InstanceTypeFacts:
    return InstanceTypeFacts(name, vcpus, memory, baseline, None, gpus, ESSD_FAMILY_DISKS, GPU)


CATALOGUE: Final[dict[str, InstanceTypeFacts]] = {
    facts.name: facts
    for facts in (
        # g8i (Intel Emerald/Sapphire Rapids), eRDMA-capable.
        _general("ecs.g8i.xlarge", 4, 16, 4, 15),
        _general("ecs.g8i.2xlarge", 8, 32, 6, 15),
        _general("ecs.g8i.4xlarge", 16, 64, 12, 25),
        _general("ecs.g8i.8xlarge", 32, 128, 20, 25),
        _general("ecs.g8i.16xlarge", 64, 256, 32, None),
        _general("ecs.g8i.24xlarge", 96, 384, 50, None),
        _general("ecs.g8i.48xlarge", 192, 1024, 100, None),
        # g8ae (AMD Genoa), eRDMA-capable: the same bandwidth steps, the fallback when g8i is sold out.
        _general("ecs.g8ae.xlarge", 4, 16, 4, 15),
        _general("ecs.g8ae.2xlarge", 8, 32, 6, 15),
        _general("ecs.g8ae.4xlarge", 16, 64, 12, 25),
        _general("ecs.g8ae.8xlarge", 32, 128, 20, 25),
        _general("ecs.g8ae.16xlarge", 64, 256, 32, None),
        _general("ecs.g8ae.32xlarge", 128, 512, 64, None),
        # GPU families with ERIs (driver mode ofed).
        _gpu("ecs.gn8v.4xlarge", 16, 96, 12, 1),
        _gpu("ecs.gn8v-2x.8xlarge", 32, 192, 20, 2),
        _gpu("ecs.gn8v-8x.48xlarge", 192, 1024, 100, 8),
        _gpu("ecs.gn8is.2xlarge", 8, 64, 8, 1),
        _gpu("ecs.gn8is.4xlarge", 16, 128, 16, 1),
        _gpu("ecs.gn8is-8x.32xlarge", 128, 1024, 100, 8),
    )
}


class CatalogueError(ValueError):
    """An instance type the catalogue cannot vouch for; the message names the type and the fix."""


def facts_of(instance_type: str) -> InstanceTypeFacts:
    facts = CATALOGUE.get(instance_type)
    if facts is None:
        known = ", ".join(sorted(CATALOGUE))
        raise CatalogueError(
            f"instance type {instance_type[:64]!r} is not in components/instance_catalogue.py, so its "
            f"bandwidth and disks are unknown: use one of {known}, or add it there with its source."
        )
    return facts


def unsupported_by_ack(instance_type: str) -> bool:
    """ACK does not take these families as worker nodes (SCC); they may only be attached, with a warning."""
    return instance_type.startswith(UNSUPPORTED_BY_ACK_PREFIXES)


def common_disk_categories(instance_types: Iterable[str]) -> tuple[str, ...]:
    """System disk categories every listed type takes (in catalogue order)."""
    facts = [facts_of(name) for name in instance_types]
    if not facts:
        return ()
    return tuple(
        category for category in facts[0].disk_categories if all(category in f.disk_categories for f in facts)
    )


def expected_gbits(instance_types: Iterable[str]) -> float:
    """The bandwidth two RDMA nodes can count on: the lowest published baseline among the types a pool may
    buy (the pool takes whichever type has stock, so any of them may be the one measured)."""
    baselines = [facts_of(name).baseline_gbits for name in instance_types]
    if not baselines:
        raise CatalogueError("no instance types given: list at least one in instanceTypes.")
    return min(baselines)


def ceiling_gbits(instance_types: Iterable[str]) -> float:
    """The most the slowest of the types can reach: its burst where published, else its baseline. A check
    threshold above this can never pass."""
    facts = [facts_of(name) for name in instance_types]
    if not facts:
        raise CatalogueError("no instance types given: list at least one in instanceTypes.")
    return min(f.burst_gbits or f.baseline_gbits for f in facts)


def default_check_min_gbits(instance_types: Iterable[str]) -> int:
    """ack-rdma-check's default threshold: CHECK_SHARE_OF_BASELINE of ``expected_gbits``, at least 1."""
    return max(1, math.floor(expected_gbits(instance_types) * CHECK_SHARE_OF_BASELINE))


def required_driver(instance_types: Iterable[str]) -> str | None:
    """``"ofed"`` when the types are GPU eRDMA types (ACK_ERDMA), ``None`` when any mode works."""
    facts = [facts_of(name) for name in instance_types]
    kinds = {f.gpu_erdma for f in facts}
    if len(kinds) > 1:
        gpu = ", ".join([f.name for f in facts if f.gpu_erdma][:4])
        raise CatalogueError(
            f"a pool mixes GPU eRDMA types ({gpu}) with CPU ones: GPU eRDMA instances cannot talk eRDMA to "
            "enterprise (CPU) instances; put them in pools of their own."
        )
    return "ofed" if kinds == {True} else None


def purchase_problem(instance_types: Iterable[str], disk_category: str) -> str | None:
    """Why a pool could not buy these types with this system disk (the text follows the key's name), or
    ``None``: SCC is not for sale to ACK, a type must be catalogued, GPU and CPU eRDMA types do not mix, and
    every type must take the disk."""
    types = list(instance_types)
    scc = [name for name in types if unsupported_by_ack(name)]
    if scc:
        return (
            f"lists {', '.join(scc[:3])}, which ACK does not take as worker nodes ({SCC_SOURCE}); buy "
            "eRDMA types such as ecs.g8i.4xlarge or ecs.g8ae.4xlarge, or attach SCC instances you already "
            "own with existingInstances."
        )
    try:
        required_driver(types)
        disks = common_disk_categories(types)
    except CatalogueError as error:
        return str(error)
    if disk_category not in disks:
        return (
            f"buys {', '.join(types[:4])} with system disk {disk_category[:32]!r}, which not all of them "
            f"take; use one of {', '.join(disks)} as the pool's system disk category."
        )
    return None
