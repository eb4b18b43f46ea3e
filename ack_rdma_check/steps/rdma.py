"""What each pod brings to the test: a device node, an active port, enough locked memory, a usable GID."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ack_rdma_check import devinfo, erdma, gid, memlock, netaddr
from ack_rdma_check.errors import SetupError
from ack_rdma_check.gid import GidChoice
from ack_rdma_check.perftest import BW_MESSAGE_BYTES
from ack_rdma_check.perftest_errors import diagnose
from ack_rdma_check.steps.record import StepLog
from ack_rdma_check.transport import Cluster, ExecResult, ExecTimeoutError, PodState

_UVERBS = re.compile(r"^uverbs\d+$")


@dataclass(frozen=True)
class ProbeOptions:
    resource_name: str
    qps: int
    device: str | None = None
    netdev: str | None = None
    exec_timeout: float = 30.0


@dataclass(frozen=True)
class Endpoint:
    """One side of the test: the pod and the RDMA device, port and GID it will use."""

    pod: PodState
    device: str = ""
    port: int = 0
    link_layer: str = ""
    iwarp: bool = False
    gid: GidChoice | None = None
    netdev: str | None = None
    erdma_mode: erdma.DriverMode | None = None
    """The eRDMA driver mode of the device; None for other devices."""

    @property
    def where(self) -> str:
        return where(self.pod)


def where(pod: PodState) -> str:
    return f"pod {pod.ref.name} on {pod.node}"


def run_in(cluster: Cluster, pod: PodState, argv: Sequence[str], timeout: float) -> ExecResult:
    try:
        return cluster.run(pod.ref, argv, timeout)
    except ExecTimeoutError as error:
        raise SetupError(f"{where(pod)}: {error}") from None


def inspect(
    cluster: Cluster, pods: Sequence[PodState], options: ProbeOptions, log: StepLog
) -> list[Endpoint]:
    endpoints = [Endpoint(pod) for pod in pods]
    checks: list[tuple[str, Callable[[Cluster, Endpoint, ProbeOptions], tuple[Endpoint, str]]]] = [
        ("RDMA device in the pods", _device_node),
        ("Active RDMA port", _active_port),
        ("Locked-memory limit", _memlock),
        ("Transport and GID", _transport_and_gid),
    ]
    for name, check in checks:
        with log.step(name) as note:
            details = []
            for index, endpoint in enumerate(endpoints):
                endpoints[index], detail = check(cluster, endpoint, options)
                details.append(f"{endpoint.pod.ref.name}: {detail}")
            note.detail = "; ".join(details)
    return endpoints


def _device_node(cluster: Cluster, endpoint: Endpoint, options: ProbeOptions) -> tuple[Endpoint, str]:
    listing = run_in(cluster, endpoint.pod, ["ls", "-1", "/dev/infiniband"], options.exec_timeout)
    uverbs = [name for name in listing.stdout.split() if _UVERBS.match(name)]
    if listing.rc != 0 or not uverbs:
        raise SetupError(
            f"{endpoint.where}: no RDMA device in the pod (no /dev/infiniband/uverbs*); the pod must request "
            f"{options.resource_name} and the RDMA device plugin must run on node {endpoint.pod.node}"
        )
    return endpoint, ", ".join(uverbs)


def _active_port(cluster: Cluster, endpoint: Endpoint, options: ProbeOptions) -> tuple[Endpoint, str]:
    result = run_in(cluster, endpoint.pod, devinfo.ARGV, options.exec_timeout)
    hcas = devinfo.parse(result.stdout)
    if result.rc != 0 or not hcas:
        diagnosis = diagnose(result.output)
        if diagnosis is not None:
            raise SetupError(diagnosis.reason(f"{endpoint.where}: ibv_devinfo"))
        raise SetupError(f"{endpoint.where}: ibv_devinfo exited {result.rc} and listed no RDMA device")
    hca = _pick_hca(hcas, options.device, endpoint.where)
    active = hca.active_ports()
    if not active:
        states = ", ".join(f"port {port.number} {port.state}" for port in hca.ports) or "no ports"
        raise SetupError(f"{endpoint.where}: RDMA port down on {hca.name} ({states}); check the cable/link")
    port = active[0]
    endpoint = replace(
        endpoint, device=hca.name, port=port.number, link_layer=port.link_layer, iwarp=hca.iwarp
    )
    kind = "iWARP" if hca.iwarp else f"link layer {port.link_layer}"
    return endpoint, f"{hca.name} port {port.number} {port.state}, {kind}"


def _pick_hca(hcas: list[devinfo.Hca], wanted: str | None, where_: str) -> devinfo.Hca:
    if wanted is None:
        return next((hca for hca in hcas if hca.active_ports()), hcas[0])
    for hca in hcas:
        if hca.name == wanted:
            return hca
    names = ", ".join(hca.name for hca in hcas)
    raise SetupError(f"{where_}: --device {wanted} is not in the pod; it has {names}")


def _memlock(cluster: Cluster, endpoint: Endpoint, options: ProbeOptions) -> tuple[Endpoint, str]:
    result = run_in(cluster, endpoint.pod, memlock.ARGV, options.exec_timeout)
    return endpoint, memlock.check(result.stdout, options.qps, BW_MESSAGE_BYTES, endpoint.where)


def _transport_and_gid(cluster: Cluster, endpoint: Endpoint, options: ProbeOptions) -> tuple[Endpoint, str]:
    probe = run_in(cluster, endpoint.pod, gid.probe_argv(), options.exec_timeout)
    device = gid.parse_probe(probe.stdout).get(endpoint.device)
    if device is None:
        raise SetupError(
            f"{endpoint.where}: /sys/class/infiniband/{endpoint.device} is not visible in the pod"
        )
    iwarp = endpoint.iwarp or device.iwarp
    endpoint = replace(endpoint, iwarp=iwarp, erdma_mode=erdma.driver_mode(device.vendor, iwarp))
    if endpoint.erdma_mode == "compat":
        return _erdma_compat_gid(cluster, endpoint, device, options)
    if iwarp or endpoint.link_layer != "Ethernet":
        netdev = options.netdev or device.netdev_of(endpoint.port)
        kind = (
            "iWARP (needs RDMA_CM, -R)" if iwarp else f"{endpoint.link_layer} (LID addressing, no GID index)"
        )
        mode = "eRDMA driver mode default: " if endpoint.erdma_mode else ""
        return replace(endpoint, netdev=netdev), f"{mode}{kind}, netdev {netdev or 'not visible'}"
    port = _port(device, endpoint)
    choice = gid.select_roce_v2(port, options.netdev, endpoint.where, endpoint.pod.host_network)
    detail = f"RoCE v2 GID index {choice.index} ({choice.gid}) on {choice.netdev}"
    return replace(endpoint, gid=choice, netdev=choice.netdev), detail


def _port(device: gid.SysfsDevice, endpoint: Endpoint) -> gid.SysfsPort:
    port = device.ports.get(endpoint.port)
    if port is None:
        raise SetupError(f"{endpoint.where}: sysfs shows no port {endpoint.port} of {endpoint.device}")
    return port


def _erdma_compat_gid(
    cluster: Cluster, endpoint: Endpoint, device: gid.SysfsDevice, options: ProbeOptions
) -> tuple[Endpoint, str]:
    """The GID whose value is ``::ffff:<the ERI's IPv4>``: read from the ERI netdev where the pod sees it
    (host network), else the IPv4 GID the kernel bound to the ERI (a pod on the pod network sees the
    device's GID table but not the ERI netdev)."""
    port = _port(device, endpoint)
    eri = options.netdev or device.netdev_of(endpoint.port)
    if eri is None:
        raise SetupError(
            f"{endpoint.where}: no GID of {endpoint.device} names its ERI netdev; pass --netdev with the ERI"
        )
    if endpoint.pod.host_network:
        result = run_in(cluster, endpoint.pod, netaddr.argv(eri), options.exec_timeout)
        purpose = "eRDMA compat mode needs to find its GID"
        ipv4 = netaddr.first_ipv4(result.stdout, eri, endpoint.where, purpose)
        choice = gid.select_ipv4(port, ipv4, eri, endpoint.where)
        source = f"the address of {eri}"
    else:
        choice = gid.select_roce_v2(port, eri, endpoint.where, host_network=False)
        source = f"the IPv4 GID of {eri}, which is outside the pod's network namespace"
    detail = (
        f"eRDMA driver mode compat: RoCE v2 GID index {choice.index} (::ffff:{choice.ipv4}, {source}), "
        "out-of-band setup, no -R"
    )
    return replace(endpoint, gid=choice, netdev=eri), detail
