"""From what the two pods showed to the exact perftest command lines and the server address."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ack_rdma_check import erdma, netaddr
from ack_rdma_check.errors import SetupError
from ack_rdma_check.perftest import PerftestParams
from ack_rdma_check.steps.rdma import Endpoint, run_in
from ack_rdma_check.steps.record import StepLog
from ack_rdma_check.transport import Cluster


@dataclass(frozen=True)
class RunPlan:
    server: Endpoint
    client: Endpoint
    server_params: PerftestParams
    client_params: PerftestParams
    address: str
    """Where the client reaches the server: the pod IP, or the RDMA netdev's address on host network."""
    mode: str

    @property
    def network(self) -> str:
        return "host" if self.server.pod.host_network else "pod"


def make_plan(
    cluster: Cluster,
    endpoints: Sequence[Endpoint],
    params: PerftestParams,
    exec_timeout: float,
    log: StepLog,
) -> RunPlan:
    """``params`` holds the shared flags (QPs, port, RDMA_CM wanted); device and GID index differ per side."""
    server, client = endpoints
    with log.step("Test plan") as note:
        if server.erdma_mode and client.erdma_mode and server.erdma_mode != client.erdma_mode:
            raise SetupError(
                erdma.mixed_modes((server.where, server.erdma_mode), (client.where, client.erdma_mode))
            )
        if server.iwarp != client.iwarp:
            raise SetupError(
                f"{server.where} has an {_kind(server)} device but {client.where} an {_kind(client)} one"
            )
        use_cm = params.rdma_cm or server.iwarp
        if use_cm and not (server.pod.host_network and client.pod.host_network):
            if server.erdma_mode == "default":
                raise SetupError(erdma.pod_network_refusal(None, server.netdev))
            why = "iWARP connects through RDMA_CM" if server.iwarp else "--rdma-cm was given"
            raise SetupError(
                f"{why}, and RDMA_CM cannot use the pod network's address: run host-network test pods "
                "(--rdma-cm --create, or testPodHostNetwork: true in the stack config) so the server "
                "is reached on its node's RDMA netdev (bond0)"
            )
        address = _server_address(cluster, server, exec_timeout)
        plan = RunPlan(
            server=server,
            client=client,
            server_params=_side(params, server, use_cm),
            client_params=_side(params, client, use_cm),
            address=address,
            mode=_mode(server, use_cm),
        )
        note.detail = f"server {server.pod.ref.name} at {address} ({plan.network} network), {plan.mode}"
    return plan


def _server_address(cluster: Cluster, server: Endpoint, exec_timeout: float) -> str:
    if not server.pod.host_network:
        if not server.pod.pod_ip:
            raise SetupError(f"{server.where} has no pod IP yet")
        return server.pod.pod_ip
    if server.netdev is None:
        raise SetupError(
            f"{server.where}: no netdev of {server.device} is visible, so its address is unknown"
        )
    result = run_in(cluster, server.pod, netaddr.argv(server.netdev), exec_timeout)
    return netaddr.first_ipv4(result.stdout, server.netdev, server.where)


def _side(params: PerftestParams, endpoint: Endpoint, use_cm: bool) -> PerftestParams:
    gid_index = None if use_cm or endpoint.gid is None else endpoint.gid.index
    return PerftestParams(
        device=endpoint.device, gid_index=gid_index, rdma_cm=use_cm, qps=params.qps, port=params.port
    )


def _mode(server: Endpoint, use_cm: bool) -> str:
    return (f"eRDMA driver mode {server.erdma_mode}: " if server.erdma_mode else "") + _transport(
        server, use_cm
    )


def _transport(server: Endpoint, use_cm: bool) -> str:
    if server.iwarp:
        return f"iWARP through RDMA_CM (-R) over {server.netdev}"
    if use_cm:
        return f"RDMA_CM (-R) over {server.netdev}"
    if server.gid is not None:
        return f"RoCE v2, GID index {server.gid.index} (-x) on {server.netdev}"
    return f"{server.link_layer}, LID addressing"


def _kind(endpoint: Endpoint) -> str:
    return "iWARP" if endpoint.iwarp else endpoint.link_layer or "RDMA"
