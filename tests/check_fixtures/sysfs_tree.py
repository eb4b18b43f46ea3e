"""What a pod reads of an RDMA host's sysfs, on top of the plugin's kernel-exact host trees
(plugin_image/tests/sysfs_fixture.py).

Two things differ from the host trees there: the full GID table mlx5 installs (256 entries per port; for
each IPv4 netdev a link-local and an IPv4-mapped GID, each as RoCE v1 and RoCE v2), and the network
namespace: sysfs lists under a PCI function's ``net/`` only the netdevs in the reader's namespace, so a pod
on the pod network sees none of the host's. Unused ``gids/<i>`` read as all zeros; reading
``gid_attrs/types/<i>`` or ``ndevs/<i>`` of an unused entry fails with EINVAL on a real host, which a regular
file cannot do, so those files are empty here (both give no ``grep .`` output).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sysfs_fixture import GID_IB_ROCE_V1, GID_ROCE_V2, ZERO_GID, ipv4_mapped_gid

GID_TABLE_SIZE = 256
ROCE_V1 = GID_IB_ROCE_V1
ROCE_V2 = GID_ROCE_V2


@dataclass(frozen=True)
class Gid:
    index: int
    gid: str
    type: str
    ndev: str


def roce_gids(ipv4: str, link_local: str, ndev: str, first_index: int = 0) -> list[Gid]:
    """The four GIDs mlx5 installs for one IPv4 netdev: link-local and IPv4-mapped, each as RoCE v1 and v2."""
    entries = [(link_local, ROCE_V1), (link_local, ROCE_V2), (ipv4_mapped_gid(ipv4), ROCE_V1)]
    entries.append((ipv4_mapped_gid(ipv4), ROCE_V2))
    return [Gid(first_index + offset, gid, kind, ndev) for offset, (gid, kind) in enumerate(entries)]


def write_gid_table(port_dir: Path, gids: Sequence[Gid]) -> None:
    """Replaces the port's GID table with a full one holding ``gids``."""
    by_index = {gid.index: gid for gid in gids}
    for index in range(GID_TABLE_SIZE):
        entry = by_index.get(index)
        _write(port_dir / "gids" / str(index), entry.gid if entry else ZERO_GID)
        _write(port_dir / "gid_attrs/types" / str(index), entry.type if entry else None)
        _write(port_dir / "gid_attrs/ndevs" / str(index), entry.ndev if entry else None)


def hide_host_netdevs(sys_root: Path) -> None:
    """The tree as a pod in its own network namespace reads it: no host netdevs anywhere."""
    for net in sorted(sys_root.glob("devices/**/net")):
        if net.is_dir() and not net.is_symlink():
            shutil.rmtree(net)
    for link in (sys_root / "class/net").iterdir():
        link.unlink()


def _write(path: Path, value: str | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("" if value is None else f"{value}\n", encoding="ascii")
