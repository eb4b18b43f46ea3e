"""``ibv_devinfo``: which RDMA devices a pod can open, their transport and port states.

Output shape (rdma-core's devinfo.c), tabs omitted: ``hca_id: <name>`` starts a device, followed by
``transport: <name> (<n>)``, then per port ``port: <n>``, ``state: PORT_ACTIVE (4)``, ``link_layer: <name>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ARGV = ["ibv_devinfo"]

PORT_ACTIVE = "PORT_ACTIVE"
_FIELD = re.compile(r"^\s*(hca_id|transport|port|state|link_layer):\s*(.*?)\s*$")


@dataclass(frozen=True)
class Port:
    number: int
    state: str
    """As ibv_devinfo prints it, e.g. ``PORT_ACTIVE (4)``."""
    link_layer: str

    @property
    def active(self) -> bool:
        return self.state.startswith(PORT_ACTIVE)


@dataclass
class Hca:
    name: str
    transport: str = ""
    """``InfiniBand (0)`` for IB and RoCE, ``iWARP (1)`` for iWARP devices such as Alibaba eRDMA."""
    ports: list[Port] = field(default_factory=list)

    @property
    def iwarp(self) -> bool:
        return self.transport.startswith("iWARP")

    def active_ports(self) -> list[Port]:
        return [port for port in self.ports if port.active]


def parse(text: str) -> list[Hca]:
    hcas: list[Hca] = []
    port: dict[str, str] = {}

    def close_port() -> None:
        if port and hcas:
            hcas[-1].ports.append(Port(int(port["port"]), port.get("state", ""), port.get("link_layer", "")))
        port.clear()

    for line in text.splitlines():
        match = _FIELD.match(line)
        if match is None:
            continue
        key, value = match.groups()
        if key == "hca_id":
            close_port()
            hcas.append(Hca(value))
        elif key == "transport" and hcas and not port:
            hcas[-1].transport = value
        elif key == "port":
            close_port()
            port["port"] = value
        elif port:
            port[key] = value
    close_port()
    return hcas
