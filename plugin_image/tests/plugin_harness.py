"""A fixture host with a kubelet, and the plugin run against it in-process or as a subprocess through its CLI.

Everything lives under one short directory in /tmp: unix socket paths are limited to 107 bytes, which
pytest's tmp_path can exceed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from kubelet_standin import KubeletStandin
from rdma_device_plugin import app
from rdma_device_plugin.settings import ServeOptions
from sysfs_fixture import SHAPES, FixtureTree

T = TypeVar("T")

PLUGIN_CLI = Path(sys.executable).parent / "rdma-device-plugin"
SCENARIO_TIMEOUT = 20.0
EXIT_TIMEOUT = 5.0


def run(scenario: Callable[[], Awaitable[T]], timeout: float = SCENARIO_TIMEOUT) -> T:
    """Run an async test scenario on a fresh event loop, bounded by `timeout`."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await scenario()

    return asyncio.run(bounded())


def short_tempdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="rdp-", dir="/tmp"))


@dataclass
class Node:
    """A host (fixture sysfs and dev trees), its device-plugin directory, the plugin config, and kubelet."""

    root: Path
    tree: FixtureTree
    plugin_dir: Path
    config_path: Path
    kubelet: KubeletStandin

    def serve_options(self) -> ServeOptions:
        return ServeOptions(
            config_path=self.config_path,
            device_plugin_dir=self.plugin_dir,
            sysfs_root=self.tree.sysfs_root,
            dev_root=self.tree.dev_root,
        )

    def cli_args(self) -> list[str]:
        return [
            "--config",
            str(self.config_path),
            "--device-plugin-dir",
            str(self.plugin_dir),
            "--sysfs-root",
            str(self.tree.sysfs_root),
            "--dev-root",
            str(self.tree.dev_root),
        ]

    def write_config(self, config: Mapping[str, object] | str) -> None:
        self.config_path.write_text(config if isinstance(config, str) else json.dumps(config))


@asynccontextmanager
async def node(shape: str, config: Mapping[str, object] | str) -> AsyncIterator[Node]:
    """A `shape` host from sysfs_fixture.SHAPES with `config` written, and a started kubelet stand-in."""
    root = short_tempdir()
    plugin_dir = root / "dp"
    plugin_dir.mkdir()
    host = Node(
        root, SHAPES[shape](root / "host"), plugin_dir, root / "config.json", KubeletStandin(plugin_dir)
    )
    host.write_config(config)
    await host.kubelet.start()
    try:
        yield host
    finally:
        await host.kubelet.stop()
        shutil.rmtree(root)


@asynccontextmanager
async def plugin_in_process(host: Node) -> AsyncIterator[asyncio.Task[int]]:
    """app.run() on this event loop; on exit it is stopped and must have returned 0."""
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(host.serve_options(), stop), name="plugin")
    try:
        yield task
    finally:
        stop.set()
        status = await asyncio.wait_for(task, EXIT_TIMEOUT)
    assert status == 0


@dataclass
class PluginProcess:
    process: asyncio.subprocess.Process
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()

    async def terminate(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), EXIT_TIMEOUT)


async def start_plugin_process(host: Node, *extra_args: str) -> PluginProcess:
    """`rdma-device-plugin serve` for this host, its stderr (the log) going to a file under the host root."""
    log_path = host.root / "plugin.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            str(PLUGIN_CLI),
            "serve",
            *host.cli_args(),
            *extra_args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
        )
    return PluginProcess(process, log_path)


@asynccontextmanager
async def plugin_subprocess(host: Node, *extra_args: str) -> AsyncIterator[PluginProcess]:
    """The plugin as a real process through its CLI; on exit it gets SIGTERM and must exit 0."""
    plugin = await start_plugin_process(host, *extra_args)
    try:
        yield plugin
    finally:
        status = await plugin.terminate()
    assert status == 0, plugin.log()
