"""Hostile and broken input on a plugin socket: every call ends with a short, encodable status, at once.

Over real gRPC on real unix sockets: the plugin in-process, the kubelet stand-in, and raw clients that send
what kubelet never would (bytes that do not parse, thousands of containers or unknown IDs, huge IDs).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import grpc
import pytest
from plugin_harness import Node, node, plugin_in_process, run
from rdma_device_plugin.api import api_pb2
from rdma_device_plugin.pools import Allocation, ResourcePool
from rdma_device_plugin.rpc_status import MAX_DETAIL_CHARS
from rdma_device_plugin.servicer import MAX_CONTAINERS_PER_REQUEST, AllocateResponses
from sysfs_fixture import HcaSpec, PciSpec, PortSpec
from test_servicer import refused

HCA: dict[str, object] = {"mode": "hca"}
ALLOCATE = "/v1beta1.DevicePlugin/Allocate"
# What a client waits at most here; a call that hangs fails the test instead of the whole run.
CALL_TIMEOUT = 5.0
# An ibdev name whose last byte is not UTF-8, as os.fsdecode reads it from sysfs.
NOT_UTF8 = os.fsdecode(b"mlx5_\xff")


def add_hca_named_not_utf8(host: Node, *, verbs_node: bool) -> None:
    """A second RoCE HCA next to erdma_0, named NOT_UTF8; without its /dev/infiniband/uverbs1 if asked."""
    pci = PciSpec("0000:00:07.0", bridge=None, netdevs=("eth9",))
    host.tree.add_pci_function(pci)
    host.tree.add_hca(HcaSpec(NOT_UTF8, pci, ports=(PortSpec(netdev="eth9"),)))
    if not verbs_node:
        host.tree.remove_dev_node("uverbs1")


async def raw_allocate(host: Node, payload: bytes) -> grpc.aio.AioRpcError:
    """Send `payload` as the body of an Allocate call; the call must fail, and its error is returned."""
    async with grpc.aio.insecure_channel(f"unix:{host.plugin_dir / 'rdma_hca.sock'}") as channel:
        call = channel.unary_unary(ALLOCATE, None, None)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(payload, timeout=CALL_TIMEOUT)
    return caught.value


def test_allocate_naming_an_ibdev_that_is_not_utf8_answers_at_once_with_the_name_escaped() -> None:
    async def scenario() -> None:
        async with node("erdma", HCA) as host:
            add_hca_named_not_utf8(host, verbs_node=False)
            async with plugin_in_process(host):
                endpoint = await host.kubelet.wait_registered("rdma/hca")
                error = await refused(endpoint, ["0"])
                assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
                assert "mlx5_\\udcff" in (error.details() or "")

    run(scenario)


def test_an_exception_inside_a_handler_ends_the_call_with_internal_not_a_hang(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: ResourcePool, ids: Sequence[str]) -> Allocation:
        raise RuntimeError(f"bug while allocating {NOT_UTF8}")

    monkeypatch.setattr(ResourcePool, "allocate", broken)

    async def scenario() -> None:
        async with node("erdma", HCA) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/hca")
            with caplog.at_level(logging.INFO):
                error = await refused(endpoint, ["0"])
            assert error.code() == grpc.StatusCode.INTERNAL
            assert error.details() == (
                "Allocate failed inside the plugin (RuntimeError): bug while allocating mlx5_\\udcff"
            )
            # The plugin still answers what it can.
            assert await endpoint.pre_start(["0"]) == api_pb2.PreStartContainerResponse()

    run(scenario)
    (line,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert line.levelname == "ERROR" and line.exc_info is not None


def test_ten_thousand_unknown_ids_get_invalid_argument_with_a_detail_that_does_not_grow(
    caplog: pytest.LogCaptureFixture,
) -> None:
    huge_id = "x" * 1_000_000

    async def scenario() -> None:
        async with node("erdma", HCA) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/hca")
            with caplog.at_level(logging.WARNING):
                many = await refused(endpoint, [f"no-such-id-{i}" for i in range(10_000)])
                huge = await refused(endpoint, [huge_id])
            assert many.code() == huge.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "'no-such-id-0', 'no-such-id-1', 'no-such-id-2' and 9997 more" in (many.details() or "")
            for error in (many, huge):
                assert len(error.details() or "") <= MAX_DETAIL_CHARS + 64
            assert "(1000000 characters)" in (huge.details() or "")

    run(scenario)
    assert all(len(record.getMessage()) < 4 * MAX_DETAIL_CHARS for record in caplog.records)


@pytest.mark.parametrize(
    "payload",
    [
        # A ContainerAllocateRequest field whose length runs past the end of the message.
        b"\x0a\x10\x0a\x01",
        # devices_ids = b"\xff\xfe": a proto3 string that is not UTF-8.
        b"\x0a\x04\x0a\x02\xff\xfe",
    ],
    ids=["truncated", "invalid-utf8"],
)
def test_malformed_allocate_bytes_are_invalid_argument_and_one_warning_without_traceback(
    payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with node("erdma", HCA) as host, plugin_in_process(host):
            await host.kubelet.wait_registered("rdma/hca")
            with caplog.at_level(logging.INFO):
                errors = [await raw_allocate(host, payload) for _ in range(20)]
            assert {error.code() for error in errors} == {grpc.StatusCode.INVALID_ARGUMENT}
            assert "is not a valid message of kubelet's device-plugin API" in (errors[0].details() or "")

    run(scenario)
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.levelname for r in problems] == ["WARNING"], [r.getMessage() for r in problems]
    assert "Allocate refused for rdma/hca: INVALID_ARGUMENT" in problems[0].getMessage()
    assert problems[0].exc_info is None


def test_more_containers_than_any_pod_has_are_refused_before_any_work() -> None:
    async def scenario() -> None:
        async with node("erdma", HCA) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/hca")
            error = await refused(endpoint, *[["0"]] * 200_000)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert f"more than the {MAX_CONTAINERS_PER_REQUEST} one call may carry" in (error.details() or "")
            # The most a call may carry is still answered.
            response = await endpoint.allocate(*[["0"]] * MAX_CONTAINERS_PER_REQUEST)
            assert len(response.container_responses) == MAX_CONTAINERS_PER_REQUEST

    run(scenario)


def test_the_answer_store_is_bounded_by_bytes_as_well_as_by_count() -> None:
    def allocation(index: int) -> Allocation:
        # ~40 KB per answer: few enough that the count limit alone would keep all of them.
        nodes = tuple(f"/dev/infiniband/uverbs{index:03}-{n}" for n in range(1000))
        return Allocation(nodes, {"RDMA_DEVICES": f"mlx5_{index:03}"})

    responses = AllocateResponses()
    first = responses.answer([allocation(0)])
    size = first.ByteSize()
    kept = AllocateResponses.MAX_BYTES // size
    assert kept < AllocateResponses.LIMIT
    for index in range(1, kept):
        responses.answer([allocation(index)])
    assert responses.answer([allocation(0)]) is first
    responses.answer([allocation(kept)])
    assert responses.answer([allocation(0)]) is not first


def test_preferred_allocation_answers_only_available_ids_and_at_most_the_size_asked() -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", HCA) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/hca")
            cases = [
                # (available, must_include, size)
                (["0", "2"], ["5"], 1),
                (["0", "1", "2", "3"], ["0", "1", "2"], 2),
                (["0", "1"], [], 0),
                (["0", "1"], ["1"], -3),
            ]
            for available, must, size in cases:
                (container,) = (await endpoint.preferred(available, must, size)).container_responses
                ids = list(container.deviceIDs)
                assert set(ids) <= set(available), (available, must, size, ids)
                assert len(ids) <= max(size, 0), (available, must, size, ids)
            (container,) = (await endpoint.preferred(["0", "1", "2", "3"], ["3"], 2)).container_responses
            assert list(container.deviceIDs) == ["3", "1"]

    run(scenario)
