"""What the mock cloud may answer about Alibaba Cloud, each fact with its source; anything else is unknown.

The offline plan must not show values only the cloud knows as if they were real. So the mock cloud answers
lookups (zones, Kubernetes versions) from this catalogue only: a region or an instance type it does not hold
fails or finds nothing as the real API would, and where the real answer depends on stock at deploy time (which
zone sells a type today) the preview shows it as unknown.

Sources (facts taken, tables not copied):
- REGION_ZONES: "Regions and zones supported by ECI", https://help.aliyun.com/en/eci/product-overview/
  regions-and-zones (zone ids per region; ECS holds the same zones).
- UNKNOWN_REGION_ERROR: the ECS API's error for a region that does not exist, "404 InvalidRegionId.NotFound
  The RegionId provided does not exist in our records." (ECS DescribeInstanceTypeFamilies, error codes,
  https://www.alibabacloud.com/help/doc-detail/25621.htm).
- ERDMA_FAMILIES: ECS "Elastic RDMA Interface (ERI)" (https://help.aliyun.com/en/ecs/user-guide/
  elastic-rdma-network-interface-card-eri: ERIs only on specific families) and the instance-family pages
  (general-purpose g8i, g8a, g8ae; compute-optimized c8i; memory-optimized r9a; GPU gn8is, gn8v), as
  collected in /work/shared/notes/alibaba-rdma-today.md; the types with published specifications are in
  components/instance_catalogue.py.
- ZONES_SEEN: g8i in cn-shanghai zones b, e, l, m and n, from a public eRDMA test table cited in
  alibaba-rdma-today.md and marked there as unsure per zone: a preview shows the zone as unknown either way;
  a mock deployment (tests) takes the first of these.
- RETIRED_FAMILIES: ecs.scch5, "no longer sold on the China site" (ECS "Retired instance types"); ecs.sccg7:
  ACK's "Instance types not supported by ACK" (SCC) - a node pool cannot buy it.
- KUBERNETES_VERSIONS: the ACK release notes' component tables: 1.33 "1.33.1-aliyun.1 and 1.33.3-aliyun.1"
  (https://www.alibabacloud.com/help/doc-detail/2923891.html), 1.35 "1.35.1-aliyun.1, 1.35.2-aliyun.1"
  (https://www.alibabacloud.com/help/doc-detail/3021327.html), with their containerd (2.1.1 for 1.33, 2.1.5
  for 1.35). Which of them ACK offers a new cluster is its answer at deploy time.
"""

from __future__ import annotations

import re
from typing import Final

from components.instance_catalogue import CATALOGUE

REGION_ZONES: Final[dict[str, tuple[str, ...]]] = {
    "cn-shanghai": tuple(f"cn-shanghai-{zone}" for zone in "abcdefgklmn"),
    "cn-hangzhou": tuple(f"cn-hangzhou-{zone}" for zone in "befghijk"),
    "cn-beijing": tuple(f"cn-beijing-{zone}" for zone in "cdefghijkl"),
    "cn-qingdao": ("cn-qingdao-b", "cn-qingdao-c"),
}
UNKNOWN_REGION_ERROR: Final = "InvalidRegionId.NotFound: The RegionId provided does not exist in our records."
ERDMA_FAMILIES: Final = frozenset(
    {"ecs.g8i", "ecs.g8a", "ecs.g8ae", "ecs.c8i", "ecs.r9a", "ecs.gn8is", "ecs.gn8v"}
    | {name.rsplit(".", 1)[0] for name in CATALOGUE}
)
ZONES_SEEN: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("cn-shanghai", "ecs.g8i"): tuple(f"cn-shanghai-{zone}" for zone in "belmn"),
}
RETIRED_FAMILIES: Final = frozenset({"ecs.scch5", "ecs.sccg7"})
# Version -> containerd version, both from the release notes' component tables.
KUBERNETES_VERSIONS: Final = {
    "1.33.1-aliyun.1": "2.1.1",
    "1.33.3-aliyun.1": "2.1.1",
    "1.35.1-aliyun.1": "2.1.5",
    "1.35.2-aliyun.1": "2.1.5",
}
# ECS size names: large, xlarge, <n>xlarge; GPU families also <n>x-prefixed families (gn8v-2x).
_INSTANCE_TYPE = re.compile(r"^(ecs\.[a-z0-9]+)(-\d+x)?\.(large|\d*xlarge)$")


class CloudApiError(Exception):
    """What the API answers for a request it refuses."""


def region_zones(region: str) -> tuple[str, ...]:
    """The region's zones; CloudApiError with the API's answer for a region that does not exist."""
    zones = REGION_ZONES.get(region)
    if zones is None:
        raise CloudApiError(
            f"{UNKNOWN_REGION_ERROR} (alicloud:region is {region[:40]!r}; the offline catalogue knows "
            f"{', '.join(REGION_ZONES)} - offline_engine/cloud_facts.py)"
        )
    return zones


def family_of(instance_type: str) -> str | None:
    """``ecs.g8i`` for ``ecs.g8i.8xlarge``; None for a name that is not an ECS instance type."""
    match = _INSTANCE_TYPE.match(instance_type)
    return match.group(1) if match else None


def sold(region: str, instance_type: str) -> bool:
    """The catalogue holds the type as one a node pool in ``region`` can buy."""
    family = family_of(instance_type)
    return (
        region in REGION_ZONES
        and family is not None
        and family in ERDMA_FAMILIES
        and family not in RETIRED_FAMILIES
        and (instance_type in CATALOGUE or not any(name.startswith(f"{family}.") for name in CATALOGUE))
    )


def zones_selling(region: str, instance_type: str) -> tuple[str, ...]:
    """Zones that sell the type, as a mock deployment answers (a preview does not know them)."""
    zones = region_zones(region)
    if not sold(region, instance_type):
        return ()
    family = family_of(instance_type) or ""
    return ZONES_SEEN.get((region, family), zones)
