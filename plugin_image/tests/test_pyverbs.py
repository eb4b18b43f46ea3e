"""The pyverbs backend against the real libibverbs on the fixture trees, and its agreement with sysfs.

libibverbs lists a device only when its uverbs node is a character device with the major:minor sysfs
announces, under the real /dev/infiniband. Each run therefore happens in a private mount namespace
(``unshare -m``) with a tmpfs over /dev holding mknod'ed nodes, never touching the host's /dev, and with
SYSFS_PATH pointing libibverbs at the fixture. Debian's python3-pyverbs is built for the system Python, so
the child runs /usr/bin/python3 with this package on its path.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from rdma_device_plugin.discovery import CharDevice, Hca, discover
from rdma_device_plugin.pyverbs_backend import VerbsDevice, cross_check, format_guid, list_devices
from sysfs_fixture import SHAPES, FixtureTree

MakeTree = Callable[[str], FixtureTree]
SYSTEM_PYTHON = "/usr/bin/python3"
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def _missing_package() -> str | None:
    """What `make test` should have installed (scripts/system-packages.txt) but is not here."""
    if shutil.which("unshare") is None or not Path(SYSTEM_PYTHON).exists():
        return "unshare (util-linux) or /usr/bin/python3 is missing"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import pyverbs.device"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        return f"/usr/bin/python3 cannot import pyverbs ({' '.join(probe.stderr.strip().splitlines()[-1:])})"
    return None


MISSING_PACKAGE = _missing_package()
T = TypeVar("T", bound=Callable[..., None])


def needs_libibverbs(test: T) -> T:
    """A test against the real libibverbs: fails, never skips, when a package it needs is missing, since
    `make test` installs them. Only root can mknod device nodes, even in a namespace of its own."""

    @functools.wraps(test)
    def checked(*args: Any, **kwargs: Any) -> None:
        if MISSING_PACKAGE is not None:
            pytest.fail(
                f"{MISSING_PACKAGE}: install the packages of group test in scripts/system-packages.txt "
                "(`make test` does it as root, and prints the apt-get line otherwise)"
            )
        if os.geteuid() != 0:
            pytest.skip("needs root: mknod of the uverbs device nodes in a private mount namespace")
        test(*args, **kwargs)

    return cast(T, checked)


def run_in_namespace(tree: FixtureTree, *command: str) -> subprocess.CompletedProcess[str]:
    """Run command with a fresh /dev holding the fixture's present uverbs nodes as real char devices."""
    mknods = [
        f"mknod /dev/infiniband/{name} c {major} {minor}"
        for name, major, minor in tree.char_nodes()
        if (tree.dev_root / "infiniband" / name).exists() and name.startswith("uverbs")
    ]
    script = " && ".join(
        [
            "mount -t tmpfs -o mode=755 tmpfs /dev",
            "mkdir /dev/infiniband",
            "mknod -m 666 /dev/null c 1 3",
            *mknods,
            "exec " + shlex.join(command),
        ]
    )
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PYTHONPATH": str(PACKAGE_DIR), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )


LIST_SCRIPT = """
import json, sys
from dataclasses import asdict
from pathlib import Path
from rdma_device_plugin.pyverbs_backend import list_devices
print(json.dumps([asdict(device) for device in list_devices(Path(sys.argv[1]))]))
"""


def verbs_devices(tree: FixtureTree) -> list[VerbsDevice]:
    result = run_in_namespace(tree, SYSTEM_PYTHON, "-c", LIST_SCRIPT, str(tree.sysfs_root))
    assert result.returncode == 0, result.stderr
    return [VerbsDevice(**device) for device in json.loads(result.stdout)]


EXPECTED_NAMES = {
    "scc_roce_lag": ["mlx5_bond_0"],
    "ib_two_numa": ["mlx5_0", "mlx5_1"],
    "sriov_cx5": ["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3", "mlx5_4"],
    "erdma": ["erdma_0"],
    "erdma_two": ["erdma_0", "erdma_1"],
    "erdma_compat": ["erdma_0"],
    "erdma_compat_umad": ["erdma_0"],
    "erdma_compat_two": ["erdma_0", "erdma_1"],
    "irdma": ["irdma0"],
    "no_rdma": [],
    "broken": [],  # its uverbs node is missing, so libibverbs skips it
}


