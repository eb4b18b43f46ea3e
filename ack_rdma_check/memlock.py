"""The pod's locked-memory limit (``ulimit -l``) against what ``ib_read_bw`` will register.

containerd gives pods 64 KiB unless RDMA devices exist at node init (eRDMA ones come later), and ``IPC_LOCK``
does not change what ``ulimit -l`` shows; the fix lives on the node.
"""

from __future__ import annotations

from ack_rdma_check.errors import SetupError

ARGV = ["sh", "-c", "ulimit -l"]
UNLIMITED = "unlimited"
NODE_FIX = (
    "raise it at the node: set the node pool's containerd_config.limit_mem_lock (the RDMA node pools of "
    "ack-rdma set the provider's maximum; `pulumi up` applies it to the pool's nodes)"
)
_HEADROOM_KIB = 1024
"""Queues, completion queues and the connection's own buffer, beyond the data buffers."""


def needed_kib(qps: int, message_bytes: int) -> int:
    """perftest registers, per QP, a buffer of twice the message size (its send and receive halves)."""
    return qps * 2 * message_bytes // 1024 + _HEADROOM_KIB


def check(output: str, qps: int, message_bytes: int, where: str) -> str:
    """The limit as a short description, or SetupError naming the node-level fix when it is too low."""
    value = output.strip()
    if value == UNLIMITED:
        return "memlock unlimited"
    if not value.isdigit():
        raise SetupError(f"{where}: 'ulimit -l' printed {value!r}, expected a number of KiB or 'unlimited'")
    limit, needed = int(value), needed_kib(qps, message_bytes)
    if limit < needed:
        raise SetupError(
            f"{where}: locked-memory limit is {limit} KiB, ib_read_bw -q {qps} needs about {needed} KiB; "
            + NODE_FIX
        )
    return f"memlock {limit} KiB"
