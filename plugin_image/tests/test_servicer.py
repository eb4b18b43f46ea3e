"""The five DevicePlugin RPCs as kubelet sees them: plugin in-process, kubelet stand-in on real sockets."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import grpc
import pytest
from kubelet_standin import Devices, PluginEndpoint
from plugin_harness import node, plugin_in_process, run
from rdma_device_plugin.api import api_pb2
from rdma_device_plugin.pools import Allocation
from rdma_device_plugin.servicer import AllocateResponses, allocation_message

HCA: dict[str, object] = {"mode": "hca"}
SRIOV: dict[str, object] = {"mode": "sriov", "pfNetdevices": ["ens2f0"]}
IB = "/dev/infiniband/"


def summary(devices: Devices) -> list[tuple[str, str, list[int] | None]]:
    """(ID, health, NUMA nodes or None when the device carries no topology) per device."""
    return [
        (d.ID, d.health, [n.ID for n in d.topology.nodes] if d.HasField("topology") else None)
        for d in devices
    ]


def specs(response: api_pb2.ContainerAllocateResponse) -> list[tuple[str, str, str]]:
    return [(d.container_path, d.host_path, d.permissions) for d in response.devices]


def rw(*names: str) -> list[tuple[str, str, str]]:
    """DeviceSpecs of /dev/infiniband/<name>, same path on both sides, read-write."""
    return [(IB + name, IB + name, "rw") for name in names]


@dataclass(frozen=True)
class Case:
    shape: str
    config: Mapping[str, object]
    resource: str
    first_devices: list[tuple[str, str, list[int] | None]]
    """The first three devices of the first ListAndWatch update."""
    count: int
    request: list[str]
    nodes: list[tuple[str, str, str]]
    rdma_devices: str


CASES = [
    Case(
        "scc_roce_lag",
        HCA,
        "rdma/hca",
        [("0", "Healthy", [0]), ("1", "Healthy", [0]), ("2", "Healthy", [0])],
        1000,
        ["7"],
        # RoCE LAG: one ibdev on bond0; umad exists, issm does not (never required).
        rw("uverbs0", "umad0", "rdma_cm"),
        "mlx5_bond_0",
    ),
    Case(
        "ib_two_numa",
        HCA,
        "rdma/hca",
        [("0", "Healthy", [0]), ("1", "Healthy", [1]), ("2", "Healthy", [0])],
        1000,
        ["1"],
        # Shared pool: every HCA of the pool whatever the ID (multi-rail), never the whole directory.
        rw("uverbs0", "umad0", "issm0", "uverbs1", "umad1", "issm1", "rdma_cm"),
        "mlx5_0,mlx5_1",
    ),
    Case(
        "sriov_cx5",
        SRIOV,
        "rdma/vhca",
        [
            ("0000:3b:00.2", "Healthy", [0]),
            ("0000:3b:00.3", "Healthy", [0]),
            ("0000:3b:00.4", "Healthy", [0]),
        ],
        4,
        ["0000:3b:00.3"],
        # The VF behind the ID only: second VF = mlx5_2.
        rw("uverbs2", "umad2", "issm2", "rdma_cm"),
        "mlx5_2",
    ),
    Case(
        "erdma",
        HCA,
        "rdma/hca",
        # numa_node -1 in sysfs: no topology at all.
        [("0", "Healthy", None), ("1", "Healthy", None), ("2", "Healthy", None)],
        1000,
        ["0"],
        rw("uverbs0", "rdma_cm"),
        "erdma_0",
    ),
    Case(
        "irdma",
        HCA,
        "rdma/hca",
        [("0", "Healthy", [0]), ("1", "Healthy", [0]), ("2", "Healthy", [0])],
        1000,
        ["999"],
        rw("uverbs0", "rdma_cm"),
        "irdma0",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.shape for case in CASES])
def test_list_and_watch_and_allocate_per_fixture(case: Case) -> None:
    async def scenario() -> None:
        async with node(case.shape, case.config) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered(case.resource)
            devices = await endpoint.next_update()
            assert summary(devices[:3]) == case.first_devices
            assert len(devices) == case.count
            assert len({d.ID for d in devices}) == case.count
            response = await endpoint.allocate(case.request)
            (container,) = response.container_responses
            assert specs(container) == case.nodes
            assert dict(container.envs) == {"RDMA_DEVICES": case.rdma_devices}
            assert not container.mounts and not container.annotations and not container.cdi_devices

    run(scenario)


def test_ib_two_numa_ids_alternate_between_the_hcas_numa_nodes() -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", HCA) as host, plugin_in_process(host):
            devices = await (await host.kubelet.wait_registered("rdma/hca")).next_update()
            assert {d.ID: d.topology.nodes[0].ID for d in devices} == {str(i): i % 2 for i in range(1000)}

    run(scenario)


def test_exclusive_pool_gives_only_the_hcas_behind_the_ids() -> None:
    config = {
        "configList": [
            {
                "resourceName": "ib_excl",
                "rdmaHcaMax": 4,
                "selectors": {"linkTypes": ["infiniband"]},
                "allocation": "exclusive",
            }
        ]
    }

    async def scenario() -> None:
        async with node("ib_two_numa", config) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/ib_excl")
            assert summary(await endpoint.next_update()) == [
                ("0", "Healthy", [0]),
                ("1", "Healthy", [1]),
                ("2", "Healthy", [0]),
                ("3", "Healthy", [1]),
            ]
            one, both = (await endpoint.allocate(["3"], ["0", "1"])).container_responses
            assert specs(one) == rw("uverbs1", "umad1", "issm1", "rdma_cm")
            assert dict(one.envs) == {"RDMA_DEVICES": "mlx5_1"}
            assert specs(both) == rw("uverbs0", "umad0", "issm0", "uverbs1", "umad1", "issm1", "rdma_cm")
            assert dict(both.envs) == {"RDMA_DEVICES": "mlx5_0,mlx5_1"}

    run(scenario)


async def refused(endpoint: PluginEndpoint, *containers: list[str]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await endpoint.allocate(*containers)
    return caught.value


def test_unknown_id_is_invalid_argument_naming_it() -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", HCA) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/hca")
            # One bad ID in the second container fails the whole call, as kubelet expects.
            error = await refused(endpoint, ["0"], ["5", "1000"])
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "'1000'" in (error.details() or "")
            assert "'5'" not in (error.details() or "")

    run(scenario)


def test_sriov_pf_address_is_not_an_id() -> None:
    async def scenario() -> None:
        async with node("sriov_cx5", SRIOV) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/vhca")
            error = await refused(endpoint, ["0000:3b:00.0"])
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "0000:3b:00.0" in (error.details() or "")

    run(scenario)


def test_missing_uverbs_node_is_failed_precondition_naming_it() -> None:
    async def scenario() -> None:
        async with node("broken", HCA) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/hca")
            devices = await endpoint.next_update()
            assert len(devices) == 1000
            assert summary(devices[:2]) == [("0", "Unhealthy", [1]), ("1", "Unhealthy", [1])]
            error = await refused(endpoint, ["0"])
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "/dev/infiniband/uverbs0" in (error.details() or "")

    run(scenario)


def test_node_vanishing_after_discovery_is_failed_precondition() -> None:
    everything = rw("uverbs0", "umad0", "issm0", "uverbs1", "umad1", "issm1", "rdma_cm")

    async def allocated_nodes(endpoint: PluginEndpoint) -> list[tuple[str, str, str]]:
        (container,) = (await endpoint.allocate(["0"])).container_responses
        return specs(container)

    async def scenario() -> None:
        async with node("ib_two_numa", HCA) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/hca")
            # Answered once before anything vanishes: nodes are checked at every call, not remembered.
            assert await allocated_nodes(endpoint) == everything
            host.tree.remove_dev_node("uverbs1")
            error = await refused(endpoint, ["0"])
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "/dev/infiniband/uverbs1" in (error.details() or "")
            host.tree.remove_dev_node("issm0")
            host.tree.remove_dev_node("rdma_cm")
            (host.tree.dev_root / "infiniband" / "uverbs1").touch()
            # Optional nodes that are gone are simply left out, and given again once they are back.
            assert await allocated_nodes(endpoint) == rw("uverbs0", "umad0", "uverbs1", "umad1", "issm1")
            (host.tree.dev_root / "infiniband" / "issm0").touch()
            (host.tree.dev_root / "infiniband" / "rdma_cm").touch()
            assert await allocated_nodes(endpoint) == everything

    run(scenario)


def test_allocations_are_logged_at_debug_and_refusals_as_warnings(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", HCA) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/hca")
            with caplog.at_level(logging.INFO, logger="rdma_device_plugin.servicer"):
                await endpoint.allocate(["0"])
                await refused(endpoint, ["1000"])
            with caplog.at_level(logging.DEBUG, logger="rdma_device_plugin.servicer"):
                await endpoint.allocate(["7"])

    run(scenario)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "rdma_device_plugin.servicer"]
    assert lines == [
        (
            "WARNING",
            "Allocate refused for rdma/hca: INVALID_ARGUMENT: rdma/hca: unknown device ID '1000'; "
            'this node advertises IDs "0" to "999"',
        ),
        (
            "DEBUG",
            "allocated rdma/hca ids=7 devices="
            + ",".join(
                path for path, _, _ in rw("uverbs0", "umad0", "issm0", "uverbs1", "umad1", "issm1", "rdma_cm")
            ),
        ),
    ]


def test_answers_are_reused_by_content_and_their_store_is_bounded() -> None:
    def allocation(index: int, names: str = "mlx5_0") -> Allocation:
        return Allocation(
            (f"/dev/infiniband/uverbs{index}", "/dev/infiniband/rdma_cm"), {"RDMA_DEVICES": names}
        )

    responses = AllocateResponses()
    first = responses.answer([allocation(0)])
    assert list(first.container_responses) == [allocation_message(allocation(0))]
    assert responses.answer([allocation(0)]) is first
    # Any difference in what a container gets is a different answer.
    assert responses.answer([allocation(0, "mlx5_1")]).container_responses[0].envs["RDMA_DEVICES"] == "mlx5_1"
    two = responses.answer([allocation(0), allocation(1)])
    assert list(two.container_responses) == [
        allocation_message(allocation(0)),
        allocation_message(allocation(1)),
    ]
    for index in range(2, AllocateResponses.LIMIT + 2):
        (container,) = responses.answer([allocation(index)]).container_responses
        assert container == allocation_message(allocation(index))
    # Emptied when full: the first answer is built again, equal to the old one.
    again = responses.answer([allocation(0)])
    assert again is not first
    assert again == first


def test_no_rdma_node_registers_with_zero_devices() -> None:
    async def scenario() -> None:
        async with node("no_rdma", HCA) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/hca")
            assert await endpoint.next_update() == []
            error = await refused(endpoint, ["0"])
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT

    run(scenario)


def test_options_and_pre_start() -> None:
    async def scenario() -> None:
        async with node("erdma", HCA) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/hca")
            # What kubelet keeps: the answer of GetDevicePluginOptions.
            assert endpoint.options == api_pb2.DevicePluginOptions(
                pre_start_required=False, get_preferred_allocation_available=True
            )
            assert await endpoint.pre_start(["0"]) == api_pb2.PreStartContainerResponse()

    run(scenario)


def preferred_ids(response: api_pb2.PreferredAllocationResponse) -> list[str]:
    (container,) = response.container_responses
    return list(container.deviceIDs)


def test_preferred_allocation_keeps_one_numa_node_and_honours_must_include() -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", HCA) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/hca")
            available = ["0", "1", "2", "3", "4", "5"]
            # Even IDs sit on mlx5_0 (NUMA 0), odd ones on mlx5_1 (NUMA 1).
            assert preferred_ids(await endpoint.preferred(available, [], 2)) == ["0", "2"]
            assert preferred_ids(await endpoint.preferred(available, ["3"], 3)) == ["3", "1", "5"]
            # Not enough on one node: take what the must-include node has, then the other node.
            assert preferred_ids(await endpoint.preferred(["0", "1", "3"], ["0"], 2)) == ["0", "1"]

    run(scenario)


def test_preferred_allocation_spreads_over_hcas_of_one_numa_node() -> None:
    config = {
        "configList": [
            {
                "resourceName": "numa0",
                "rdmaHcaMax": 6,
                "selectors": {"drivers": ["mlx5_core"]},
                "allocation": "exclusive",
            }
        ]
    }

    async def scenario() -> None:
        async with node("sriov_cx5", config) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/numa0")
            devices = await endpoint.next_update()
            # PF mlx5_0 and its 4 VFs, all on NUMA 0: IDs 0..4 on five HCAs, ID 5 on mlx5_0 again.
            assert [d.ID for d in devices] == ["0", "1", "2", "3", "4", "5"]
            assert preferred_ids(await endpoint.preferred(["0", "5", "1"], [], 2)) == ["0", "1"]

    run(scenario)
