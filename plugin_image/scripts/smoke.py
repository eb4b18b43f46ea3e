"""Smoke test of the images `make image` built: run them with podman and check what a cluster relies on.

The plugin image runs as the DaemonSet runs it (no network of its own here, every capability dropped, no new
privileges, read-only root filesystem, the device-plugin directory root-owned 0750 as kubelet makes it), on
a fixture host's sysfs and /dev trees, against the kubelet stand-in serving kubelet.sock on this side of the
bind mount: it must register rdma/hca, stream the host's device, answer an Allocate, and exit 0 on SIGTERM.
Also: --version, `discover` on a node without RDMA, the image's metadata and hygiene, and the tools image.

Run by plugin_image/scripts/smoke.sh (`make image-smoke`), which sets PLUGIN_IMAGE, TOOLS_IMAGE and the
podman configuration. Prints one line per check and exits 1 if any failed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubelet_standin import KubeletStandin
from sysfs_fixture import SHAPES

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGIN_IMAGE = os.environ.get("PLUGIN_IMAGE", "")
TOOLS_IMAGE = os.environ.get("TOOLS_IMAGE", "")
RESOURCE = "rdma/hca"
# The Alibaba SCC host: one RoCE LAG device, mlx5_bond_0 on bond0, whose verbs node is uverbs0.
SERVE_SHAPE, SERVE_HCA, SERVE_UVERBS = "scc_roce_lag", "mlx5_bond_0", "/dev/infiniband/uverbs0"
# Where the DaemonSet mounts the device-plugin directory and the ConfigMap (components/k8s_objects.py).
DEVICE_PLUGIN_DIR = "/var/lib/kubelet/device-plugins"
CONFIG_DIR = "/k8s-rdma-sriov-dev-plugin"
# What the DaemonSet's securityContext grants: nothing.
LEAST_PRIVILEGE = ("--cap-drop=ALL", "--security-opt=no-new-privileges", "--read-only")
PODMAN_TIMEOUT = 60.0
REGISTER_TIMEOUT = 30.0
STOP_TIMEOUT = 10


class SmokeFailureError(Exception):
    """A check failed; str() says what was expected and what the image did."""


def podman(*args: str, timeout: float = PODMAN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)


def run_image(image: str, *args: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return podman("run", "--rm", "--network=none", *LEAST_PRIVILEGE, *options, image, *args)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailureError(message)


def expect_exit_0(result: subprocess.CompletedProcess[str], what: str) -> None:
    expect(result.returncode == 0, f"{what} exited {result.returncode}: {result.stderr.strip()}")


@contextmanager
def short_tempdir() -> Iterator[Path]:
    """A directory under /tmp: the unix socket paths in it must stay under 108 bytes."""
    root = Path(tempfile.mkdtemp(prefix="rdp-smoke-", dir="/tmp"))
    try:
        yield root
    finally:
        shutil.rmtree(root)


def plugin_version() -> str:
    with (REPO_ROOT / "plugin_image" / "pyproject.toml").open("rb") as f:
        version: str = tomllib.load(f)["project"]["version"]
    return version


def check_version() -> None:
    result = run_image(PLUGIN_IMAGE, "--version")
    expect_exit_0(result, "rdma-device-plugin --version")
    expected = f"rdma-device-plugin {plugin_version()}"
    expect(
        result.stdout.strip() == expected, f"--version printed {result.stdout.strip()!r}, not {expected!r}"
    )


def check_metadata() -> None:
    inspected = podman("image", "inspect", PLUGIN_IMAGE)
    expect_exit_0(inspected, f"podman image inspect {PLUGIN_IMAGE}")
    config: dict[str, Any] = json.loads(inspected.stdout)[0]["Config"]
    labels: dict[str, str] = config.get("Labels") or {}
    expect(config.get("Entrypoint") == ["rdma-device-plugin"], f"entrypoint is {config.get('Entrypoint')}")
    expect(config.get("User") == "0:0", f"user is {config.get('User')!r}, not the documented 0:0")
    version = labels.get("org.opencontainers.image.version")
    expect(version == plugin_version(), f"label version is {version!r}, pyproject says {plugin_version()!r}")
    revision = labels.get("org.opencontainers.image.revision", "")
    known = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "cat-file", "-e", f"{revision}^{{commit}}"], check=False
    )
    expect(
        re.fullmatch(r"[0-9a-f]{40}", revision) is not None and known.returncode == 0,
        f"label revision {revision!r} is not a commit of this repository",
    )
    expect(
        "org.opencontainers.image.source" in labels, "the org.opencontainers.image.source label is missing"
    )


def check_hygiene() -> None:
    """No package-manager caches, bytecode caches or build tooling in the plugin image."""
    # Inspection, not the plugin: with all capabilities root could not read apt's 0700 directories.
    leftovers = podman(
        "run",
        "--rm",
        "--network=none",
        "--entrypoint=sh",
        PLUGIN_IMAGE,
        "-c",
        "set -e; find /var/lib/apt/lists /var/cache/apt -type f ! -name lock;"
        " find / -xdev \\( -name __pycache__ -o -name .cache -o -name setuptools -o -path '*/bin/pip*' \\)"
        " -print;"
        " command -v gcc cc make || true",
    )
    expect_exit_0(leftovers, "the hygiene probe")
    found = leftovers.stdout.split()
    expect(not found, f"the plugin image carries caches or build tools: {', '.join(found)}")


def discover_json(*args: str, options: tuple[str, ...] = ()) -> dict[str, Any]:
    result = run_image(PLUGIN_IMAGE, "discover", "--json", *args, options=options)
    expect_exit_0(result, f"discover --json {' '.join(args)}")
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def check_discover_no_rdma() -> None:
    with short_tempdir() as root:
        tree = SHAPES["no_rdma"](root / "host")
        found = discover_json(
            "--sysfs-root=/host/sys",
            "--dev-root=/host/dev",
            options=(f"--volume={tree.sysfs_root}:/host/sys:ro", f"--volume={tree.dev_root}:/host/dev:ro"),
        )
    expect(found["devices"] == [], f"discover on a host without RDMA found {found['devices']}")


def check_discover_this_host() -> None:
    """This machine has no RDMA: zero devices, and libibverbs (Debian's pyverbs in the venv) agrees."""
    found = discover_json()
    verbs = found["pyverbs"]
    expect(found["devices"] == [], f"discover on this host (no RDMA) found {found['devices']}")
    expect(verbs["checked"] and verbs["devices"] == [], f"pyverbs did not list devices in the image: {verbs}")


async def serve_scenario(root: Path, log_path: Path) -> tuple[int, str]:
    """The plugin container against the kubelet stand-in; returns its exit status and what it did."""
    tree = SHAPES[SERVE_SHAPE](root / "host")
    plugin_dir, config_dir = root / "dp", root / "config"
    plugin_dir.mkdir(mode=0o750)
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({"mode": "hca"}))
    kubelet = KubeletStandin(plugin_dir)
    await kubelet.start()
    name = f"rdma-smoke-{os.getpid()}"
    with log_path.open("wb") as log:
        container = await asyncio.create_subprocess_exec(
            "podman",
            "run",
            "--rm",
            f"--name={name}",
            "--network=none",
            *LEAST_PRIVILEGE,
            f"--volume={plugin_dir}:{DEVICE_PLUGIN_DIR}",
            f"--volume={config_dir}:{CONFIG_DIR}:ro",
            f"--volume={tree.sysfs_root}:/host/sys:ro",
            f"--volume={tree.dev_root}:/host/dev:ro",
            "--env=RDMA_DP_SYSFS_ROOT=/host/sys",
            "--env=RDMA_DP_DEV_ROOT=/host/dev",
            PLUGIN_IMAGE,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    finding = ""
    try:
        endpoint = await kubelet.wait_registered(RESOURCE, timeout=REGISTER_TIMEOUT)
        devices = await endpoint.next_update()
        healthy = [device.ID for device in devices if device.health == "Healthy"]
        expect(bool(healthy) and len(healthy) == len(devices), f"ListAndWatch sent {devices}")
        response = await endpoint.allocate([healthy[0]])
        (allocated,) = response.container_responses
        host_paths = [device.host_path for device in allocated.devices]
        expect(SERVE_UVERBS in host_paths, f"Allocate gave device nodes {host_paths}, without {SERVE_UVERBS}")
        rdma_devices = allocated.envs.get("RDMA_DEVICES")
        expect(rdma_devices == SERVE_HCA, f"Allocate set RDMA_DEVICES={rdma_devices!r}, not {SERVE_HCA!r}")
        finding = (
            f"{len(devices)} IDs streamed, Allocate({healthy[0]}) -> {host_paths}, {dict(allocated.envs)}"
        )
    finally:
        # podman stop sends SIGTERM (the kubelet's way of ending a pod), then SIGKILL after STOP_TIMEOUT.
        await asyncio.to_thread(podman, "stop", f"--time={STOP_TIMEOUT}", name)
        status = await asyncio.wait_for(container.wait(), STOP_TIMEOUT + PODMAN_TIMEOUT)
        await kubelet.stop()
    return status, finding


def check_serve() -> str:
    with short_tempdir() as root:
        log_path = root / "plugin.log"
        try:
            status, finding = asyncio.run(serve_scenario(root, log_path))
        except (SmokeFailureError, TimeoutError) as error:
            raise SmokeFailureError(
                f"{error or 'timed out'}; the plugin's log:\n{log_path.read_text()}"
            ) from error
        expect(status == 0, f"the plugin exited {status} on SIGTERM; its log:\n{log_path.read_text()}")
    return finding


def check_tools() -> None:
    result = run_image(TOOLS_IMAGE, "ib_read_bw", "--help")
    # perftest prints its usage and exits 1 on --help; a missing binary or library exits 127 or crashes.
    expect(
        result.returncode in (0, 1) and "Usage:" in result.stdout and "ib_read_bw" in result.stdout,
        f"ib_read_bw --help exited {result.returncode}: {(result.stdout + result.stderr)[:300]!r}",
    )
    tools = (
        "ib_write_bw",
        "ib_read_lat",
        "ib_write_lat",
        "ibv_devinfo",
        "ibv_devices",
        "rping",
        "ip",
        "rdma",
    )
    found = run_image(TOOLS_IMAGE, "sh", "-c", f"for t in {' '.join(tools)}; do command -v $t; done")
    missing = [tool for tool in tools if not re.search(rf"/{tool}$", found.stdout, re.MULTILINE)]
    expect(not missing, f"the tools image lacks {', '.join(missing)}")


CHECKS: tuple[tuple[str, Callable[[], str | None]], ...] = (
    ("plugin --version", check_version),
    ("plugin image metadata", check_metadata),
    ("plugin image hygiene", check_hygiene),
    ("discover, fixture host without RDMA", check_discover_no_rdma),
    ("discover, this host (no RDMA), pyverbs", check_discover_this_host),
    ("serve: register, ListAndWatch, Allocate, SIGTERM", check_serve),
    ("tools image: perftest and friends", check_tools),
)


def main() -> int:
    if not PLUGIN_IMAGE or not TOOLS_IMAGE:
        print(
            "smoke: PLUGIN_IMAGE and TOOLS_IMAGE must name the images; run it through smoke.sh",
            file=sys.stderr,
        )
        return 2
    passed = failed = 0
    for name, check in CHECKS:
        started = time.monotonic()
        try:
            detail = check()
        except (SmokeFailureError, subprocess.TimeoutExpired) as error:
            failed += 1
            print(f"FAIL {name} ({time.monotonic() - started:.1f} s): {error}", flush=True)
            continue
        passed += 1
        print(
            f"ok   {name} ({time.monotonic() - started:.1f} s){f': {detail}' if detail else ''}", flush=True
        )
    print(f"smoke: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
