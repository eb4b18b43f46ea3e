"""What perftest's error output means, as one line a user can act on.

The strings are the ones perftest (and the shell or container runtime in front of it) prints; one failure
usually prints several lines (a specific cause, then the generic ``Unable to init the socket connection``),
so the most specific pattern wins: they are tried in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Failure(Enum):
    NOT_INSTALLED = "not-installed"
    NO_DEVICE = "no-device"
    MEMLOCK = "memlock"
    CM_NOT_LISTENING = "rdma-cm-not-listening"
    CM_ADDRESS = "rdma-cm-address"
    QP_RTR = "qp-rtr"
    GID_TYPES = "gid-types"
    SERVER_UNREACHABLE = "server-unreachable"
    CPU_FREQUENCY = "cpu-frequency"
    DEVICE_CONTEXT = "device-context"
    TRANSFER = "transfer"


RETRYABLE = frozenset({Failure.SERVER_UNREACHABLE, Failure.CM_NOT_LISTENING})
"""The client ran before the server listened: try again while the server is still up."""

# RDMA_CM event numbers as perftest prints them ("Unexpected CM event bl blka <n>"), from rdma_cma.h.
_CM_EVENT_UNREACHABLE = 7
_CM_EVENT_REJECTED = 8

_PATTERNS: tuple[tuple[Failure, re.Pattern[str]], ...] = tuple(
    (failure, re.compile(pattern, re.IGNORECASE))
    for failure, pattern in (
        (
            Failure.NOT_INSTALLED,
            r"executable file not found|\b(ib_read_\w+|ibv_devinfo): (command )?not found",
        ),
        (
            Failure.NO_DEVICE,
            r"Did not detect devices|No IB devices found|IB device \S+ not found"
            r"|Unable to find the Infiniband/RoCE device|Failed to get IB devices list",
        ),
        (Failure.MEMLOCK, r"Couldn't allocate MR|failed to create mr|Couldn't create IB resources"),
        (
            Failure.CM_NOT_LISTENING,
            rf"Unexpected CM event bl blka {_CM_EVENT_REJECTED}\b|RDMA_CM_EVENT_REJECTED",
        ),
        (
            Failure.CM_ADDRESS,
            r"ADDR_ERROR|ROUTE_ERROR|RDMA_CM_EVENT_UNREACHABLE"
            rf"|Unexpected CM event bl blka {_CM_EVENT_UNREACHABLE}\b"
            r"|rdma_resolve_(addr|route) failed|Failed to resolve RDMA CM (address|route)"
            r"|Unable to perform rdma_client function|Failed to create RDMA CM connection",
        ),
        (Failure.QP_RTR, r"Failed to modify QP \S+ to RTR|Unable to Connect the HCA's through the link"),
        (Failure.GID_TYPES, r"Found Incompatibility issue with GID types"),
        (
            Failure.SERVER_UNREACHABLE,
            r"Couldn't connect to \S+|Unable to open file descriptor for socket connection"
            r"|Unable to init the socket connection",
        ),
        (Failure.CPU_FREQUENCY, r"Can't produce a report"),
        (Failure.DEVICE_CONTEXT, r"Couldn't get context for the device"),
        (
            Failure.TRANSFER,
            r"Completion with error|Failed to complete run_iter_\w+ function successfully"
            r"|Problems with warm up",
        ),
    )
)

_ADVICE: dict[Failure, str] = {
    Failure.NOT_INSTALLED: "the test pod image has no perftest; run the pods with the tools image",
    Failure.NO_DEVICE: "the pod has no usable RDMA device; it must request the plugin's resource and see "
    "/dev/infiniband/uverbs*",
    Failure.MEMLOCK: "memory registration failed, which in pods means the locked-memory limit is too low; "
    "set the node pool's containerd_config.limit_mem_lock (ack-rdma sets the provider's maximum) and run the "
    "RDMA process as root with IPC_LOCK",
    Failure.CM_NOT_LISTENING: "the RDMA_CM server did not accept the connection (not listening there yet)",
    Failure.CM_ADDRESS: "RDMA_CM could not resolve the server address to an RDMA device; RDMA_CM needs an "
    "address on an RDMA netdev: use host-network pods and the node's bond0 address (--rdma-cm)",
    Failure.QP_RTR: "the queue pairs could not be connected: wrong GID index, zero GIDs on an overlay pod "
    "network (use host network), or an iWARP device run without -R",
    Failure.GID_TYPES: "the two sides use GIDs of different types or IP versions; use RoCE v2 IPv4 GIDs",
    Failure.SERVER_UNREACHABLE: "the client could not reach the server's port: the server was not listening, "
    "or the port is blocked between the nodes (security group, network policy)",
    Failure.CPU_FREQUENCY: "perftest could not read a steady CPU clock; run it with -F",
    Failure.DEVICE_CONTEXT: "the RDMA device could not be opened in the pod (device node missing or denied)",
    Failure.TRANSFER: "the RDMA transfer failed after connecting: check the link, the path MTU and PFC/ECN",
}


@dataclass(frozen=True)
class Diagnosis:
    failure: Failure
    line: str
    """The line of perftest's output that identified the failure, quoted in the reason."""

    @property
    def retryable(self) -> bool:
        return self.failure in RETRYABLE

    def reason(self, where: str) -> str:
        return f"{where}: {self.line!r}: {_ADVICE[self.failure]}"


def diagnose(output: str) -> Diagnosis | None:
    """The failure ``output`` (stdout and stderr of one perftest run) shows, or None if none is known."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for failure, pattern in _PATTERNS:
        for line in lines:
            if pattern.search(line):
                return Diagnosis(failure, line)
    return None
