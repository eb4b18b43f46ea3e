"""The serve command's options, their defaults and the environment variables that set them.

Precedence: a command-line flag, else its environment variable (for the DaemonSet), else the default.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rdma_device_plugin.config import DEFAULT_CONFIG_PATH

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
        "HOST:PORT serving /metrics and /healthz; empty disables them",
        may_be_empty=True,
    ),
)
OPTION_BY_DEST = {option.dest: option for option in OPTIONS}


class SettingsError(Exception):
    """An invalid option value; str() is one paragraph naming the flag, its variable and the fix."""


# Longer than any sensible poll, shorter than anything that would look like "health checks are off".
MAX_HEALTH_POLL_INTERVAL = 3600.0
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


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
        device_plugin_dir=Path(values["device_plugin_dir"]),
        sysfs_root=Path(values["sysfs_root"]),
        dev_root=Path(values["dev_root"]),
        log_level=level,
        log_format="json" if log_format == "json" else "text",
        health_poll_interval=_interval(values["health_poll_interval"]),
        metrics_address=_address(values["metrics_address"]) if values["metrics_address"] else None,
    )


def _interval(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= MAX_HEALTH_POLL_INTERVAL:
        raise _error(
            "health_poll_interval",
            value,
            f"not a number of seconds in (0, {MAX_HEALTH_POLL_INTERVAL:g}]; the default 1 reports a port "
            "change to kubelet within about a second",
        )
    return seconds


def _address(value: str) -> MetricsAddress:
    host, sep, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        valid_host = _is_ip(host, version=6)
    else:
        # An unbracketed IPv6 host is what $(HOST_IP):9530 gives on an IPv6 node; the port is mandatory, so
        # the last colon is the separator.
        valid_host = _is_ip(host, version=4) or _is_ip(host, version=6) or _HOSTNAME.match(host) is not None
    port = int(port_text) if port_text.isdigit() else 0
    if not sep or not valid_host or not 0 < port < 65536:
        raise _error(
            "metrics_address",
            value,
            "not HOST:PORT; give an IP address or host name of this node and a port, e.g. 10.0.0.5:9530 or "
            "[fd00::5]:9530 (the DaemonSet passes $(HOST_IP):9530), or an empty value to disable /metrics",
        )
    return MetricsAddress(host, port)


def _is_ip(text: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


def _error(dest: str, value: str, reason: str) -> SettingsError:
    option = OPTION_BY_DEST[dest]
    return SettingsError(f"{option.flag} (env {option.env}): {value!r} is {reason}")
