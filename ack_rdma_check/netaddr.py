"""The IPv4 address of a netdev inside a host-network pod, where RDMA_CM must reach the server.

``ip -4 -o addr show dev bond0`` prints one line per address:
``7: bond0    inet 192.168.3.21/20 brd 192.168.15.255 scope global bond0\\       valid_lft forever ...``.
"""

from __future__ import annotations

import re

from ack_rdma_check.errors import SetupError

_INET = re.compile(r"\binet (\d{1,3}(?:\.\d{1,3}){3})/\d+")


def argv(netdev: str) -> list[str]:
    return ["ip", "-4", "-o", "addr", "show", "dev", netdev]


def first_ipv4(
    output: str, netdev: str, where: str, purpose: str = "RDMA_CM needs to reach the server"
) -> str:
    for line in output.splitlines():
        if "scope host" in line:
            continue
        match = _INET.search(line)
        if match is not None:
            return match.group(1)
    raise SetupError(f"{where}: {netdev} has no IPv4 address, which {purpose}")
