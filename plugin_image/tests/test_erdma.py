"""Alibaba eRDMA in both driver modes of ack-erdma-controller, one and two devices, and next to the
controller's own `aliyun/erdma` plugin: discovery, then register / ListAndWatch / Allocate through the
kubelet stand-in on real sockets. The hosts are sysfs_fixture's erdma* shapes (their facts and sources are
in the comment above them)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from erdma_controller_standin import IDS_PER_DEVICE, RESOURCE_NAME, ErdmaControllerPlugin, read_devices
from kubelet_standin import Devices
from plugin_harness import node, plugin_in_process, run
from rdma_device_plugin.api import api_pb2, api_pb2_grpc
from rdma_device_plugin.discovery import discover
from sysfs_fixture import ERIS, ZERO_GID, FixtureTree, eui64_guid, ipv4_mapped_gid, mac_gid

HCA: dict[str, object] = {"mode": "hca"}
IB = "/dev/infiniband/"
MakeTree = Callable[[str], FixtureTree]


def rw(*names: str) -> list[tuple[str, str, str]]:
    return [(IB + name, IB + name, "rw") for name in names]


def specs(response: api_pb2.ContainerAllocateResponse) -> list[tuple[str, str, str]]:
    return [(d.container_path, d.host_path, d.permissions) for d in response.devices]


def summary(devices: Devices) -> list[tuple[str, str, list[int] | None]]:
    return [
        (d.ID, d.health, [n.ID for n in d.topology.nodes] if d.HasField("topology") else None)
        for d in devices
    ]


# -- the fixture hosts against the kernel's formats ---------------------------------------------------------


def test_default_mode_port_is_iwarp_with_one_mac_gid(shared_tree: MakeTree) -> None:
    tree = shared_tree("erdma")
    ibdev = tree.sysfs_root / "class/infiniband/erdma_0"
    assert (ibdev / "node_type").read_text() == "4: RNIC\n"
    assert (ibdev / "node_guid").read_text() == "0216:3eff:fe0a:1b2c\n"  # EUI-64 of 00:16:3e:0a:1b:2c
    assert (ibdev / "fw_ver").read_text() == "\n"  # erdma has no get_dev_fw_str
    port = ibdev / "ports/1"
    assert sorted(p.name for p in (port / "gids").iterdir()) == ["0"]  # gid_tbl_len 1
    assert (port / "gids/0").read_text() == "0016:3e0a:1b2c:0000:0000:0000:0000:0000\n"
    assert (port / "gid_attrs/types/0").read_text() == "IB/RoCE v1\n"
    assert (port / "gid_attrs/ndevs/0").read_text() == "eth0\n"
    assert (port / "link_layer").read_text() == "Ethernet\n"
    pci = ibdev.resolve().parent.parent
    assert pci.name == "0000:00:06.0" and not (pci / "net").exists()
    assert (pci / "vendor").read_text() == "0x1ded\n" and (pci / "device").read_text() == "0x107f\n"
    assert (tree.sysfs_root / "class/net/eth0/address").read_text() == "00:16:3e:0a:1b:2c\n"
    assert {name for name, _, _ in tree.char_nodes()} == {"uverbs0", "rdma_cm"}


def test_compat_mode_port_is_roce_v2_with_the_ipv4_gid_at_a_per_device_index(shared_tree: MakeTree) -> None:
    tree = shared_tree("erdma_compat_two")
    for index, ipv4_index in ((0, 1), (1, 2)):
        eri = ERIS[index]
        port = tree.sysfs_root / f"class/infiniband/erdma_{index}/ports/1"
        assert (port / "../../node_type").read_text() == "1: CA\n"
        assert (port / "gids/0").read_text() == f"fe80:0000:0000:0000:{eui64_guid(eri.mac)}\n"
        assert (port / f"gids/{ipv4_index}").read_text() == ipv4_mapped_gid(eri.ipv4) + "\n"
        assert (port / f"gid_attrs/types/{ipv4_index}").read_text() == "RoCE v2\n"
        assert (port / f"gid_attrs/ndevs/{ipv4_index}").read_text() == f"{eri.netdev}\n"
        # Unused entries read as zeros and have no readable attributes.
        assert (port / "gids/15").read_text() == ZERO_GID + "\n"
        assert not (port / "gid_attrs/types/15").exists()
        assert (port / "../../device/numa_node").read_text() == f"{index}\n"
    assert ipv4_mapped_gid("192.168.5.30") == "0000:0000:0000:0000:0000:ffff:c0a8:051e"
    assert mac_gid("00:16:3e:0a:1b:2c") == "0016:3e0a:1b2c:0000:0000:0000:0000:0000"


def test_compat_umad_has_a_umad_and_no_issm(shared_tree: MakeTree) -> None:
    tree = shared_tree("erdma_compat_umad")
    nodes = {name: (major, minor) for name, major, minor in tree.char_nodes()}
    assert nodes == {"uverbs0": (231, 192), "umad0": (231, 0), "rdma_cm": (10, 58)}
    assert (tree.sysfs_root / "class/infiniband_mad/umad0/ibdev").read_text() == "erdma_0\n"


# -- discovery ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "node_type", "numa", "netdevs", "kinds"),
    [
        ("erdma", "RNIC", [None], [("eth0",)], [["uverbs"]]),
        ("erdma_two", "RNIC", [0, 1], [("eth0",), ("eth1",)], [["uverbs"], ["uverbs"]]),
        ("erdma_compat", "CA", [None], [("eth0",)], [["uverbs"]]),
        ("erdma_compat_umad", "CA", [None], [("eth0",)], [["uverbs", "umad"]]),
        ("erdma_compat_two", "CA", [0, 1], [("eth0",), ("eth1",)], [["uverbs"], ["uverbs"]]),
    ],
)
def test_discovery_per_driver_mode(
    shared_tree: MakeTree,
    shape: str,
    node_type: str,
    numa: list[int | None],
    netdevs: list[tuple[str, ...]],
    kinds: list[list[str]],
) -> None:
    tree = shared_tree(shape)
    hcas = discover(tree.sysfs_root, tree.dev_root)
    assert [hca.name for hca in hcas] == [f"erdma_{i}" for i in range(len(numa))]
    assert {(hca.vendor, hca.device_id, hca.driver, hca.node_type) for hca in hcas} == {
        ("1ded", "107f", "erdma", node_type)
    }
    assert [hca.numa_node for hca in hcas] == numa
    assert [hca.netdevs for hca in hcas] == netdevs
    assert [[dev.kind for dev in hca.char_devices] for hca in hcas] == kinds
    assert all(hca.healthy and hca.link_layers == ("Ethernet",) for hca in hcas)
    assert [hca.node_guid for hca in hcas] == [eui64_guid(eri.mac) for eri in ERIS[: len(numa)]]


# -- end to end through the kubelet stand-in ------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    shape: str
    first_devices: list[tuple[str, str, list[int] | None]]
    nodes: list[tuple[str, str, str]]
    """What a container gets for any ID: every eRDMA device of the node (shared pool), rdma_cm last."""
    rdma_devices: str


MODES = [
    # default (iWARP): the verbs node and rdma_cm, never a umad or issm.
    Mode("erdma", [("0", "Healthy", None), ("1", "Healthy", None)], rw("uverbs0", "rdma_cm"), "erdma_0"),
    Mode(
        "erdma_two",
        [("0", "Healthy", [0]), ("1", "Healthy", [1])],
        rw("uverbs0", "uverbs1", "rdma_cm"),
        "erdma_0,erdma_1",
    ),
    Mode(
        "erdma_compat", [("0", "Healthy", None), ("1", "Healthy", None)], rw("uverbs0", "rdma_cm"), "erdma_0"
    ),
    Mode(
        "erdma_compat_umad",
        [("0", "Healthy", None), ("1", "Healthy", None)],
        rw("uverbs0", "umad0", "rdma_cm"),
        "erdma_0",
    ),
    Mode(
        "erdma_compat_two",
        [("0", "Healthy", [0]), ("1", "Healthy", [1])],
        rw("uverbs0", "uverbs1", "rdma_cm"),
        "erdma_0,erdma_1",
    ),
]


@pytest.mark.parametrize("mode", MODES, ids=[mode.shape for mode in MODES])
def test_register_list_and_allocate_per_driver_mode(mode: Mode) -> None:
    async def scenario() -> None:
        async with node(mode.shape, HCA) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/hca")
            assert endpoint.request.endpoint == "rdma_hca.sock"
            devices = await endpoint.next_update()
            assert len(devices) == 1000
            assert summary(devices[:2]) == mode.first_devices
            for ids in (["0"], ["999"], ["1", "2"]):
                (container,) = (await endpoint.allocate(ids)).container_responses
                assert specs(container) == mode.nodes
                assert dict(container.envs) == {"RDMA_DEVICES": mode.rdma_devices}

    run(scenario)


def test_two_erdma_devices_exclusive_pool_gives_the_device_behind_the_id_and_keeps_numa() -> None:
    config = {
        "configList": [
            {
                "resourceName": "erdma",
                "rdmaHcaMax": 4,
                "selectors": {"vendors": ["1ded"], "drivers": ["erdma"]},
                "allocation": "exclusive",
            }
        ]
    }

    async def scenario() -> None:
        async with node("erdma_compat_two", config) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/erdma")
            devices = await endpoint.next_update()
            assert summary(devices) == [
                ("0", "Healthy", [0]),
                ("1", "Healthy", [1]),
                ("2", "Healthy", [0]),
                ("3", "Healthy", [1]),
            ]
            one, both = (await endpoint.allocate(["3"], ["0", "1"])).container_responses
            assert (specs(one), dict(one.envs)) == (rw("uverbs1", "rdma_cm"), {"RDMA_DEVICES": "erdma_1"})
            assert specs(both) == rw("uverbs0", "uverbs1", "rdma_cm")
            (preferred,) = (await endpoint.preferred(["0", "1", "2", "3"], ["1"], 2)).container_responses
            assert list(preferred.deviceIDs) == ["1", "3"]  # erdma_1's NUMA node first

    run(scenario)


# -- next to the controller's own plugin ---------------------------------------------------------------


async def answers(socket: Path) -> list[bytes]:
    """Everything a client can ask our plugin, as kubelet asks it, serialized for exact comparison."""
    async with grpc.aio.insecure_channel(f"unix:{socket}") as channel:
        stub = api_pb2_grpc.DevicePluginStub(channel)
        options = await stub.GetDevicePluginOptions(api_pb2.Empty(), timeout=5)
        stream = stub.ListAndWatch(api_pb2.Empty())
        first = await stream.read()
        stream.cancel()
        requests = api_pb2.AllocateRequest(
            container_requests=[
                api_pb2.ContainerAllocateRequest(devices_ids=ids) for ids in (["0"], ["1", "7"], ["999"])
            ]
        )
        allocated = await stub.Allocate(requests, timeout=5)
        preferred = await stub.GetPreferredAllocation(
            api_pb2.PreferredAllocationRequest(
                container_requests=[
                    api_pb2.ContainerPreferredAllocationRequest(
                        available_deviceIDs=["0", "1", "2", "3"], allocation_size=2
                    )
                ]
            ),
            timeout=5,
        )
    assert isinstance(first, api_pb2.ListAndWatchResponse)
    return [
        message.SerializeToString(deterministic=True) for message in (options, first, allocated, preferred)
    ]


@pytest.mark.parametrize("shape", ["erdma_two", "erdma_compat_umad"])
def test_answers_do_not_depend_on_the_controllers_aliyun_erdma_plugin(shape: str) -> None:
    async def scenario() -> None:
        async with node(shape, HCA) as host, plugin_in_process(host):
            ours = await host.kubelet.wait_registered("rdma/hca")
            socket = host.plugin_dir / "rdma_hca.sock"
            alone = await answers(socket)
            registrations = len(host.kubelet.requests)

            controller = ErdmaControllerPlugin(
                read_devices(host.tree.sysfs_root, host.tree.dev_root), host.plugin_dir
            )
            await controller.start()  # its start-up cleanup of *-erdma.sock leaves our socket alone
            await controller.register()
            theirs = await host.kubelet.wait_registered(RESOURCE_NAME)
            their_devices = await theirs.next_update()
            assert len(their_devices) == IDS_PER_DEVICE * len(controller.devices)
            (their_container,) = (await theirs.allocate([their_devices[0].ID])).container_responses
            (our_container,) = (await ours.allocate(["0"])).container_responses
            # The same device nodes under two resource names.
            their_nodes = {spec.host_path for spec in their_container.devices}
            assert {path for path in their_nodes if "uverbs" in path} <= {
                s.host_path for s in our_container.devices
            }

            beside = await answers(socket)
            await asyncio.sleep(0.2)
            # Nothing about us changed in kubelet: same endpoint, no re-registration, no extra update.
            assert host.kubelet.endpoints["rdma/hca"] is ours
            assert [r.resource_name for r in host.kubelet.requests[registrations:]] == [RESOURCE_NAME]
            assert len(ours.updates) == 1
            await controller.stop()
            after = await answers(socket)
            assert alone == beside == after

    run(scenario)


def test_answers_are_the_same_when_the_controller_registered_first() -> None:
    async def collect(with_controller: bool) -> list[bytes]:
        async with node("erdma_compat_two", HCA) as host:
            controller = ErdmaControllerPlugin(
                read_devices(host.tree.sysfs_root, host.tree.dev_root), host.plugin_dir
            )
            if with_controller:
                await controller.start()
                await controller.register()
                await host.kubelet.wait_registered(RESOURCE_NAME)
            try:
                async with plugin_in_process(host):
                    await host.kubelet.wait_registered("rdma/hca")
                    return await answers(host.plugin_dir / "rdma_hca.sock")
            finally:
                await controller.stop()

    async def scenario() -> None:
        assert await collect(with_controller=True) == await collect(with_controller=False)

    run(scenario)


def test_the_controller_standin_reads_the_fixture_like_the_controller(shared_tree: MakeTree) -> None:
    tree = shared_tree("erdma_two")
    devices = read_devices(tree.sysfs_root, tree.dev_root)
    assert [(d.name, d.mac, d.dev_paths, d.numa) for d in devices] == [
        ("erdma_0", "00:16:3e:0a:1b:2c", ("/dev/infiniband/uverbs0", "/dev/infiniband/rdma_cm"), 0),
        ("erdma_1", "00:16:3e:0a:4d:5e", ("/dev/infiniband/uverbs1", "/dev/infiniband/rdma_cm"), 1),
    ]
