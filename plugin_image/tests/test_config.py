"""Both configuration formats, and one precise paragraph for every class of invalid input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rdma_device_plugin.config import (
    ConfigError,
    ResourceConfig,
    Selectors,
    load_config,
    parse_config,
)

ISSUE_POOL_EXAMPLE = {
    "periodicUpdateInterval": 60,
    "configList": [
        {
            "resourceName": "hca_shared_a",
            "resourcePrefix": "rdma",
            "rdmaHcaMax": 1000,
            "selectors": {"vendors": [], "deviceIDs": [], "drivers": [], "ifNames": [], "linkTypes": []},
        }
    ],
}


def test_legacy_hca_mode_is_rdma_hca_with_1000_shared_ids() -> None:
    config = parse_config('{"mode": "hca"}')
    assert config.source_format == "legacy"
    assert config.periodic_update_interval == 60.0
    assert config.resources == (
        ResourceConfig(resource_name="rdma/hca", mode="shared", ids_max=1000, exclusive=False),
    )
    assert config.resources[0].socket_name == "rdma_hca.sock"


def test_legacy_sriov_mode_is_rdma_vhca_over_the_listed_pfs() -> None:
    config = parse_config({"mode": "sriov", "pfNetdevices": ["ens2f0", "ens2f1"]})
    (resource,) = config.resources
    assert resource.resource_name == "rdma/vhca"
    assert resource.socket_name == "rdma_vhca.sock"
    assert resource.mode == "sriov"
    assert resource.pf_netdevices == ("ens2f0", "ens2f1")


def test_the_issue_pool_example_takes_every_device() -> None:
    config = parse_config(json.dumps(ISSUE_POOL_EXAMPLE))
    assert config.source_format == "pool"
    (resource,) = config.resources
    assert resource.resource_name == "rdma/hca_shared_a"
    assert resource.socket_name == "rdma_hca_shared_a.sock"
    assert resource.ids_max == 1000
    assert resource.selectors == Selectors()
    assert not resource.exclusive


def test_pool_format_normalises_selectors_and_reads_every_option() -> None:
    config = parse_config(
        {
            "periodicUpdateInterval": 0,
            "configList": [
                {
                    "resourceName": "ib_rail",
                    "resourcePrefix": "example.com",
                    "rdmaHcaMax": 4,
                    "allocation": "exclusive",
                    "selectors": {
                        "vendors": ["15B3"],
                        "deviceIDs": ["101b", "1021"],
                        "drivers": ["mlx5_core"],
                        "ifNames": ["ib0"],
                        "linkTypes": ["infiniband", "Ether"],
                    },
                },
                {"resourceName": "roce", "rdmaHcaMax": 0, "devices": ["bond0"]},
            ],
        }
    )
    assert config.periodic_update_interval == 0.0
    rail, roce = config.resources
    assert rail.resource_name == "example.com/ib_rail"
    assert rail.exclusive
    assert rail.selectors == Selectors(
        vendors=("15b3",),
        device_ids=("101b", "1021"),
        drivers=("mlx5_core",),
        if_names=("ib0",),
        link_types=("InfiniBand", "Ethernet"),
    )
    assert roce.resource_name == "rdma/roce"
    assert roce.ids_max == 0
    assert roce.selectors == Selectors(if_names=("bond0",))


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"mode": "hca", "periodicUpdateInterval": 5}\n')
    assert load_config(path).periodic_update_interval == 5.0


def test_unreadable_file_names_the_path_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert str(info.value) == (
        f"{missing}: cannot read the config file (No such file or directory); mount the ConfigMap there "
        "or point --config (env RDMA_DP_CONFIG) at a readable JSON file"
    )


def test_a_directory_is_unreadable_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file \\(Is a directory\\)"):
        load_config(tmp_path)


def test_undecodable_bytes_are_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b'{"mode": "\xff"}')
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(path)


POOL = {"resourceName": "a", "rdmaHcaMax": 1, "selectors": {}}


def pool(**changes: object) -> dict[str, object]:
    entry = dict(POOL)
    entry.update(changes)
    return {"configList": [entry]}


ERRORS: list[tuple[str, object, str]] = [
    (
        "bad json",
        '{"mode": "hca",}',
        "config.json: not valid JSON (line 1, column 16: Expecting property name enclosed in double quotes); "
        'fix the syntax so the file holds one JSON object such as {"mode": "hca"}',
    ),
    (
        "duplicate json key",
        '{"mode": "hca", "mode": "sriov"}',
        'config.json: the key "mode" appears twice in one object; keep a single "mode"',
    ),
    (
        "top level not an object",
        "[]",
        'config.json: expected a JSON object such as {"mode": "hca"} or {"configList": [...]}, got an array',
    ),
    (
        "neither format",
        "{}",
        'config.json: sets neither "mode" (legacy format, e.g. {"mode": "hca"}) nor "configList" (pool '
        'format, e.g. {"configList": [{"resourceName": "hca_shared", "rdmaHcaMax": 1000, '
        '"selectors": {}}]}); '
        "add one",
    ),
    (
        "both formats",
        {"mode": "hca", "configList": []},
        'config.json: holds both "configList" (pool format) and "mode" (legacy format); keep one format',
    ),
    (
        "unknown top-level key",
        {"mode": "hca", "periodicUpdateIntervall": 3},
        'config.json: periodicUpdateIntervall: unknown key; did you mean "periodicUpdateInterval"? allowed '
        "here: mode, pfNetdevices, pfMaxBandwidth, periodicUpdateInterval",
    ),
    (
        "unknown pool key",
        pool(rdmaHCAMax=3),
        'config.json: configList[0].rdmaHCAMax: unknown key; did you mean "rdmaHcaMax"? allowed here: '
        "resourceName, resourcePrefix, rdmaHcaMax, selectors, devices, allocation",
    ),
    (
        "unknown selector key",
        pool(selectors={"vendor": ["15b3"]}),
        'config.json: configList[0].selectors.vendor: unknown key; did you mean "vendors"? allowed here: '
        "vendors, deviceIDs, drivers, ifNames, linkTypes",
    ),
    (
        "unknown mode",
        {"mode": "rdma"},
        'config.json: mode: "rdma" is not a known mode; use "hca" (resource rdma/hca, shared by '
        "every pod) or "
        '"sriov" (resource rdma/vhca, one ID per VF of "pfNetdevices")',
    ),
    ("mode not a string", {"mode": 1}, 'config.json: mode: expected a string such as "hca", got 1'),
    (
        "sriov without pfs",
        {"mode": "sriov"},
        'config.json: pfNetdevices: is required in "sriov" mode; list the PF netdevs, e.g. ["eth0"]',
    ),
    (
        "sriov with empty pfs",
        {"mode": "sriov", "pfNetdevices": []},
        'config.json: pfNetdevices: is empty; list at least one netdev name, e.g. ["eth0"]',
    ),
    (
        "pfs in hca mode",
        {"mode": "hca", "pfNetdevices": ["eth0"]},
        'config.json: pfNetdevices: is used only in "sriov" mode; remove it, or set "mode": "sriov"',
    ),
    (
        "pfMaxBandwidth",
        {"mode": "sriov", "pfNetdevices": ["eth0"], "pfMaxBandwidth": [100]},
        "config.json: pfMaxBandwidth: is not supported: this plugin never reconfigures VFs; remove "
        "it and set "
        "VF rate limits on the host (ip link set <pf> vf <n> max_tx_rate <Mbps>)",
    ),
    (
        "pf name not a netdev",
        {"mode": "sriov", "pfNetdevices": ["eth0", "a/b"]},
        "config.json: pfNetdevices[1]: \"a/b\" is not a network interface name (1-15 characters, no '/', ':' "
        'or spaces) such as "eth0"',
    ),
    (
        "pfNetdevices wrong type",
        {"mode": "sriov", "pfNetdevices": "eth0"},
        'config.json: pfNetdevices: expected an array of strings such as ["eth0"], got "eth0"',
    ),
    (
        "interval wrong type",
        {"mode": "hca", "periodicUpdateInterval": "60"},
        "config.json: periodicUpdateInterval: expected a number of seconds such as 60 (0 disables "
        'rediscovery), got "60"',
    ),
    (
        "interval negative",
        {"mode": "hca", "periodicUpdateInterval": -1},
        "config.json: periodicUpdateInterval: -1 is negative; use 0 (off) or a number of seconds",
    ),
    (
        "configList not a list",
        {"configList": {}},
        "config.json: configList: expected an array of pool objects, got an object",
    ),
    (
        "configList empty",
        {"configList": []},
        'config.json: configList: is empty; add at least one pool such as {"resourceName": "hca_shared", '
        '"rdmaHcaMax": 1000, "selectors": {}}',
    ),
    (
        "pool not an object",
        {"configList": ["hca"]},
        'config.json: configList[0]: expected a JSON object such as {"resourceName": "hca_shared", '
        '"rdmaHcaMax": 1000, "selectors": {}}, got a string',
    ),
    (
        "missing resourceName",
        {"configList": [{"rdmaHcaMax": 1, "selectors": {}}]},
        'config.json: configList[0].resourceName: is required; name the pool, e.g. "hca_shared"',
    ),
    (
        "bad resourceName",
        pool(resourceName="hca-a"),
        'config.json: configList[0].resourceName: "hca-a" may hold only letters, digits and "_" '
        '(^[a-zA-Z0-9_]+$), e.g. "hca_shared"',
    ),
    (
        "resourceName kubelet would reject",
        pool(resourceName="_hca"),
        'config.json: configList[0].resourceName: "_hca" must start and end with a letter or digit and be at '
        "most 63 characters (kubelet rejects other extended resource names)",
    ),
    (
        "resourceName wrong type",
        pool(resourceName=7),
        'config.json: configList[0].resourceName: expected a string such as "hca_shared", got 7',
    ),
    (
        "duplicate resourceName",
        {"configList": [POOL, {**POOL, "resourceName": "b"}, {**POOL, "resourcePrefix": "example.com"}]},
        'config.json: configList[2].resourceName: "a" is already used by configList[0]; give every pool a '
        "unique resourceName",
    ),
    (
        "bad resourcePrefix",
        pool(resourcePrefix="Rdma!"),
        'config.json: configList[0].resourcePrefix: "Rdma!" is not a DNS subdomain (lower-case letters, '
        "digits, '-' and '.'); use e.g. \"rdma\" or \"example.com\"",
    ),
    (
        "reserved resourcePrefix",
        pool(resourcePrefix="kubernetes.io"),
        'config.json: configList[0].resourcePrefix: "kubernetes.io" is reserved by Kubernetes; use '
        'e.g. "rdma"',
    ),
    (
        "missing rdmaHcaMax",
        {"configList": [{"resourceName": "a", "selectors": {}}]},
        "config.json: configList[0].rdmaHcaMax: is required; set how many IDs the pool advertises, e.g. 1000",
    ),
    (
        "negative rdmaHcaMax",
        pool(rdmaHcaMax=-1),
        "config.json: configList[0].rdmaHcaMax: -1 is negative; use 0 or more (the number of IDs, e.g. 1000)",
    ),
    (
        "rdmaHcaMax as a string",
        pool(rdmaHcaMax="1000"),
        "config.json: configList[0].rdmaHcaMax: expected a whole number (the number of IDs, e.g. 1000), "
        'got "1000"',
    ),
    (
        "rdmaHcaMax as a boolean",
        pool(rdmaHcaMax=True),
        "config.json: configList[0].rdmaHcaMax: expected a whole number (the number of IDs, e.g. "
        "1000), got true",
    ),
    (
        "both selectors and devices",
        pool(devices=["eth0"]),
        'config.json: configList[0]: has both "selectors" and "devices"; keep one: "selectors" (recommended) '
        'or the older "devices" list of netdev names',
    ),
    (
        "neither selectors nor devices",
        {"configList": [{"resourceName": "a", "rdmaHcaMax": 1}]},
        'config.json: configList[0]: has neither "selectors" nor "devices"; add "selectors": {} to '
        "take every "
        'RDMA device, or narrow it, e.g. "selectors": {"vendors": ["15b3"]}',
    ),
    (
        "empty devices",
        {"configList": [{"resourceName": "a", "rdmaHcaMax": 1, "devices": []}]},
        'config.json: configList[0].devices: is empty; list at least one netdev name, e.g. ["eth0"]',
    ),
    (
        "selectors not an object",
        pool(selectors=["15b3"]),
        'config.json: configList[0].selectors: expected a JSON object such as {"vendors": ["15b3"]}, '
        "got an array",
    ),
    (
        "bad hex vendor",
        {"configList": [POOL, {**POOL, "resourceName": "b", "selectors": {"vendors": ["15B"]}}]},
        'config.json: configList[1].selectors.vendors[0]: "15B" is not a 4-digit hex PCI vendor id such as '
        '"15b3"',
    ),
    (
        "vendor with 0x",
        pool(selectors={"vendors": ["0x15b3"]}),
        'config.json: configList[0].selectors.vendors[0]: "0x15b3" is not a 4-digit hex PCI vendor '
        "id such as "
        '"15b3"',
    ),
    (
        "bad hex device id",
        pool(selectors={"deviceIDs": ["1017", "10zz"]}),
        'config.json: configList[0].selectors.deviceIDs[1]: "10zz" is not a 4-digit hex PCI device '
        "id such as "
        '"1017"',
    ),
    (
        "selector item wrong type",
        pool(selectors={"vendors": [5555]}),
        "config.json: configList[0].selectors.vendors[0]: expected a string, got 5555",
    ),
    (
        "selector not a list",
        pool(selectors={"drivers": "mlx5_core"}),
        'config.json: configList[0].selectors.drivers: expected an array of strings such as ["mlx5_core"], '
        'got "mlx5_core"',
    ),
    (
        "bad driver",
        pool(selectors={"drivers": [""]}),
        'config.json: configList[0].selectors.drivers[0]: "" is not a kernel driver name such as "mlx5_core"',
    ),
    (
        "bad ifName",
        pool(selectors={"ifNames": ["a-very-long-interface"]}),
        'config.json: configList[0].selectors.ifNames[0]: "a-very-long-interface" is not a network interface '
        "name (1-15 characters, no '/', ':' or spaces) such as \"eth0\"",
    ),
    (
        "bad linkType",
        pool(selectors={"linkTypes": ["roce"]}),
        'config.json: configList[0].selectors.linkTypes[0]: "roce" is not a link type; use "ether" (RoCE, '
        'iWARP, eRDMA) or "infiniband"',
    ),
    (
        "bad allocation",
        pool(allocation="dedicated"),
        'config.json: configList[0].allocation: "dedicated" is not an allocation policy; use "shared" (every '
        'container gets every device of the pool) or "exclusive" (only the devices behind its IDs)',
    ),
]


@pytest.mark.parametrize(("data", "message"), [(d, m) for _, d, m in ERRORS], ids=[n for n, _, _ in ERRORS])
def test_every_invalid_input_is_one_paragraph_naming_the_key_and_the_fix(data: object, message: str) -> None:
    text = data if isinstance(data, str) else json.dumps(data)
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_the_error_names_the_file_it_came_from(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"mode": "sriov", "pfNetdevices": ["eth0", 1]}')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: pfNetdevices[1]: expected a string, got 1"
    assert info.value.key_path == "pfNetdevices[1]"
    assert info.value.source == str(path)


def test_a_mapping_built_in_python_may_use_tuples() -> None:
    """The Pulumi program validates the config it renders before serialising it."""
    config = parse_config(
        {"configList": ({"resourceName": "a", "rdmaHcaMax": 1, "selectors": {"vendors": ("15b3",)}},)}
    )
    assert config.resources[0].selectors.vendors == ("15b3",)
