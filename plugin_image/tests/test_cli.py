"""The rdma-device-plugin command, run as a real subprocess the way an operator or the DaemonSet runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from importlib.metadata import version
from pathlib import Path

import pytest
from sysfs_fixture import FixtureTree

MakeTree = Callable[[str], FixtureTree]
COMMAND = str(Path(sys.executable).parent / "rdma-device-plugin")
BASE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def run(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**BASE_ENV, **(env or {})},
    )


def assert_one_paragraph_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith("\n")
    assert result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def roots(tree: FixtureTree) -> list[str]:
    return ["--sysfs-root", str(tree.sysfs_root), "--dev-root", str(tree.dev_root)]


def test_version_is_the_package_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout == f"rdma-device-plugin {version('rdma-device-plugin')}\n"


def test_python_dash_m_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rdma_device_plugin", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, f"rdma-device-plugin {version('rdma-device-plugin')}\n")


@pytest.mark.parametrize(
    ("shape", "names"),
    [
        ("scc_roce_lag", ["mlx5_bond_0"]),
        ("ib_two_numa", ["mlx5_0", "mlx5_1"]),
        ("sriov_cx5", ["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3", "mlx5_4"]),
        ("erdma", ["erdma_0"]),
        ("irdma", ["irdma0"]),
        ("no_rdma", []),
        ("broken", ["mlx5_0"]),
    ],
)
def test_discover_json_lists_every_device(shared_tree: MakeTree, shape: str, names: list[str]) -> None:
    tree = shared_tree(shape)
    result = run("discover", "--json", *roots(tree))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [device["name"] for device in report["devices"]] == names
    assert report["sysfs_root"] == str(tree.sysfs_root)
    assert report["config"] is None
    assert report["pools"] == []
    assert report["rdma_cm"] is (shape != "no_rdma")
    assert report["pyverbs"]["checked"] is False


def test_discover_json_shows_ports_netdevs_char_devices_numa_and_pools(
    shared_tree: MakeTree, tmp_path: Path
) -> None:
    tree = shared_tree("scc_roce_lag")
    config = tmp_path / "config.json"
    config.write_text('{"mode": "hca"}')
    result = run("discover", "--json", *roots(tree), "--config", str(config))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (device,) = report["devices"]
    assert device["netdevs"] == ["eth0", "bond0"]
    assert device["numa_node"] == 0
    assert device["ports"] == [
        {
            "number": 1,
            "state": "ACTIVE",
            "phys_state": "LinkUp",
            "link_layer": "Ethernet",
            "rate": "25 Gb/sec (1X EDR)",
            "netdevs": ["bond0"],
        }
    ]
    assert [(c["kind"], c["name"], c["dev"], c["present"]) for c in device["char_devices"]] == [
        ("uverbs", "uverbs0", "231:192", True),
        ("umad", "umad0", "231:0", True),
    ]
    assert (device["healthy"], device["usable"], device["pools"]) == (True, True, ["rdma/hca"])
    assert report["pools"] == [
        {
            "resource": "rdma/hca",
            "socket": "rdma_hca.sock",
            "description": "1000 IDs over every RDMA device; a container gets every device of the pool",
            "ids": 1000,
            "healthy_ids": 1000,
            "members": ["mlx5_bond_0"],
        }
    ]


def test_discover_text_for_people(shared_tree: MakeTree, tmp_path: Path) -> None:
    tree = shared_tree("broken")
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"configList": [{"resourceName": "roce", "rdmaHcaMax": 8, "selectors": {}}]})
    )
    result = run("discover", *roots(tree), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"RDMA devices under {tree.sysfs_root} (nodes under {tree.dev_root}): 1",
        "mlx5_0  pci 0000:98:00.0  id 15b3:101d  driver mlx5_core  numa 1  type CA  UNHEALTHY",
        "  netdevs: eth2",
        "  port 1: ACTIVE LinkUp  Ethernet  100 Gb/sec (2X HDR)  netdev eth2",
        "  char devices: uverbs0 (231:192, node MISSING), umad0 (231:0), issm0 (231:64)",
        "  pools: rdma/roce",
        "rdma_cm: present",
        f"config: {config}",
        "  rdma/roce: 8 IDs (0 healthy) over mlx5_0; 8 IDs over every RDMA device; a container gets every "
        "device of the pool",
        f"libibverbs: skipped: libibverbs opens /dev/infiniband, not {tree.dev_root}/infiniband",
    ]


def test_discover_on_a_node_without_rdma_exits_0(shared_tree: MakeTree) -> None:
    tree = shared_tree("no_rdma")
    result = run("discover", *roots(tree))
    assert result.returncode == 0
    assert result.stdout.splitlines()[:3] == [
        f"RDMA devices under {tree.sysfs_root} (nodes under {tree.dev_root}): 0",
        "rdma_cm: absent",
        "config: none found; pass --config PATH to see which pool each device lands in",
    ]


def test_discover_reads_roots_and_config_from_the_environment_and_flags_win(
    shared_tree: MakeTree, tmp_path: Path
) -> None:
    ib, erdma = shared_tree("ib_two_numa"), shared_tree("erdma")
    config = tmp_path / "config.json"
    config.write_text('{"mode": "hca"}')
    env = {
        "RDMA_DP_SYSFS_ROOT": str(ib.sysfs_root),
        "RDMA_DP_DEV_ROOT": str(ib.dev_root),
        "RDMA_DP_CONFIG": str(config),
    }
    from_env = json.loads(run("discover", "--json", env=env).stdout)
    assert [d["name"] for d in from_env["devices"]] == ["mlx5_0", "mlx5_1"]
    assert from_env["config"] == str(config)
    from_flags = json.loads(run("discover", "--json", *roots(erdma), env=env).stdout)
    assert [d["name"] for d in from_flags["devices"]] == ["erdma_0"]


def test_discover_with_a_bad_explicit_config_exits_2(shared_tree: MakeTree, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"mode": "hca", "pfNetdevices": ["eth0"]}')
    result = run("discover", *roots(shared_tree("irdma")), "--config", str(config))
    assert_one_paragraph_error(result, f'{config}: pfNetdevices: is used only in "sriov" mode')


def test_check_config_summarises_a_valid_file(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "periodicUpdateInterval": 30,
                "configList": [
                    {
                        "resourceName": "ib",
                        "rdmaHcaMax": 64,
                        "allocation": "exclusive",
                        "selectors": {"linkTypes": ["infiniband"]},
                    },
                    {
                        "resourceName": "roce",
                        "resourcePrefix": "example.com",
                        "rdmaHcaMax": 100,
                        "devices": ["bond0"],
                    },
                ],
            }
        )
    )
    result = run("check-config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{config}: valid (pool format)",
        "rediscovery: every 30 s",
        "rdma/ib on rdma_ib.sock: 64 IDs over link InfiniBand; a container gets the devices behind its IDs",
        "example.com/roce on example.com_roce.sock: 100 IDs over netdev bond0; a container gets every device "
        "of the pool",
    ]


def test_check_config_legacy_sriov(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"mode": "sriov", "pfNetdevices": ["ens2f0", "ens2f1"], "periodicUpdateInterval": 0}')
    result = run("check-config", str(config))
    assert result.stdout.splitlines() == [
        f"{config}: valid (legacy format)",
        "rediscovery: off",
        "rdma/vhca on rdma_vhca.sock: one ID per VF of ens2f0, ens2f1; a container gets its VFs' nodes",
    ]


BAD_FILES = [
    ("bad json", "{mode: hca}", "not valid JSON (line 1, column 2"),
    ("unknown key", '{"mode": "hca", "modes": 1}', 'modes: unknown key; did you mean "mode"?'),
    (
        "wrong type",
        '{"configList": [{"resourceName": "a", "rdmaHcaMax": "9", "selectors": {}}]}',
        "expected a whole",
    ),
    (
        "bad hex id",
        '{"configList": [{"resourceName": "a", "rdmaHcaMax": 9, "selectors": {"deviceIDs": ["0x1017"]}}]}',
        'configList[0].selectors.deviceIDs[0]: "0x1017" is not a 4-digit hex PCI device id such as "1017"',
    ),
    (
        "duplicate name",
        '{"configList": [{"resourceName": "a", "rdmaHcaMax": 1, "selectors": {}}, '
        '{"resourceName": "a", "rdmaHcaMax": 1, "devices": ["ib0"]}]}',
        'configList[1].resourceName: "a" is already used by configList[0]',
    ),
    (
        "both devices and selectors",
        '{"configList": [{"resourceName": "a", "rdmaHcaMax": 1, "selectors": {}, "devices": ["ib0"]}]}',
        'configList[0]: has both "selectors" and "devices"',
    ),
    (
        "neither devices nor selectors",
        '{"configList": [{"resourceName": "a", "rdmaHcaMax": 1}]}',
        'configList[0]: has neither "selectors" nor "devices"',
    ),
    ("unknown mode", '{"mode": "vhca"}', 'mode: "vhca" is not a known mode'),
    (
        "negative rdmaHcaMax",
        '{"configList": [{"resourceName": "a", "rdmaHcaMax": -5, "selectors": {}}]}',
        "configList[0].rdmaHcaMax: -5 is negative",
    ),
    (
        "bad resourceName",
        '{"configList": [{"resourceName": "a.b", "rdmaHcaMax": 1, "selectors": {}}]}',
        'configList[0].resourceName: "a.b" may hold only letters, digits and "_"',
    ),
]


@pytest.mark.parametrize(
    ("text", "fragment"), [(t, f) for _, t, f in BAD_FILES], ids=[n for n, _, _ in BAD_FILES]
)
def test_check_config_rejects_bad_files_with_one_paragraph(tmp_path: Path, text: str, fragment: str) -> None:
    config = tmp_path / "config.json"
    config.write_text(text)
    assert_one_paragraph_error(run("check-config", str(config)), f"rdma-device-plugin: {config}: ", fragment)


def test_check_config_on_an_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.json"
    assert_one_paragraph_error(
        run("check-config", str(missing)),
        f"{missing}: cannot read the config file (No such file or directory)",
    )


def test_serve_with_a_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"mode": "hca", "pfNetdevices": []}')
    result = run("--config", str(config), "--device-plugin-dir", str(tmp_path), "--log-format", "json")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    event = json.loads(line)
    assert event["level"] == "ERROR"
    assert event["msg"].startswith(f'{config}: pfNetdevices: is used only in "sriov" mode')


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["--log-level", "LOUD"], {}, "--log-level (env RDMA_DP_LOG_LEVEL): 'LOUD' is not a log level"),
        (
            [],
            {"RDMA_DP_LOG_FORMAT": "xml"},
            "--log-format (env RDMA_DP_LOG_FORMAT): 'xml' is not a log format",
        ),
        (["--sysfs-root="], {}, "--sysfs-root (env RDMA_DP_SYSFS_ROOT): '' is an empty value"),
        (["--no-such-flag"], {}, "unrecognized arguments: --no-such-flag; see rdma-device-plugin --help"),
        (["discover", "--jsn"], {}, "unrecognized arguments: --jsn"),
        (["check-config"], {}, "the following arguments are required: path"),
    ],
)
def test_bad_flags_and_environment_exit_2_with_one_paragraph(
    args: list[str], env: dict[str, str], fragment: str
) -> None:
    assert_one_paragraph_error(run(*args, env=env), fragment)
