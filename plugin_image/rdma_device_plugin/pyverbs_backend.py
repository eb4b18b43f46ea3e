"""RDMA devices as rdma-core's libibverbs lists them, through Debian's python3-pyverbs when importable.

sysfs discovery (discovery.py) is the plugin's source of truth and needs nothing else; this backend is a
second opinion: libibverbs lists only devices whose uverbs node exists under /dev/infiniband and for which a
user-space provider matches, so a disagreement points at a host problem (a missing node or provider package).

libibverbs reads the sysfs root from $SYSFS_PATH once per process, on its first device listing, and always
opens device nodes under /dev/infiniband. A host without RDMA support makes it fail with "Failed to get
devices list"; that means no devices, not an error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdma_device_plugin.discovery import Hca

# enum ibv_node_type, spelled as the kernel prints it in <ibdev>/node_type.
NODE_TYPES = {1: "CA", 2: "switch", 3: "router", 4: "RNIC", 5: "usNIC", 6: "usNIC UDP", 7: "unspecified"}
_NO_DEVICES = "Failed to get devices list"


class VerbsListError(Exception):
    """libibverbs failed to list devices for another reason than "no RDMA on this host"."""


@dataclass(frozen=True)
class VerbsDevice:
    name: str
    node_type: str
    """Kernel spelling: ``CA``, ``RNIC``, ..."""
    node_guid: str
    """sysfs spelling: ``248a:0703:00b4:8d2c``."""


def _import_device_module() -> Any:
    try:
        import pyverbs.device  # noqa: PLC0415  (optional dependency: only where python3-pyverbs is installed)
    except ImportError:
        return None
    return pyverbs.device


def format_guid(guid: int) -> str:
    digits = f"{guid:016x}"
    return ":".join(digits[i : i + 4] for i in range(0, 16, 4))


def list_devices(sysfs_root: Path | None = None) -> list[VerbsDevice] | None:
    """libibverbs' device list, or None when pyverbs cannot be imported.

    sysfs_root other than /sys is handed to libibverbs through $SYSFS_PATH, which only the process's first
    listing reads.
    """
    device_module = _import_device_module()
    if device_module is None:
        return None
    if sysfs_root is not None and sysfs_root.resolve() != Path("/sys"):
        os.environ["SYSFS_PATH"] = str(sysfs_root.resolve())
    from pyverbs.pyverbs_error import PyverbsRDMAError  # noqa: PLC0415

    try:
        raw = device_module.get_device_list()
    except PyverbsRDMAError as error:
        if _NO_DEVICES in str(error):
            return []
        raise VerbsListError(f"libibverbs could not list devices: {error}") from error
    devices = [
        VerbsDevice(
            name=_text(device.name),
            node_type=NODE_TYPES.get(int(device.node_type), str(device.node_type)),
            node_guid=format_guid(int(device.guid)),
        )
        for device in raw
    ]
    return sorted(devices, key=lambda device: device.name)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def cross_check(hcas: Sequence[Hca], devices: Sequence[VerbsDevice]) -> list[str]:
    """Where libibverbs and sysfs discovery disagree, one sentence each; [] when they agree.

    Only devices whose uverbs node exists are expected in libibverbs' list.
    """
    expected = {hca.name: hca for hca in hcas if hca.uverbs is not None and hca.uverbs.present}
    listed = {device.name: device for device in devices}
    problems = [
        f"{name}: sysfs shows it with its uverbs node but libibverbs does not list it "
        f"(no user-space provider for PCI id {hca.vendor}:{hca.device_id}?)"
        for name, hca in expected.items()
        if name not in listed
    ]
    problems += [
        f"{name}: libibverbs lists it but sysfs discovery does not" for name in listed if name not in expected
    ]
    for name in expected.keys() & listed.keys():
        hca, device = expected[name], listed[name]
        if (hca.node_type, hca.node_guid) != (device.node_type, device.node_guid):
            problems.append(
                f"{name}: sysfs says node type {hca.node_type}, GUID {hca.node_guid}; libibverbs says "
                f"{device.node_type}, {device.node_guid}"
            )
    return sorted(problems)