def test_every_shape_has_an_expectation() -> None:
    assert set(EXPECTED_NAMES) == set(SHAPES)


@needs_libibverbs
@pytest.mark.parametrize("shape", sorted(EXPECTED_NAMES))
def test_libibverbs_and_sysfs_discovery_agree(shared_tree: MakeTree, shape: str) -> None:
    tree = shared_tree(shape)
    devices = verbs_devices(tree)
    assert [device.name for device in devices] == EXPECTED_NAMES[shape]
    hcas = discover(tree.sysfs_root, tree.dev_root)
    assert cross_check(hcas, devices) == []
    by_name = {hca.name: hca for hca in hcas}
    for device in devices:
        assert (device.node_type, device.node_guid) == (
            by_name[device.name].node_type,
            by_name[device.name].node_guid,
        )


@needs_libibverbs
def test_the_cross_check_names_a_device_libibverbs_cannot_see(make_tree: MakeTree) -> None:
    tree = make_tree("ib_two_numa")
    devices = verbs_devices(tree)
    tree.remove_hca("mlx5_1")  # sysfs now lacks it, libibverbs listed it a moment ago
    assert cross_check(discover(tree.sysfs_root, tree.dev_root), devices) == [
        "mlx5_1: libibverbs lists it but sysfs discovery does not"
    ]


@needs_libibverbs
def test_discover_command_reports_libibverbs_agreement(shared_tree: MakeTree) -> None:
    tree = shared_tree("ib_two_numa")
    result = run_in_namespace(
        tree,
        SYSTEM_PYTHON,
        "-m",
        "rdma_device_plugin",
        "discover",
        "--json",
        "--sysfs-root",
        str(tree.sysfs_root),
        "--dev-root",
        "/dev",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["pyverbs"] == {
        "checked": True,
        "note": "",
        "devices": ["mlx5_0", "mlx5_1"],
        "mismatches": [],
    }
    assert [device["name"] for device in report["devices"]] == ["mlx5_0", "mlx5_1"]


def test_list_devices_is_none_without_pyverbs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyverbs", None)
    monkeypatch.setitem(sys.modules, "pyverbs.device", None)
    assert list_devices() is None


def hca(name: str, *, present: bool = True, guid: str = "0000:0000:0000:0001") -> Hca:
    uverbs = CharDevice("uverbs", "uverbs0", "231:192", present)
    return Hca(
        name,
        "0000:01:00.0",
        "15b3",
        "101b",
        "mlx5_core",
        0,
        (),
        (),
        (uverbs,),
        node_type="CA",
        node_guid=guid,
    )


def test_cross_check_describes_each_disagreement() -> None:
    hcas = [
        hca("mlx5_0"),
        hca("mlx5_1"),
        hca("mlx5_2", present=False),
        hca("mlx5_3", guid="0000:0000:0000:0003"),
    ]
    devices = [
        VerbsDevice("mlx5_0", "CA", "0000:0000:0000:0001"),
        VerbsDevice("mlx5_3", "RNIC", "0000:0000:0000:0004"),
        VerbsDevice("rxe0", "CA", "0000:0000:0000:0009"),
    ]
    assert cross_check(hcas, devices) == [
        "mlx5_1: sysfs shows it with its uverbs node but libibverbs does not list it (no user-space provider "
        "for PCI id 15b3:101b?)",
        "mlx5_3: sysfs says node type CA, GUID 0000:0000:0000:0003; libibverbs says RNIC, "
        "0000:0000:0000:0004",
        "rxe0: libibverbs lists it but sysfs discovery does not",
    ]


def test_format_guid_matches_sysfs() -> None:
    assert format_guid(0x248A070300B48D2C) == "248a:0703:00b4:8d2c"
    assert format_guid(1) == "0000:0000:0000:0001"
