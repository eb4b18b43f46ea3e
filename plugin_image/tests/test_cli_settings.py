"""Serve options (flag > environment > default) and the one-line-per-event log formats."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from rdma_device_plugin import app, cli
from rdma_device_plugin.log import configure_logging
from rdma_device_plugin.settings import ServeOptions, SettingsError, serve_options

NO_FLAGS: dict[str, str | None] = {}


def test_defaults_are_where_the_daemonset_mounts_things() -> None:
    assert serve_options(NO_FLAGS, {}) == ServeOptions(
        config_path=Path("/k8s-rdma-sriov-dev-plugin/config.json"),
        device_plugin_dir=Path("/var/lib/kubelet/device-plugins"),
        sysfs_root=Path("/sys"),
        dev_root=Path("/dev"),
        log_level="INFO",
        log_format="text",
    )


def test_environment_overrides_defaults_and_flags_override_environment() -> None:
    env = {
        "RDMA_DP_CONFIG": "/etc/rdma/config.json",
        "RDMA_DP_DEVICE_PLUGIN_DIR": "/var/lib/k8s/device-plugins",
        "RDMA_DP_SYSFS_ROOT": "/host/sys",
        "RDMA_DP_DEV_ROOT": "/host/dev",
        "RDMA_DP_LOG_LEVEL": "debug",
        "RDMA_DP_LOG_FORMAT": "json",
    }
    assert serve_options(NO_FLAGS, env) == ServeOptions(
        Path("/etc/rdma/config.json"),
        Path("/var/lib/k8s/device-plugins"),
        Path("/host/sys"),
        Path("/host/dev"),
        "DEBUG",
        "json",
    )
    flags: dict[str, str | None] = {"dev_root": "/dev", "log_format": "text", "sysfs_root": None}
    opts = serve_options(flags, env)
    assert (opts.dev_root, opts.log_format, opts.sysfs_root) == (Path("/dev"), "text", Path("/host/sys"))


def test_invalid_values_name_flag_and_variable() -> None:
    with pytest.raises(SettingsError) as info:
        serve_options({"log_level": "verbose"}, {})
    assert str(info.value) == (
        "--log-level (env RDMA_DP_LOG_LEVEL): 'verbose' is not a log level; use one of DEBUG, INFO, "
        "WARNING, ERROR"
    )


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ServeOptions]]:
    """Record what `serve` hands to app.serve instead of starting servers; restore logging afterwards."""
    calls: list[ServeOptions] = []

    def record(opts: ServeOptions) -> int:
        calls.append(opts)
        return 7

    monkeypatch.setattr(app, "serve", record)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield calls
    root.handlers[:] = handlers
    root.setLevel(level)


def test_serve_is_the_default_command_and_returns_the_apps_status(
    served: list[ServeOptions], tmp_path: Path
) -> None:
    # serve checks that the directories exist before it starts anything.
    plugin_dir, sysfs = tmp_path / "dp", tmp_path / "s"
    (sysfs / "class").mkdir(parents=True)
    plugin_dir.mkdir()
    env = {"RDMA_DP_DEVICE_PLUGIN_DIR": str(plugin_dir)}
    assert cli.main(["--config", "/x.json", "--log-level", "warning"], env) == 7
    assert cli.main(["serve", "--sysfs-root", str(sysfs)], env) == 7
    assert cli.main([], env) == 7
    assert [(o.config_path, o.device_plugin_dir, o.sysfs_root, o.log_level) for o in served] == [
        (Path("/x.json"), plugin_dir, Path("/sys"), "WARNING"),
        (Path("/k8s-rdma-sriov-dev-plugin/config.json"), plugin_dir, sysfs, "INFO"),
        (Path("/k8s-rdma-sriov-dev-plugin/config.json"), plugin_dir, Path("/sys"), "INFO"),
    ]
    assert logging.getLogger().level == logging.INFO


def emit(log_format: str, **extra: object) -> str:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        configure_logging("INFO", "json" if log_format == "json" else "text", stream)
        logger = logging.getLogger("rdma_device_plugin.test")
        logger.debug("not shown")
        logger.info("registered %s", "rdma/hca", extra=extra)
        try:
            raise RuntimeError("boom\nsecond line")
        except RuntimeError:
            logger.exception("failed")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return stream.getvalue()


def test_json_log_is_one_object_per_line_with_extras() -> None:
    first, second = (json.loads(line) for line in emit("json", resource="rdma/hca").splitlines())
    assert {k: first[k] for k in ("level", "logger", "msg", "resource")} == {
        "level": "INFO",
        "logger": "rdma_device_plugin.test",
        "msg": "registered rdma/hca",
        "resource": "rdma/hca",
    }
    assert first["time"].endswith("Z")
    assert second["level"] == "ERROR"
    assert "RuntimeError: boom" in second["exc"]


def test_text_log_keeps_each_event_on_one_line() -> None:
    lines = emit("text", resource="rdma/hca").splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(" INFO rdma_device_plugin.test: registered rdma/hca resource=rdma/hca")
    assert " ERROR rdma_device_plugin.test: failed | Traceback" in lines[1]
    assert "boom\\nsecond line" in lines[1]
