"""Alibaba eRDMA: which driver mode a pod's device shows, and what each mode needs from the test.

ack-erdma-controller loads the erdma driver in one of two modes on CPU nodes
(AliyunContainerService/alibabacloud-erdma-controller, internal/drivers/default.go and compat.go):

- ``default`` (``compat_mode=N``, capabilities VERBS | RDMA_CM): the iWARP protocol, node type ``4: RNIC``,
  one GID per port that is the MAC, not an IP (erdma_query_gid). Queue pairs connect only through RDMA_CM
  (perftest ``-R``), and RDMA_CM resolves the server's IP to an RDMA device in the caller's network
  namespace: a pod on the pod network has only its veth, which is not the ERI, so it needs host network
  and the server node's ERI address.
- ``compat`` (``compat_mode=Y``, capabilities VERBS | OOB): RoCE v2 (node type ``1: CA``), an
  IPv4-mapped GID ``::ffff:<ERI IPv4>`` at an index that differs per device; queue pairs are set up out of
  band (perftest's TCP exchange, ``-x <that index>``, no ``-R``). Upstream ib_core does not tie a GID to
  the caller's network namespace (only MLNX_OFED's ib_core checks it, rdma_check_gid_user_access), so this
  works from the pod network too.

The two modes cannot talk to each other, and the mode is the add-on's ``preferDriver`` setting.
"""

from __future__ import annotations

from typing import Literal

from ack_rdma_check.perftest_errors import Failure

VENDOR = "0x1ded"
DriverMode = Literal["default", "compat"]
SWITCH = "the ack-erdma-controller add-on's agent.preferDriver"


def driver_mode(vendor: str, iwarp: bool) -> DriverMode | None:
    """The driver mode an eRDMA device (PCI vendor ``0x1ded``) runs in; None for other devices."""
    if vendor.strip().lower() != VENDOR:
        return None
    return "default" if iwarp else "compat"


def pod_network_refusal(client_netdev: str | None, server_eri: str | None) -> str:
    """Why mode default cannot run from the pod network, and the two ways out. Starts like the generic
    iWARP refusal so both read the same."""
    eri = server_eri or "the ERI netdev"
    return (
        "iWARP connects through RDMA_CM, and RDMA_CM cannot use the pod network's address: in eRDMA "
        f"driver mode default the pod's own netdev ({client_netdev or 'eth0'}, a veth on the pod network) "
        f"is not the ERI ({eri} on the node), so RDMA_CM finds no RDMA device for it; run host-network pods "
        "(--rdma-cm --create, or testPodHostNetwork: true in the stack config) so the server is reached on "
        f"its ERI address, or set {SWITCH} to compat, which connects out of band from the pod network"
    )


def mixed_modes(server: tuple[str, DriverMode], client: tuple[str, DriverMode]) -> str:
    return (
        f"{server[0]} runs the eRDMA driver in mode {server[1]} but {client[0]} in mode {client[1]}; the "
        f"two cannot connect (iWARP against RoCE v2): give both nodes the same {SWITCH} and let the add-on "
        "reload the driver (or recreate the nodes)"
    )


def failure_fix(failure: Failure, mode: DriverMode, eri: str | None, gid_index: int | None) -> str | None:
    """The eRDMA-specific fix for a perftest failure, or None when the generic advice says it all."""
    on = eri or "the ERI netdev"
    if failure is Failure.CM_ADDRESS:
        return (
            f"on eRDMA the server address must be the server node's ERI address ({on}) and both pods must "
            f"use the host network; check that {on} is up with its IPv4 address (ack-erdma-controller sets "
            "it up)"
        )
    if failure is Failure.QP_RTR and mode == "compat":
        index = "" if gid_index is None else f" (index {gid_index} here)"
        return (
            f"in eRDMA mode compat the GID must be the RoCE v2 GID ::ffff:<IPv4 of {on}>{index} on both "
            f"sides; if a node's driver is in mode default (iWARP) it connects only through RDMA_CM: set "
            f"{SWITCH} to compat on every RDMA node"
        )
    if failure is Failure.QP_RTR:
        return f"eRDMA mode default (iWARP) connects only through RDMA_CM (-R), over {on}"
    if failure is Failure.GID_TYPES:
        return f"both sides must use their ERI's IPv4 RoCE v2 GID ({on})"
    return None
