"""Port health: the cheap sysfs re-read, and what kubelet sees through ListAndWatch when ports flap and HCAs
vanish (in-process plugin, kubelet stand-in, real unix sockets)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc
import pytest
from kubelet_standin import Devices
from lifecycle_harness import supervised
from plugin_harness import node, run
from rdma_device_plugin.discovery import discover
from rdma_device_plugin.health import HcaLinks, PortLink, log_transitions, read_links, with_links
from sysfs_fixture import FixtureTree

MakeTree = Callable[[str], FixtureTree]
POOL = {"periodicUpdateInterval": 0, "configList": [{"resourceName": "ib", "rdmaHcaMax": 4, "selectors": {}}]}


def health_numa(devices: Devices) -> list[tuple[str, str, int]]:
    return [(d.ID, d.health, d.topology.nodes[0].ID) for d in devices]


def test_read_links_reads_each_ports_state_files_as_discovery_labels_them(make_tree: MakeTree) -> None:
    tree = make_tree("ib_two_numa")
    hcas = discover(tree.sysfs_root, tree.dev_root)
    tree.set_port_state("mlx5_1", state="2: INIT", phys_state="5: LinkUp")
    links = read_links(tree.sysfs_root, hcas)
    assert links == {
        "mlx5_0": HcaLinks(True, {1: PortLink("ACTIVE", "LinkUp")}),
        "mlx5_1": HcaLinks(True, {1: PortLink("INIT", "LinkUp")}),
    }
    # Applying the read gives what a full discovery of the changed tree gives.
    assert with_links(hcas, links) == discover(tree.sysfs_root, tree.dev_root)


def test_a_vanished_hca_reads_as_absent_with_unknown_ports(make_tree: MakeTree) -> None:
    tree = make_tree("ib_two_numa")
    hcas = discover(tree.sysfs_root, tree.dev_root)
    tree.remove_hca("mlx5_0")
    links = read_links(tree.sysfs_root, hcas)
    assert links["mlx5_0"] == HcaLinks(False, {1: PortLink("UNKNOWN", "UNKNOWN")})
    updated = with_links(hcas, links)
    assert [hca.healthy for hca in updated] == [False, True]
    # Everything but the port state stays as discovered until a rediscovery drops the HCA.
    assert updated[0].char_devices == hcas[0].char_devices


def test_transitions_are_logged_once_per_port_change(
    make_tree: MakeTree, caplog: pytest.LogCaptureFixture
) -> None:
    tree = make_tree("ib_two_numa")
    hcas = discover(tree.sysfs_root, tree.dev_root)
    with caplog.at_level(logging.INFO, logger="rdma_device_plugin.health"):
        assert not log_transitions(hcas, read_links(tree.sysfs_root, hcas))
        tree.set_port_state("mlx5_1", state="1: DOWN", phys_state="2: Polling")
        links = read_links(tree.sysfs_root, hcas)
        assert log_transitions(hcas, links)
        hcas = with_links(hcas, links)
        assert not log_transitions(hcas, read_links(tree.sysfs_root, hcas))
        tree.remove_hca("mlx5_0")
        links = read_links(tree.sysfs_root, hcas)
        assert log_transitions(hcas, links)
        assert not log_transitions(with_links(hcas, links), links)
    assert [r.getMessage() for r in caplog.records] == [
        "mlx5_1 port 1: ACTIVE/LinkUp -> DOWN/Polling (not usable)",
        "mlx5_0 is gone from sysfs; its IDs are unhealthy until the next rediscovery removes them",
    ]


def test_a_port_flip_reaches_kubelet_as_unhealthy_and_back_as_healthy_with_nothing_else_pushed() -> None:
    async def scenario() -> None:
        # Rediscovery is off: the port poll alone must carry the change.
        async with node("ib_two_numa", POOL) as host, supervised(host):
            endpoint = await host.kubelet.wait_registered("rdma/ib")
            healthy = [("0", "Healthy", 0), ("1", "Healthy", 1), ("2", "Healthy", 0), ("3", "Healthy", 1)]
            assert health_numa(await endpoint.next_update()) == healthy
            host.tree.set_port_state("mlx5_1", state="1: DOWN", phys_state="3: Disabled")
            assert health_numa(await endpoint.next_update()) == [
                ("0", "Healthy", 0),
                ("1", "Unhealthy", 1),
                ("2", "Healthy", 0),
                ("3", "Unhealthy", 1),
            ]
            # Recovery: ACTIVE with the link up makes the IDs healthy again.
            host.tree.set_port_state("mlx5_1", state="4: ACTIVE", phys_state="5: LinkUp")
            assert health_numa(await endpoint.next_update()) == healthy
            # Polls that find nothing new push nothing.
            with pytest.raises(TimeoutError):
                await endpoint.next_update(timeout=0.3)
            assert len(endpoint.updates) == 3

    run(scenario)


def test_a_vanished_hca_turns_its_ids_unhealthy_then_rediscovery_removes_it() -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", POOL) as host, supervised(host) as running:
            endpoint = await host.kubelet.wait_registered("rdma/ib")
            await endpoint.next_update()
            host.tree.remove_hca("mlx5_1")
            # A container of this shared pool gets mlx5_1's nodes too, and they are gone: no ID can be
            # allocated, so every ID is unhealthy until the rediscovery drops mlx5_1 from the pool.
            assert health_numa(await endpoint.next_update()) == [
                ("0", "Unhealthy", 0),
                ("1", "Unhealthy", 1),
                ("2", "Unhealthy", 0),
                ("3", "Unhealthy", 1),
            ]
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await endpoint.allocate(["0"])
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            await running.supervisor.rediscover()
            assert health_numa(await endpoint.next_update()) == [
                ("0", "Healthy", 0),
                ("1", "Healthy", 0),
                ("2", "Healthy", 0),
                ("3", "Healthy", 0),
            ]
            (container,) = (await endpoint.allocate(["3"])).container_responses
            assert dict(container.envs) == {"RDMA_DEVICES": "mlx5_0"}

    run(scenario)


def test_a_vanished_hca_is_dropped_at_once_so_the_other_members_ids_allocate_again() -> None:
    hourly = {**POOL, "periodicUpdateInterval": 3600}

    async def scenario() -> None:
        async with node("ib_two_numa", hourly) as host, supervised(host) as running:
            endpoint = await host.kubelet.wait_registered("rdma/ib")
            await endpoint.next_update()
            host.tree.remove_hca("mlx5_1")
            # Not an hour later: the poll that sees mlx5_1 gone starts a rediscovery.
            devices = await endpoint.wait_update(lambda update: {d.health for d in update} == {"Healthy"})
            assert health_numa(devices) == [
                ("0", "Healthy", 0),
                ("1", "Healthy", 0),
                ("2", "Healthy", 0),
                ("3", "Healthy", 0),
            ]
            (container,) = (await endpoint.allocate(["1"])).container_responses
            assert dict(container.envs) == {"RDMA_DEVICES": "mlx5_0"}
            assert [hca.name for hca in running.supervisor.hcas] == ["mlx5_0"]

    run(scenario)


def test_a_port_change_reaches_kubelet_within_2_s_at_the_default_poll_interval() -> None:
    async def scenario() -> None:
        config = {"mode": "hca", "periodicUpdateInterval": 0}
        async with node("scc_roce_lag", config) as host, supervised(host, poll=1.0):
            endpoint = await host.kubelet.wait_registered("rdma/hca")
            await endpoint.next_update()
            host.tree.set_port_state("mlx5_bond_0")
            devices = await endpoint.next_update(timeout=2)
            assert {d.health for d in devices} == {"Unhealthy"}

    run(scenario)
