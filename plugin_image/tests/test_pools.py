"""Resource pools over the fixture hosts: IDs, health, NUMA, allocation contents and preferred allocations."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest
from rdma_device_plugin.config import PluginConfig, parse_config
from rdma_device_plugin.discovery import Hca, discover
from rdma_device_plugin.pools import (
    Allocation,
    DeviceState,
    MissingDeviceNodeError,
    ResourcePool,
    UnknownDeviceError,
    build_pools,
)
from sysfs_fixture import FixtureTree

MakeTree = Callable[[str], FixtureTree]
HCA_MODE = {"mode": "hca"}
IB = "/dev/infiniband/"


def pool_format(*entries: dict[str, object]) -> dict[str, object]:
    return {"configList": [{"rdmaHcaMax": 1000, **entry} for entry in entries]}


def pools_on(tree: FixtureTree, config: Mapping[str, object]) -> list[ResourcePool]:
    pools = build_pools(parse_config(config), tree.dev_root)
    hcas = discover(tree.sysfs_root, tree.dev_root)
    for pool in pools:
        pool.refresh(hcas)
    return pools


def only_pool(tree: FixtureTree, config: Mapping[str, object]) -> ResourcePool:
    (pool,) = pools_on(tree, config)
    return pool


def nodes(*names: str) -> tuple[str, ...]:
    return tuple(IB + name for name in names)


# -- IDs and counts per mode and per fixture ---------------------------------------------------------------

HCA_MODE_COUNTS = [
    ("scc_roce_lag", 1000, {None: 0, 0: 1000}, 1000),
    ("ib_two_numa", 1000, {0: 500, 1: 500}, 1000),
    ("sriov_cx5", 1000, {0: 1000}, 1000),
    ("erdma", 1000, {None: 1000}, 1000),
    ("irdma", 1000, {0: 1000}, 1000),
    ("no_rdma", 0, {}, 0),
    ("broken", 1000, {1: 1000}, 0),
]


@pytest.mark.parametrize(("shape", "count", "per_numa", "healthy"), HCA_MODE_COUNTS)
def test_hca_mode_ids_per_fixture(
    shared_tree: MakeTree, shape: str, count: int, per_numa: dict[int | None, int], healthy: int
) -> None:
    pool = only_pool(shared_tree(shape), HCA_MODE)
    devices = pool.devices()
    assert [d.id for d in devices] == [str(i) for i in range(count)]
    for numa, expected in per_numa.items():
        assert sum(d.numa_node == numa for d in devices) == expected
    assert sum(d.healthy for d in devices) == healthy


def test_hca_mode_spreads_ids_round_robin_over_the_hcas(shared_tree: MakeTree) -> None:
    pool = only_pool(shared_tree("ib_two_numa"), HCA_MODE)
    assert pool.devices()[:4] == [
        DeviceState("0", True, 0),
        DeviceState("1", True, 1),
        DeviceState("2", True, 0),
        DeviceState("3", True, 1),
    ]
    assert [h.name for h in pool.members] == ["mlx5_0", "mlx5_1"]


def test_sriov_mode_has_one_id_per_vf_of_the_listed_pf(shared_tree: MakeTree) -> None:
    pool = only_pool(shared_tree("sriov_cx5"), {"mode": "sriov", "pfNetdevices": ["ens2f0"]})
    assert pool.config.resource_name == "rdma/vhca"
    assert pool.devices() == [DeviceState(f"0000:3b:00.{i}", True, 0) for i in range(2, 6)]


def test_sriov_mode_with_an_unknown_pf_advertises_nothing(shared_tree: MakeTree) -> None:
    pool = only_pool(shared_tree("sriov_cx5"), {"mode": "sriov", "pfNetdevices": ["ens9"]})
    assert pool.devices() == []


def test_sriov_mode_naming_a_vf_netdev_does_not_take_the_vf_as_a_pf(shared_tree: MakeTree) -> None:
    pool = only_pool(shared_tree("sriov_cx5"), {"mode": "sriov", "pfNetdevices": ["ens2f0v1"]})
    assert pool.devices() == []


def test_a_pool_without_matching_device_advertises_zero_ids_not_rdma_hca_max(shared_tree: MakeTree) -> None:
    """k8s-rdma-shared-dev-plugin #44: rdmaHcaMax fake IDs on a node without the HCA."""
    pool = only_pool(
        shared_tree("erdma"), pool_format({"resourceName": "ib", "selectors": {"linkTypes": ["infiniband"]}})
    )
    assert pool.devices() == []
    with pytest.raises(UnknownDeviceError):
        pool.allocate(["0"])


