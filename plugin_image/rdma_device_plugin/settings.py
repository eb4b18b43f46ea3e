"""The serve command's options, their defaults and the environment variables that set them.

Precedence: a command-line flag, else its environment variable (for the DaemonSet), else the default.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rdma_device_plugin.config import DEFAULT_CONFIG_PATH, socket_path_problem
from rdma_device_plugin.text import shorten

LogFormat = Literal["text", "json"]
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")


@dataclass(frozen=True)
class Option:
    """One serve option: its flag, its environment variable, its default."""

    dest: str
    flag: str
    env: str
    default: str
    help: str
    may_be_empty: bool = False


OPTIONS = (
    Option("config_path", "--config", "RDMA_DP_CONFIG", str(DEFAULT_CONFIG_PATH), "plugin config (JSON)"),
    Option(
        "device_plugin_dir",
        "--device-plugin-dir",
        "RDMA_DP_DEVICE_PLUGIN_DIR",
        "/var/lib/kubelet/device-plugins",
        "kubelet's device-plugin directory (holds kubelet.sock)",
    ),
    Option("sysfs_root", "--sysfs-root", "RDMA_DP_SYSFS_ROOT", "/sys", "where the host's sysfs is mounted"),
    Option("dev_root", "--dev-root", "RDMA_DP_DEV_ROOT", "/dev", "where the host's /dev is mounted"),
    Option("log_level", "--log-level", "RDMA_DP_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR"),
    Option("log_format", "--log-format", "RDMA_DP_LOG_FORMAT", "text", "text or json (one line per event)"),
    Option(
        "health_poll_interval",
        "--health-poll-interval",
        "RDMA_DP_HEALTH_POLL_INTERVAL",
        "1",
        "seconds between reads of the ports' state files",
    ),
    Option(
        "metrics_address",
        "--metrics-address",
        "RDMA_DP_METRICS_ADDRESS",
        "",
        "IP:PORT (a literal address) serving /metrics and /healthz; empty disables them",
        may_be_empty=True,
    ),
)
OPTION_BY_DEST = {option.dest: option for option in OPTIONS}


class SettingsError(Exception):
    """An invalid option value; str() is one paragraph naming the flag, its variable and the fix."""


# Longer than any sensible poll, shorter than anything that would look like "health checks are off".
MAX_HEALTH_POLL_INTERVAL = 3600.0
# A poll reads two small files per port: 20 polls a second stay far below a percent of a core.
MIN_HEALTH_POLL_INTERVAL = 0.05
KUBELET_SOCKET = "kubelet.sock"
# Echoed values are cut to this many characters.
SHOWN_CHARS = 200


@dataclass(frozen=True)
class MetricsAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ServeOptions:
    config_path: Path
    device_plugin_dir: Path
    sysfs_root: Path
    dev_root: Path
    log_level: str = "INFO"
    log_format: LogFormat = "text"
    health_poll_interval: float = 1.0
    metrics_address: MetricsAddress | None = None
    """None: no /metrics and /healthz endpoint."""


def resolve(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> dict[str, str]:
    """Each option's value by precedence: flag, environment variable, default."""
    values = {}
    for option in OPTIONS:
        flag_value = flags.get(option.dest)
        values[option.dest] = (
            flag_value if flag_value is not None else environ.get(option.env, option.default)
        )
    return values


