"""Bad input to the real command (check-config, discover, serve) and to a running plugin (SIGHUP): exit 2 with
one paragraph naming the flag or key and the fix, promptly; never a traceback, a hang or silent acceptance."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from lifecycle_harness import until
from plugin_harness import node, plugin_subprocess, run, short_tempdir
from sysfs_fixture import FixtureTree, ib_two_numa
from test_cli import BASE_ENV, COMMAND, assert_one_paragraph_error

# A prompt refusal; a hang is caught by the subprocess timeout instead of blocking the suite.
PROMPT = 20


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args], capture_output=True, text=True, timeout=PROMPT, check=False, env=BASE_ENV
    )


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> FixtureTree:
    return ib_two_numa(tmp_path_factory.mktemp("host"))


@pytest.fixture
def plugin_dir() -> Iterator[Path]:
    path = short_tempdir()
    yield path
    for entry in path.iterdir():
        entry.unlink()
    path.rmdir()


def serve(host: FixtureTree, plugin_dir: Path, config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli(
        "serve",
        "--config", str(config),
        "--device-plugin-dir", str(plugin_dir),
        "--sysfs-root", str(host.sysfs_root),
        "--dev-root", str(host.dev_root),
        *extra,
    )  # fmt: skip


def good_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text('{"mode": "hca"}')
    return path


# -- the config file -----------------------------------------------------------------------------------


def test_a_fifo_config_is_refused_at_once_by_check_config_and_serve(
    host: FixtureTree, plugin_dir: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    reason = f"{fifo}: cannot read the config file (a FIFO, not a regular file)"
    assert_one_paragraph_error(cli("check-config", str(fifo)), reason)
    result = serve(host, plugin_dir, fifo)
    assert result.returncode == 2, result
    assert reason in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_a_deeply_nested_config_is_refused_by_check_config_and_serve(
    host: FixtureTree, plugin_dir: Path, tmp_path: Path, depth: int
) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"mode": "hca", "x": ' + "[" * depth + "]" * depth + "}")
    assert_one_paragraph_error(cli("check-config", str(path)), f"rdma-device-plugin: {path}: ")
    result = serve(host, plugin_dir, path)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert ("nested more than 16 levels" in result.stderr) or ("larger than 64 KiB" in result.stderr)


def test_a_config_that_is_not_utf8_says_so_with_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b'{"mode": "hca", "pfNetdevices": ["eth\xb00"]}')
    result = cli("check-config", str(path))
    assert_one_paragraph_error(result, "it is not UTF-8 (byte 0xb0 at offset 37")
    assert "ConfigMap" not in result.stderr


def test_duplicate_pf_netdevices_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"mode": "sriov", "pfNetdevices": ["ens2f0", "ens2f0"]}')
    assert_one_paragraph_error(
        cli("check-config", str(path)), 'pfNetdevices[1]: "ens2f0" is already listed at pfNetdevices[0]'
    )


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e-9", "1e999"])
def test_a_rediscovery_interval_that_would_turn_it_off_or_spin_is_refused(tmp_path: Path, value: str) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"mode": "hca", "periodicUpdateInterval": ' + value + "}")
    assert_one_paragraph_error(cli("check-config", str(path)), "periodicUpdateInterval: ")


@pytest.mark.parametrize("value", ["200000", "1e9", "1e20"])
def test_rdma_hca_max_beyond_the_bound_is_refused(tmp_path: Path, value: str) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"configList": [{"resourceName": "a", "rdmaHcaMax": ' + value + ', "selectors": {}}]}')
    assert_one_paragraph_error(
        cli("check-config", str(path)), "configList[0].rdmaHcaMax: ", "more IDs than one pool may advertise"
    )


# -- flags ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1e-9", "nan", "inf", "-inf"])
def test_health_poll_intervals_that_spin_or_stop_are_refused(
    host: FixtureTree, plugin_dir: Path, tmp_path: Path, value: str
) -> None:
    result = serve(host, plugin_dir, good_config(tmp_path), f"--health-poll-interval={value}")
    assert_one_paragraph_error(
        result, f"--health-poll-interval (env RDMA_DP_HEALTH_POLL_INTERVAL): {value!r}"
    )


@pytest.mark.parametrize("flag", ["--sysfs-root", "--dev-root"])
@pytest.mark.parametrize("kind", ["missing", "file"])
@pytest.mark.parametrize("command", ["discover", "serve"])
def test_a_root_that_is_missing_or_a_file_is_refused(
    host: FixtureTree, plugin_dir: Path, tmp_path: Path, flag: str, kind: str, command: str
) -> None:
    bad = tmp_path / "bad"
    if kind == "file":
        bad.write_text("")
    if command == "discover":
        roots = {"--sysfs-root": str(host.sysfs_root), "--dev-root": str(host.dev_root), flag: str(bad)}
        result = cli("discover", *[item for pair in roots.items() for item in pair])
    else:
        result = serve(host, plugin_dir, good_config(tmp_path), flag, str(bad))
    state = "does not exist" if kind == "missing" else "is not a directory"
    assert_one_paragraph_error(result, f"{flag} (env ", f"{str(bad)!r} is a path that {state}")


def test_a_directory_that_is_not_sysfs_is_refused(tmp_path: Path) -> None:
    result = cli("discover", "--sysfs-root", str(tmp_path), "--dev-root", str(tmp_path))
    assert_one_paragraph_error(result, "not a sysfs tree (it has no class/ directory)")


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_device_plugin_dir_that_is_missing_or_a_file_exits_2(
    host: FixtureTree, tmp_path: Path, kind: str
) -> None:
    bad = tmp_path / "dp"
    if kind == "file":
        bad.write_text("")
    result = serve(host, bad, good_config(tmp_path))
    assert_one_paragraph_error(result, "--device-plugin-dir (env RDMA_DP_DEVICE_PLUGIN_DIR): ")


def test_a_device_plugin_dir_too_long_for_unix_sockets_exits_2(host: FixtureTree, tmp_path: Path) -> None:
    deep = Path("/tmp") / ("d" * 100)
    result = serve(host, deep, good_config(tmp_path))
    assert_one_paragraph_error(
        result, "too long a directory for unix sockets: ", "over the 107 a unix socket path may have"
    )


def test_a_resource_whose_socket_path_is_too_long_exits_2(
    host: FixtureTree, plugin_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "config.json"
    name = "r" * 63
    path.write_text(
        json.dumps(
            {
                "configList": [
                    {"resourceName": name, "resourcePrefix": "a" * 40, "rdmaHcaMax": 1, "selectors": {}}
                ]
            }
        )
    )
    result = serve(host, plugin_dir, path)
    assert result.returncode == 2, result
    assert "configList[0].resourceName: the resource's socket path is too long" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(plugin_dir.iterdir()) == []


@pytest.mark.parametrize("address", ["999.1.1.1:9530", "no-such-host.invalid:9530", "localhost:9530"])
def test_metrics_addresses_that_are_not_ip_literals_exit_2(
    host: FixtureTree, plugin_dir: Path, tmp_path: Path, address: str
) -> None:
    result = serve(host, plugin_dir, good_config(tmp_path), "--metrics-address", address)
    assert_one_paragraph_error(result, f"{address!r} is not IP:PORT", "(a literal, not a host name)")


def test_a_metrics_address_of_another_host_exits_2(
    host: FixtureTree, plugin_dir: Path, tmp_path: Path
) -> None:
    # TEST-NET-1 (RFC 5737): never an address of this machine.
    result = serve(host, plugin_dir, good_config(tmp_path), "--metrics-address", "192.0.2.1:9530")
    assert_one_paragraph_error(
        result, "cannot serve /metrics and /healthz on 192.0.2.1:9530", "give an address of this node"
    )


def test_a_metrics_port_in_use_exits_2(host: FixtureTree, plugin_dir: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(host, plugin_dir, good_config(tmp_path), "--metrics-address", f"127.0.0.1:{port}")
    assert_one_paragraph_error(result, f"127.0.0.1:{port}", "another process listens on that port")


# -- SIGHUP ----------------------------------------------------------------------------------------------


DEEP = "[" * 1000 + "]" * 1000
HOSTILE_CONFIGS = {
    "nested array": ('{"mode": "hca", "x": ' + DEEP + "}", "nested more than 16 levels"),
    "nested in selectors": (
        '{"configList": [{"resourceName": "a", "rdmaHcaMax": 1, "selectors": {"vendors": ' + DEEP + "}}]}",
        "nested more than 16 levels",
    ),
    "10 MB value": ('{"mode": "' + "y" * 10_000_000 + '"}', "the file is larger than 64 KiB"),
}


def test_a_10_mb_value_is_refused_quickly_with_a_short_message(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(HOSTILE_CONFIGS["10 MB value"][0])
    result = cli("check-config", str(path))
    assert_one_paragraph_error(result, "the file is larger than 64 KiB")
    assert len(result.stderr) < 400


@pytest.mark.parametrize("name", list(HOSTILE_CONFIGS))
def test_sighup_with_a_hostile_config_keeps_serving_the_old_one_and_logs_one_short_line(name: str) -> None:
    text, reason = HOSTILE_CONFIGS[name]

    async def scenario() -> None:
        async with node("ib_two_numa", {"mode": "hca"}) as host, plugin_subprocess(host) as plugin:
            endpoint = await host.kubelet.wait_registered("rdma/hca", timeout=10)
            assert len(await endpoint.next_update()) == 1000
            host.write_config(text)
            plugin.process.send_signal(signal.SIGHUP)
            await until(lambda: "reload refused" in plugin.log(), what="the refusal")
            (refusal,) = [line for line in plugin.log().splitlines() if "reload refused" in line]
            assert reason in refusal
            assert len(refusal) < 600
            assert plugin.process.returncode is None
            assert not endpoint.stream_ended.is_set()
            (container,) = (await endpoint.allocate(["7"])).container_responses
            assert dict(container.envs) == {"RDMA_DEVICES": "mlx5_0,mlx5_1"}
            assert "Traceback" not in plugin.log()

    run(scenario)