def test_pool_format_rdma_hca_max_sets_the_count(shared_tree: MakeTree) -> None:
    pool = only_pool(
        shared_tree("ib_two_numa"), {"configList": [{"resourceName": "a", "rdmaHcaMax": 3, "selectors": {}}]}
    )
    assert [(d.id, d.numa_node) for d in pool.devices()] == [("0", 0), ("1", 1), ("2", 0)]


def test_one_process_serves_every_pool_of_the_config(shared_tree: MakeTree) -> None:
    config = pool_format({"resourceName": "a", "selectors": {}}, {"resourceName": "b", "devices": ["ib1"]})
    pools = pools_on(shared_tree("ib_two_numa"), config)
    assert [(p.config.resource_name, p.config.socket_name) for p in pools] == [
        ("rdma/a", "rdma_a.sock"),
        ("rdma/b", "rdma_b.sock"),
    ]
    assert [[h.name for h in p.members] for p in pools] == [["mlx5_0", "mlx5_1"], ["mlx5_1"]]


# -- selectors ---------------------------------------------------------------------------------------------


@pytest.fixture
def mixed_host(shared_tree: MakeTree) -> list[Hca]:
    """Devices of four hosts as if on one: two IB HCAs, a RoCE LAG HCA, eRDMA and irdma."""
    hcas: list[Hca] = []
    for shape in ("ib_two_numa", "scc_roce_lag", "erdma", "irdma"):
        tree = shared_tree(shape)
        hcas += discover(tree.sysfs_root, tree.dev_root)
    return hcas


SELECTIONS: list[tuple[dict[str, object], list[str]]] = [
    ({"selectors": {}}, ["mlx5_0", "mlx5_1", "mlx5_bond_0", "erdma_0", "irdma0"]),
    ({"selectors": {"vendors": ["15b3"]}}, ["mlx5_0", "mlx5_1", "mlx5_bond_0"]),
    ({"selectors": {"vendors": ["1ded", "8086"]}}, ["erdma_0", "irdma0"]),
    ({"selectors": {"deviceIDs": ["101B"]}}, ["mlx5_0", "mlx5_1"]),
    ({"selectors": {"drivers": ["erdma", "ice"]}}, ["erdma_0", "irdma0"]),
    ({"selectors": {"ifNames": ["bond0"]}}, ["mlx5_bond_0"]),
    ({"selectors": {"ifNames": ["eth0"]}}, ["mlx5_bond_0", "erdma_0"]),
    ({"selectors": {"linkTypes": ["infiniband"]}}, ["mlx5_0", "mlx5_1"]),
    ({"selectors": {"linkTypes": ["ether"]}}, ["mlx5_bond_0", "erdma_0", "irdma0"]),
    ({"selectors": {"vendors": ["15b3"], "linkTypes": ["ether"]}}, ["mlx5_bond_0"]),
    ({"selectors": {"vendors": ["15b3"], "drivers": ["ice"]}}, []),
    ({"devices": ["ib0", "ens1f0"]}, ["mlx5_0", "irdma0"]),
]


@pytest.mark.parametrize(("entry", "members"), SELECTIONS)
def test_selectors_or_within_and_across(
    mixed_host: list[Hca],
    tmp_path_factory: pytest.TempPathFactory,
    entry: dict[str, object],
    members: list[str],
) -> None:
    (pool,) = build_pools(
        parse_config(pool_format({"resourceName": "p", **entry})), tmp_path_factory.mktemp("dev")
    )
    pool.refresh(mixed_host)
    assert [h.name for h in pool.members] == members
    assert len(pool.devices()) == (1000 if members else 0)


# -- allocation --------------------------------------------------------------------------------------------

SHARED_ALLOCATIONS = [
    ("scc_roce_lag", ["7"], nodes("uverbs0", "umad0", "rdma_cm"), "mlx5_bond_0"),
    (
        "ib_two_numa",
        ["0"],
        nodes("uverbs0", "umad0", "issm0", "uverbs1", "umad1", "issm1", "rdma_cm"),
        "mlx5_0,mlx5_1",
    ),
    (
        "sriov_cx5",
        ["4", "9"],
        nodes(*(f"{kind}{i}" for i in range(5) for kind in ("uverbs", "umad", "issm")), "rdma_cm"),
        "mlx5_0,mlx5_1,mlx5_2,mlx5_3,mlx5_4",
    ),
    ("erdma", ["999"], nodes("uverbs0", "rdma_cm"), "erdma_0"),
    ("irdma", ["0", "1"], nodes("uverbs0", "rdma_cm"), "irdma0"),
]


@pytest.mark.parametrize(("shape", "ids", "device_nodes", "names"), SHARED_ALLOCATIONS)
def test_shared_allocation_gives_every_hca_of_the_pool(
    shared_tree: MakeTree, shape: str, ids: list[str], device_nodes: tuple[str, ...], names: str
) -> None:
    pool = only_pool(shared_tree(shape), HCA_MODE)
    assert pool.allocate(ids) == Allocation(device_nodes, {"RDMA_DEVICES": names})