def serve_options(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> ServeOptions:
    """Validated ServeOptions from parsed flags (None when not given) and the environment."""
    values = resolve(flags, environ)
    for dest, value in values.items():
        if not value and not OPTION_BY_DEST[dest].may_be_empty:
            raise _error(dest, value, "an empty value; give a value or drop the setting to use the default")
    level = values["log_level"].upper()
    if level not in LOG_LEVELS:
        raise _error("log_level", values["log_level"], f"not a log level; use one of {', '.join(LOG_LEVELS)}")
    log_format = values["log_format"]
    if log_format not in LOG_FORMATS:
        raise _error("log_format", log_format, 'not a log format; use "text" or "json"')
    return ServeOptions(
        config_path=Path(values["config_path"]),
        device_plugin_dir=_socket_dir(values["device_plugin_dir"]),
        sysfs_root=Path(values["sysfs_root"]),
        dev_root=Path(values["dev_root"]),
        log_level=level,
        log_format="json" if log_format == "json" else "text",
        health_poll_interval=_interval(values["health_poll_interval"]),
        metrics_address=_address(values["metrics_address"]) if values["metrics_address"] else None,
    )


def check_host(opts: ServeOptions) -> None:
    """What serve needs from this host, checked before anything starts: the directories exist. (The metrics
    address is checked by binding it, the first thing serve does.)"""
    host_roots({"sysfs_root": str(opts.sysfs_root), "dev_root": str(opts.dev_root)})
    _directory(
        "device_plugin_dir",
        str(opts.device_plugin_dir),
        "kubelet's device plugins (holding kubelet.sock), e.g. /var/lib/kubelet/device-plugins",
    )


def host_roots(values: Mapping[str, str]) -> tuple[Path, Path]:
    """--sysfs-root and --dev-root from resolved values: existing directories, sysfs with its class/ tree.
    A wrong root would otherwise read as a node without RDMA devices."""
    sysfs_root = _directory("sysfs_root", values["sysfs_root"], "the host's sysfs, e.g. /sys")
    if not (sysfs_root / "class").is_dir():
        raise _error(
            "sysfs_root",
            values["sysfs_root"],
            "not a sysfs tree (it has no class/ directory); give where the host's /sys is mounted, e.g. /sys",
        )
    dev_root = _directory("dev_root", values["dev_root"], "the host's /dev, e.g. /dev")
    return sysfs_root, dev_root


def _directory(dest: str, value: str, what: str) -> Path:
    path = Path(value)
    try:
        is_dir = path.is_dir()
    except OSError:
        is_dir = False
    if not is_dir:
        state = "does not exist" if not os.path.lexists(path) else "is not a directory"
        raise _error(dest, value, f"a path that {state}; give the directory of {what}")
    return path


def _socket_dir(value: str) -> Path:
    path = Path(value)
    problem = socket_path_problem(path / KUBELET_SOCKET)
    if problem:
        raise _error(
            "device_plugin_dir",
            value,
            f"too long a directory for unix sockets: {problem}; mount the directory at a shorter path",
        )
    return path


def _interval(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not MIN_HEALTH_POLL_INTERVAL <= seconds <= MAX_HEALTH_POLL_INTERVAL:
        raise _error(
            "health_poll_interval",
            value,
            f"not a number of seconds in [{MIN_HEALTH_POLL_INTERVAL:g}, {MAX_HEALTH_POLL_INTERVAL:g}]; the "
            "default 1 reports a port change to kubelet within about a second",
        )
    return seconds


def _address(value: str) -> MetricsAddress:
    host, sep, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        valid_host = _is_ip(host, version=6)
    else:
        # An unbracketed IPv6 host is what $(HOST_IP):9530 gives on an IPv6 node; the port is mandatory, so
        # the last colon is the separator. Names are refused: resolving one at start would send a DNS query
        # and make the plugin's start depend on a resolver.
        valid_host = _is_ip(host, version=4) or _is_ip(host, version=6)
    port = int(port_text) if port_text.isdigit() and len(port_text) <= 5 else 0
    if not sep or not valid_host or not 0 < port < 65536:
        raise _error(
            "metrics_address",
            value,
            "not IP:PORT; give this node's IP address (a literal, not a host name) and a port, e.g. "
            "10.0.0.5:9530 or [fd00::5]:9530 (the DaemonSet passes $(HOST_IP):9530), or an empty value to "
            "disable /metrics",
        )
    return MetricsAddress(host, port)


def _is_ip(text: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


def _shown(value: str) -> str:
    return repr(shorten(value, SHOWN_CHARS))


def _error(dest: str, value: str, reason: str) -> SettingsError:
    option = OPTION_BY_DEST[dest]
    return SettingsError(f"{option.flag} (env {option.env}): {_shown(value)} is {reason}")