def test_exclusive_allocation_gives_only_the_hcas_behind_the_ids(shared_tree: MakeTree) -> None:
    pool = only_pool(
        shared_tree("ib_two_numa"),
        pool_format({"resourceName": "ib", "allocation": "exclusive", "selectors": {}}),
    )
    assert pool.allocate(["0"]) == Allocation(
        nodes("uverbs0", "umad0", "issm0", "rdma_cm"), {"RDMA_DEVICES": "mlx5_0"}
    )
    assert pool.allocate(["3", "5"]).envs == {"RDMA_DEVICES": "mlx5_1"}
    assert pool.allocate(["1", "2"]) == Allocation(
        nodes("uverbs0", "umad0", "issm0", "uverbs1", "umad1", "issm1", "rdma_cm"),
        {"RDMA_DEVICES": "mlx5_0,mlx5_1"},
    )


def test_sriov_allocation_gives_that_vfs_nodes_only(shared_tree: MakeTree) -> None:
    pool = only_pool(shared_tree("sriov_cx5"), {"mode": "sriov", "pfNetdevices": ["ens2f0"]})
    assert pool.allocate(["0000:3b:00.3"]) == Allocation(
        nodes("uverbs2", "umad2", "issm2", "rdma_cm"), {"RDMA_DEVICES": "mlx5_2"}
    )
    assert pool.allocate(["0000:3b:00.5", "0000:3b:00.2"]).envs == {"RDMA_DEVICES": "mlx5_1,mlx5_4"}


def test_unknown_ids_are_named(shared_tree: MakeTree) -> None:
    pool = only_pool(shared_tree("scc_roce_lag"), HCA_MODE)
    with pytest.raises(UnknownDeviceError) as info:
        pool.allocate(["3", "1000", "x"])
    assert (
        str(info.value)
        == "rdma/hca: unknown device IDs '1000', 'x'; this node advertises IDs \"0\" to \"999\""
    )


def test_unknown_vf_is_named(shared_tree: MakeTree) -> None:
    pool = only_pool(shared_tree("sriov_cx5"), {"mode": "sriov", "pfNetdevices": ["ens2f0"]})
    with pytest.raises(UnknownDeviceError) as info:
        pool.allocate(["0000:3b:00.0"])
    assert str(info.value) == (
        "rdma/vhca: unknown device ID '0000:3b:00.0'; this node advertises the VFs 0000:3b:00.2, "
        "0000:3b:00.3, 0000:3b:00.4, 0000:3b:00.5"
    )


def test_an_empty_request_is_refused(shared_tree: MakeTree) -> None:
    pool = only_pool(shared_tree("irdma"), HCA_MODE)
    with pytest.raises(UnknownDeviceError, match="names no device ID"):
        pool.allocate([])


def test_a_missing_uverbs_node_fails_naming_it(shared_tree: MakeTree) -> None:
    tree = shared_tree("broken")
    pool = only_pool(tree, HCA_MODE)
    with pytest.raises(MissingDeviceNodeError) as info:
        pool.allocate(["0"])
    assert str(info.value) == (
        f"rdma/hca: /dev/infiniband/uverbs0, the verbs node of mlx5_0 (char 231:192), is missing: "
        f"{tree.dev_root}/infiniband/uverbs0 does not exist; check that the host's /dev is mounted at "
        "--dev-root and that udev created the node"
    )


def test_a_node_vanishing_after_discovery_is_caught_at_allocation(make_tree: MakeTree) -> None:
    tree = make_tree("ib_two_numa")
    pool = only_pool(tree, HCA_MODE)
    tree.remove_dev_node("uverbs1")
    with pytest.raises(MissingDeviceNodeError, match="/dev/infiniband/uverbs1, the verbs node of mlx5_1"):
        pool.allocate(["0"])


def test_optional_nodes_and_rdma_cm_are_left_out_when_absent(make_tree: MakeTree) -> None:
    tree = make_tree("ib_two_numa")
    pool = only_pool(tree, pool_format({"resourceName": "ib", "allocation": "exclusive", "selectors": {}}))
    for name in ("issm0", "umad0", "rdma_cm"):
        tree.remove_dev_node(name)
    assert pool.allocate(["0"]) == Allocation(nodes("uverbs0"), {"RDMA_DEVICES": "mlx5_0"})


def test_an_hca_without_uverbs_in_sysfs_cannot_be_allocated(make_tree: MakeTree) -> None:
    tree = make_tree("erdma")
    (tree.sysfs_root / "class/infiniband_verbs/uverbs0").unlink()
    pool = only_pool(tree, HCA_MODE)
    assert not any(d.healthy for d in pool.devices())
    with pytest.raises(MissingDeviceNodeError, match="erdma_0 has no uverbs character device in sysfs"):
        pool.allocate(["0"])


# -- refresh: health and membership over time ------------------------------------------------------------


def test_refresh_reports_changes_only(make_tree: MakeTree) -> None:
    tree = make_tree("ib_two_numa")
    pool = build_pools(parse_config(HCA_MODE), tree.dev_root)[0]
    assert pool.devices() == []

    def rediscover() -> bool:
        return pool.refresh(discover(tree.sysfs_root, tree.dev_root))

    assert rediscover()
    assert not rediscover()
    tree.set_port_state("mlx5_1")
    assert rediscover()
    assert [d.healthy for d in pool.devices()[:4]] == [True, False, True, False]
    tree.set_port_state("mlx5_1", 1, "4: ACTIVE", "5: LinkUp")
    assert rediscover()
    assert all(d.healthy for d in pool.devices())
    tree.remove_hca("mlx5_0")
    assert rediscover()
    assert {d.numa_node for d in pool.devices()} == {1}
    tree.remove_hca("mlx5_1")
    assert rediscover()
    assert pool.devices() == []


# -- preferred allocation --------------------------------------------------------------------------------


def preferred(
    pool: ResourcePool, size: int, must: Sequence[str] = (), available: Sequence[str] | None = None
) -> list[str]:
    ids = [d.id for d in pool.devices()] if available is None else available
    return pool.preferred(ids, must, size)


@pytest.fixture
def two_numa_exclusive(shared_tree: MakeTree) -> ResourcePool:
    return only_pool(
        shared_tree("ib_two_numa"),
        pool_format({"resourceName": "ib", "allocation": "exclusive", "selectors": {}}),
    )


def test_preferred_keeps_to_one_numa_node(two_numa_exclusive: ResourcePool) -> None:
    assert preferred(two_numa_exclusive, 2) == ["0", "2"]


def test_preferred_follows_the_numa_node_of_must_include(two_numa_exclusive: ResourcePool) -> None:
    assert preferred(two_numa_exclusive, 3, must=["1"]) == ["1", "3", "5"]


def test_preferred_spills_to_the_next_numa_node_when_one_is_short(two_numa_exclusive: ResourcePool) -> None:
    assert preferred(two_numa_exclusive, 3, available=["0", "1", "2"]) == ["0", "2", "1"]


def test_preferred_prefers_a_numa_node_that_can_supply_everything(two_numa_exclusive: ResourcePool) -> None:
    assert preferred(two_numa_exclusive, 2, available=["0", "1", "3"]) == ["1", "3"]


def test_preferred_spreads_over_hcas_within_a_numa_node(shared_tree: MakeTree) -> None:
    pool = only_pool(shared_tree("sriov_cx5"), HCA_MODE)  # five HCAs on NUMA 0
    assert preferred(pool, 3) == ["0", "1", "2"]
    assert preferred(pool, 3, must=["0", "5"]) == ["0", "5", "1"]
    assert preferred(pool, 7) == ["0", "1", "2", "3", "4", "5", "6"]


def test_preferred_returns_must_include_and_never_more_than_available(
    two_numa_exclusive: ResourcePool,
) -> None:
    assert preferred(two_numa_exclusive, 1, must=["7"]) == ["7"]
    assert preferred(two_numa_exclusive, 5, available=["4", "9"]) == ["4", "9"]
    assert preferred(two_numa_exclusive, 2, available=["nope", "6", "8"]) == ["6", "8"]


def test_preferred_over_vfs_and_devices_without_numa(shared_tree: MakeTree) -> None:
    vfs = only_pool(shared_tree("sriov_cx5"), {"mode": "sriov", "pfNetdevices": ["ens2f0"]})
    assert preferred(vfs, 2, must=["0000:3b:00.4"]) == ["0000:3b:00.4", "0000:3b:00.2"]
    erdma = only_pool(shared_tree("erdma"), HCA_MODE)
    assert preferred(erdma, 2) == ["0", "1"]


def test_preferred_can_hand_out_every_id(shared_tree: MakeTree) -> None:
    pool = only_pool(shared_tree("sriov_cx5"), HCA_MODE)
    assert len(preferred(pool, 1000)) == 1000


def test_build_pools_makes_one_empty_pool_per_resource(tmp_path: Path) -> None:
    config: PluginConfig = parse_config(
        pool_format({"resourceName": "a", "selectors": {}}, {"resourceName": "b", "selectors": {}})
    )
    pools = build_pools(config, tmp_path)
    assert [p.config for p in pools] == list(config.resources)
    assert all(p.devices() == [] for p in pools)
