"""The plugin's configuration: both formats users already have, validated into one model.

Legacy format (Mellanox k8s-rdma-sriov-dev-plugin, as in Alibaba's RDMA walkthrough)::

    {"mode": "hca"}
        resource rdma/hca: 1000 shareable IDs spread over every RDMA device of the node; a container gets
        every device.
    {"mode": "sriov", "pfNetdevices": ["eth0", "eth1"]}
        resource rdma/vhca: one ID per SR-IOV VF (its PCI address) of the listed PFs; a container gets the
        character devices of the VFs behind its IDs only.

Pool format (Mellanox k8s-rdma-shared-dev-plugin)::

    {"periodicUpdateInterval": 60,
     "configList": [{"resourceName": "hca_shared_a", "resourcePrefix": "rdma", "rdmaHcaMax": 1000,
                     "selectors": {"vendors": ["15b3"], "deviceIDs": [], "drivers": [], "ifNames": [],
                                   "linkTypes": []},
                     "allocation": "shared"}]}

    One resource ``<resourcePrefix>/<resourceName>`` per entry, served on its own socket. ``resourceName``
    matches ``^[a-zA-Z0-9_]+$`` and is unique; ``resourcePrefix`` defaults to ``rdma``; ``rdmaHcaMax``
    (>= 0) IDs are spread over the matching devices. Exactly one of ``selectors`` (OR within a list, AND
    across lists, an empty list imposes nothing) and ``devices`` (netdev names; the older spelling of
    ``ifNames``) is required. ``linkTypes`` takes ``ether`` or ``infiniband``; ``vendors``/``deviceIDs``
    are 4-digit hex such as ``15b3``.

    ``allocation`` is this plugin's own per-pool option:
      ``"shared"`` (default): every container of the pool gets every device of the pool, whatever IDs kubelet
        picked -- what users of both Mellanox plugins rely on for multi-rail.
      ``"exclusive"``: a container gets only the devices behind the IDs it was given, so asking for N IDs
        yields up to N devices (the preferred allocation spreads them over distinct devices).

``periodicUpdateInterval`` (seconds, default 60, 0 disables) is accepted in both formats and sets how often
the devices are rediscovered.

Every invalid input raises ConfigError whose text is one paragraph naming the key path and the fix; values
and keys are echoed shortened, so the text never grows with the input. What is read is bounded before it is
decoded: a regular file of at most MAX_CONFIG_BYTES, UTF-8, nested at most MAX_DEPTH levels, numbers of at
most MAX_NUMBER_CHARS characters and finite (JSON has no NaN or Infinity; Python's decoder would take them).
"""

from __future__ import annotations

import difflib
import errno
import json
import math
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rdma_device_plugin.files import NotRegularFileError, read_regular
from rdma_device_plugin.text import shorten

DEFAULT_CONFIG_PATH = Path("/k8s-rdma-sriov-dev-plugin/config.json")
DEFAULT_UPDATE_INTERVAL = 60.0
LEGACY_HCA_IDS = 1000
DEFAULT_PREFIX = "rdma"

# IDs cost memory in every pool and every ListAndWatch message (each update lists every ID of the pool).
# Message: a Device with a 5-digit ID, "Unhealthy" and one NUMA node below 16384 is 27 bytes on the wire
# (bench/bench_plugin_ids.py measures 23.9 bytes per ID with "Healthy" and NUMA 0/1), so kubelet's 4 MiB gRPC
# receive limit would allow about 155,000 IDs per pool. Memory binds first: the same bench measures a serving
# plugin at about 45 MiB plus 1.7 KiB per ID at its peak (a full update after a port flip), so 30,000 IDs in
# all pools together peak near 95 MiB, well inside the DaemonSet's 160 Mi limit.
MAX_IDS_PER_POOL = 30_000
MAX_IDS_TOTAL = MAX_IDS_PER_POOL
# A ConfigMap holds at most 1 MiB; real configs are well under 2 KiB (a pool is about 150 bytes).
MAX_CONFIG_BYTES = 64 * 1024
# The deepest valid config is 4 levels (root, configList, a pool, its selectors, a selector list is 5).
MAX_DEPTH = 16
# Long enough for any float or integer a config means; Python refuses integers over 4300 digits with a
# ValueError of its own.
MAX_NUMBER_CHARS = 32
# periodicUpdateInterval: 0 turns rediscovery off; otherwise at least MIN (a discovery costs about 0.4 ms
# of CPU per HCA, so 20 per second stay a few percent of a core) and at most a day.
MIN_UPDATE_INTERVAL = 0.05
MAX_UPDATE_INTERVAL = 86_400.0
# Echoed values and keys are cut to this many characters.
SHOWN_CHARS = 40
# sockaddr_un.sun_path holds 108 bytes with the terminating NUL.
SOCKET_PATH_MAX = 107

_RESOURCE_NAME = re.compile(r"^[a-zA-Z0-9_]+$")
# An extended resource's domain must be a DNS subdomain (RFC 1123), as kubelet's Register checks.
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HEX4 = re.compile(r"^[0-9a-fA-F]{4}$")
# A Linux interface name: at most 15 bytes, no "/", ":" or whitespace (dev_valid_name()).
_IFNAME = re.compile(r"^[^/:\s]{1,15}$")
_LINK_TYPES = {"ether": "Ethernet", "ethernet": "Ethernet", "infiniband": "InfiniBand"}

Mode = Literal["shared", "sriov"]


class ConfigError(Exception):
    """An invalid configuration; str() is one paragraph naming the file, the key path and the fix."""

    def __init__(self, source: str, key_path: str, reason: str) -> None:
        self.source = source
        self.key_path = key_path
        self.reason = reason
        where = f"{source}: {key_path}" if key_path else source
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True, kw_only=True)
class Selectors:
    """Which RDMA devices a pool takes. Empty tuples impose nothing; values are normalised:
    vendors/device_ids lower-case hex without 0x, link_types in sysfs spelling ("Ethernet", "InfiniBand")."""

    vendors: tuple[str, ...] = ()
    device_ids: tuple[str, ...] = ()
    drivers: tuple[str, ...] = ()
    if_names: tuple[str, ...] = ()
    link_types: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ResourceConfig:
    """One advertised resource: its name, how IDs are made and which devices back them."""

    resource_name: str
    """Full extended resource name, e.g. "rdma/hca"."""
    mode: Mode
    """"shared": ids_max IDs spread over the pool's devices; "sriov": one ID per VF of pf_netdevices."""
    ids_max: int = 0
    exclusive: bool = False
    """Allocate only the devices behind the requested IDs (else every device of the pool)."""
    selectors: Selectors = field(default_factory=Selectors)
    pf_netdevices: tuple[str, ...] = ()
    socket_name: str = ""
    """Socket file name in the device-plugin directory; derived from resource_name when left empty."""

    def __post_init__(self) -> None:
        if not self.socket_name:
            object.__setattr__(self, "socket_name", self.resource_name.replace("/", "_") + ".sock")

    def describe(self) -> str:
        """One line for people: how IDs are made, which devices back them, what a container gets."""
        if self.mode == "sriov":
            return f"one ID per VF of {', '.join(self.pf_netdevices)}; a container gets its VFs' nodes"
        chosen = [
            f"{label} {'|'.join(values)}"
            for label, values in (
                ("vendor", self.selectors.vendors),
                ("device", self.selectors.device_ids),
                ("driver", self.selectors.drivers),
                ("netdev", self.selectors.if_names),
                ("link", self.selectors.link_types),
            )
            if values
        ]
        devices = " and ".join(chosen) if chosen else "every RDMA device"
        gets = "the devices behind its IDs" if self.exclusive else "every device of the pool"
        return f"{self.ids_max} IDs over {devices}; a container gets {gets}"


@dataclass(frozen=True, kw_only=True)
class PluginConfig:
    periodic_update_interval: float
    """Seconds between rediscoveries; 0 disables them."""
    resources: tuple[ResourceConfig, ...]
    source_format: Literal["legacy", "pool"]


def load_config(path: Path, socket_dir: Path | None = None) -> PluginConfig:
    """Read and validate the JSON file at path (a regular file of at most MAX_CONFIG_BYTES); with
    socket_dir, every resource's socket path there must also fit a unix socket address."""
    config = parse_config(_decode_utf8(read_bounded(path), str(path)), source=str(path))
    if socket_dir is not None:
        for index, resource in enumerate(config.resources):
            problem = socket_path_problem(socket_dir / resource.socket_name)
            if problem:
                where = f"configList[{index}].resourceName" if config.source_format == "pool" else "mode"
                raise ConfigError(
                    str(path),
                    where,
                    f"the resource's socket path is too long: {problem}; shorten resourcePrefix and "
                    "resourceName, or mount the device-plugin directory at a shorter path",
                )
    return config


def socket_path_problem(path: Path) -> str | None:
    """Why `path` cannot be a unix socket's address, or None when it can."""
    size = len(os.fsencode(path))
    if size <= SOCKET_PATH_MAX:
        return None
    return f"{_shorten(str(path))} is {size} bytes, over the {SOCKET_PATH_MAX} a unix socket path may have"


def read_bounded(path: Path) -> bytes:
    """The file's bytes; ConfigError when it is not a readable regular file of at most MAX_CONFIG_BYTES."""
    try:
        data = read_regular(path, MAX_CONFIG_BYTES)
    except NotRegularFileError as exc:
        reason = os.strerror(errno.EISDIR) if stat.S_ISDIR(exc.mode) else str(exc)
        raise _unreadable(path, reason) from None
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            str(path),
            "",
            f"the file is larger than {MAX_CONFIG_BYTES // 1024} KiB, far more than any config needs (a pool "
            "is about 150 bytes); point --config at the plugin's JSON config",
        )
    return data


def _unreadable(path: Path, reason: str) -> ConfigError:
    return ConfigError(
        str(path),
        "",
        f"cannot read the config file ({reason}); mount the ConfigMap there or point --config "
        "(env RDMA_DP_CONFIG) at a readable JSON file",
    )


def _decode_utf8(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            source,
            "",
            f"cannot read the config file: it is not UTF-8 (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start} cannot start or continue a UTF-8 character); save it as UTF-8 JSON",
        ) from None


def parse_config(data: str | Mapping[str, object], source: str = "config.json") -> PluginConfig:
    """Validate JSON text or an already decoded mapping; raise ConfigError on the first problem."""
    root: object = _decode(data, source) if isinstance(data, str) else data
    return _Validator(source).plugin_config(root)


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            raise _RejectedError(
                f"the key {_quoted(key)} appears twice in one object; keep a single {_quoted(key)}"
            )
        obj[key] = value
    return obj


class _RejectedError(ValueError):
    """Raised from the decoder's hooks; its text is the reason of the ConfigError."""


def _number(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """The decoder's number parser, refusing literals longer than MAX_NUMBER_CHARS. NaN, Infinity and
    overflowing floats get through and are refused with their key path by the validator."""

    def parse(text: str) -> int | float:
        if len(text) > MAX_NUMBER_CHARS:
            raise _RejectedError(
                f"holds a number {len(text)} characters long ({_shorten(text)}); no setting needs more than "
                f"{MAX_NUMBER_CHARS}"
            )
        return kind(text)

    return parse


_CLOSERS = {"[": "]", "{": "}"}


def _max_depth(text: str) -> int:
    """How deeply arrays and objects nest in `text`, counted outside strings (json.loads itself recurses
    and fails with RecursionError near 1000 levels, which is why this runs first)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def _decode(text: str, source: str) -> object:
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(
            source, "", f"the config is longer than {MAX_CONFIG_BYTES // 1024} KiB; no config needs that much"
        )
    if _max_depth(text) > MAX_DEPTH:
        raise ConfigError(
            source,
            "",
            f"arrays and objects are nested more than {MAX_DEPTH} levels deep; a valid config nests 5 (e.g. "
            'configList[0].selectors.vendors); fix the structure, e.g. {"mode": "hca"}',
        )
    try:
        return json.loads(
            text,
            object_pairs_hook=_reject_duplicate_keys,
            parse_int=_number(int),
            parse_float=_number(float),
        )
    except json.JSONDecodeError as exc:
        raise ConfigError(
            source,
            "",
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); fix the syntax so the file "
            'holds one JSON object such as {"mode": "hca"}',
        ) from None
    except _RejectedError as exc:
        raise ConfigError(source, "", str(exc)) from None


def _shorten(text: str) -> str:
    return shorten(text, SHOWN_CHARS)


def _quoted(value: str) -> str:
    """A string as JSON writes it (quotes, escapes), shortened."""
    if len(value) <= SHOWN_CHARS:
        return json.dumps(value)
    return f'{json.dumps(value[:SHOWN_CHARS])[:-1]}..." ({len(value)} characters)'


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    return "an object"


def _shown(value: object) -> str:
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"a {value.bit_length()}-bit integer"
    if isinstance(value, int | float | bool) or value is None:
        return json.dumps(value)
    return _json_type(value)


class _Validator:
    """Walks the decoded JSON; every check names the key path it is at."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, reason: str) -> ConfigError:
        return ConfigError(self.source, path, reason)

    def mapping(self, value: object, path: str, example: str) -> Mapping[str, object]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected a JSON object such as {example}, got {_json_type(value)}")
        return value

    def known_keys(self, obj: Mapping[str, object], path: str, allowed: Sequence[str]) -> None:
        for key in obj:
            if key not in allowed:
                # difflib is quadratic in the key's length; a key this long is no typo of a known one.
                close = difflib.get_close_matches(key, allowed, n=1) if len(key) <= SHOWN_CHARS else []
                hint = f'did you mean "{close[0]}"? ' if close else ""
                raise self.fail(
                    _join(path, key),
                    f"unknown key; {hint}allowed here: {', '.join(allowed)}",
                )

    def string_list(self, value: object, path: str, example: str) -> list[str]:
        if not isinstance(value, list | tuple):
            raise self.fail(path, f"expected an array of strings such as {example}, got {_shown(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise self.fail(f"{path}[{index}]", f"expected a string, got {_shown(item)}")
        return list(value)

    def string(self, value: object, path: str, example: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string such as {example}, got {_shown(value)}")
        return value

    def integer(self, value: object, path: str, hint: str) -> int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected a whole number ({hint}), got {_shown(value)}")
        if value < 0:
            raise self.fail(path, f"{_shown(value)} is negative; use 0 or more ({hint})")
        return value

    def interval(self, obj: Mapping[str, object]) -> float:
        key = "periodicUpdateInterval"
        value = obj.get(key, DEFAULT_UPDATE_INTERVAL)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(
                key, f"expected a number of seconds such as 60 (0 disables rediscovery), got {_shown(value)}"
            )
        if not math.isfinite(value):
            raise self.fail(
                key, f"{_shown(value)} is not a finite number; use 0 (off) or a number of seconds"
            )
        if value < 0:
            raise self.fail(key, f"{_shown(value)} is negative; use 0 (off) or a number of seconds")
        if value != 0 and not MIN_UPDATE_INTERVAL <= value <= MAX_UPDATE_INTERVAL:
            raise self.fail(
                key,
                f"{_shown(value)} is out of range; use 0 (off) or {MIN_UPDATE_INTERVAL:g} to "
                f"{MAX_UPDATE_INTERVAL:g} seconds (one day), e.g. 60",
            )
        return float(value)

    def plugin_config(self, root: object) -> PluginConfig:
        obj = self.mapping(root, "", '{"mode": "hca"} or {"configList": [...]}')
        if "configList" in obj and "mode" in obj:
            raise self.fail(
                "",
                'holds both "configList" (pool format) and "mode" (legacy format); keep one format',
            )
        if "configList" in obj:
            self.known_keys(obj, "", ("periodicUpdateInterval", "configList"))
            return PluginConfig(
                periodic_update_interval=self.interval(obj),
                resources=self.pools(obj["configList"]),
                source_format="pool",
            )
        if "mode" in obj:
            self.known_keys(obj, "", ("mode", "pfNetdevices", "pfMaxBandwidth", "periodicUpdateInterval"))
            return PluginConfig(
                periodic_update_interval=self.interval(obj),
                resources=(self.legacy(obj),),
                source_format="legacy",
            )
        raise self.fail(
            "",
            'sets neither "mode" (legacy format, e.g. {"mode": "hca"}) nor "configList" (pool format, e.g. '
            '{"configList": [{"resourceName": "hca_shared", "rdmaHcaMax": 1000, "selectors": {}}]}); add one',
        )

    def legacy(self, obj: Mapping[str, object]) -> ResourceConfig:
        mode = self.string(obj["mode"], "mode", '"hca"')
        if "pfMaxBandwidth" in obj:
            raise self.fail(
                "pfMaxBandwidth",
                "is not supported: this plugin never reconfigures VFs; remove it and set VF rate limits "
                "on the host (ip link set <pf> vf <n> max_tx_rate <Mbps>)",
            )
        if mode == "hca":
            if "pfNetdevices" in obj:
                raise self.fail(
                    "pfNetdevices", 'is used only in "sriov" mode; remove it, or set "mode": "sriov"'
                )
            return ResourceConfig(resource_name="rdma/hca", mode="shared", ids_max=LEGACY_HCA_IDS)
        if mode == "sriov":
            if "pfNetdevices" not in obj:
                raise self.fail(
                    "pfNetdevices", 'is required in "sriov" mode; list the PF netdevs, e.g. ["eth0"]'
                )
            names = self.netdev_names(obj["pfNetdevices"], "pfNetdevices")
            return ResourceConfig(resource_name="rdma/vhca", mode="sriov", pf_netdevices=tuple(names))
        raise self.fail(
            "mode",
            f'{_quoted(mode)} is not a known mode; use "hca" (resource rdma/hca, shared by every pod) or '
            '"sriov" (resource rdma/vhca, one ID per VF of "pfNetdevices")',
        )

    def netdev_names(self, value: object, path: str) -> list[str]:
        names = self.string_list(value, path, '["eth0"]')
        if not names:
            raise self.fail(path, 'is empty; list at least one netdev name, e.g. ["eth0"]')
        first_use: dict[str, int] = {}
        for index, name in enumerate(names):
            if not _IFNAME.match(name):
                raise self.fail(
                    f"{path}[{index}]",
                    f"{_quoted(name)} is not a network interface name (1-15 characters, no '/', ':' or "
                    'spaces) such as "eth0"',
                )
            if name in first_use:
                raise self.fail(
                    f"{path}[{index}]",
                    f"{_quoted(name)} is already listed at {path}[{first_use[name]}]; list each netdev once",
                )
            first_use[name] = index
        return names

    def pools(self, value: object) -> tuple[ResourceConfig, ...]:
        if not isinstance(value, list | tuple):
            raise self.fail("configList", f"expected an array of pool objects, got {_shown(value)}")
        if not value:
            raise self.fail(
                "configList",
                'is empty; add at least one pool such as {"resourceName": "hca_shared", "rdmaHcaMax": 1000, '
                '"selectors": {}}',
            )
        first_use: dict[str, int] = {}
        resources: list[ResourceConfig] = []
        total = 0
        for index, entry in enumerate(value):
            path = f"configList[{index}]"
            resource = self.pool(entry, path)
            name = resource.resource_name.split("/", 1)[1]
            if name in first_use:
                raise self.fail(
                    f"{path}.resourceName",
                    f"{_quoted(name)} is already used by configList[{first_use[name]}]; give every pool "
                    "a unique resourceName",
                )
            first_use[name] = index
            total += resource.ids_max
            if total > MAX_IDS_TOTAL:
                raise self.fail(
                    f"{path}.rdmaHcaMax",
                    f"brings the IDs of all pools to {total}, over the {MAX_IDS_TOTAL} this plugin serves "
                    "within its memory limit; lower rdmaHcaMax (a pod takes one ID, so the pods per node is "
                    "enough)",
                )
            resources.append(resource)
        return tuple(resources)

    def pool(self, entry: object, path: str) -> ResourceConfig:
        obj = self.mapping(entry, path, '{"resourceName": "hca_shared", "rdmaHcaMax": 1000, "selectors": {}}')
        self.known_keys(
            obj, path, ("resourceName", "resourcePrefix", "rdmaHcaMax", "selectors", "devices", "allocation")
        )
        name = self.resource_name(obj, path)
        prefix = self.resource_prefix(obj, path)
        if "rdmaHcaMax" not in obj:
            raise self.fail(
                f"{path}.rdmaHcaMax", "is required; set how many IDs the pool advertises, e.g. 1000"
            )
        ids_max = self.integer(obj["rdmaHcaMax"], f"{path}.rdmaHcaMax", "the number of IDs, e.g. 1000")
        if ids_max > MAX_IDS_PER_POOL:
            raise self.fail(
                f"{path}.rdmaHcaMax",
                f"{_shown(ids_max)} is more IDs than one pool may advertise ({MAX_IDS_PER_POOL}: their "
                "ListAndWatch updates must fit kubelet's 4 MiB message limit and the plugin's 160 Mi memory "
                "limit); a pod takes one ID, so the pods per node is enough, e.g. 1000",
            )
        return ResourceConfig(
            resource_name=f"{prefix}/{name}",
            mode="shared",
            ids_max=ids_max,
            exclusive=self.allocation(obj, path),
            selectors=self.device_choice(obj, path),
        )

    def resource_name(self, obj: Mapping[str, object], path: str) -> str:
        key = f"{path}.resourceName"
        if "resourceName" not in obj:
            raise self.fail(key, 'is required; name the pool, e.g. "hca_shared"')
        name = self.string(obj["resourceName"], key, '"hca_shared"')
        if not _RESOURCE_NAME.match(name):
            raise self.fail(
                key,
                f'{_quoted(name)} may hold only letters, digits and "_" (^[a-zA-Z0-9_]+$), e.g. "hca_shared"',
            )
        if name.startswith("_") or name.endswith("_") or len(name) > 63:
            raise self.fail(
                key,
                f"{_quoted(name)} must start and end with a letter or digit and be at most 63 characters "
                "(kubelet rejects other extended resource names)",
            )
        return name

    def resource_prefix(self, obj: Mapping[str, object], path: str) -> str:
        key = f"{path}.resourcePrefix"
        prefix = self.string(obj.get("resourcePrefix", DEFAULT_PREFIX), key, '"rdma"')
        if len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix):
            raise self.fail(
                key,
                f"{_quoted(prefix)} is not a DNS subdomain (lower-case letters, digits, '-' and '.'); "
                'use e.g. "rdma" or "example.com"',
            )
        if prefix == "kubernetes.io" or prefix.endswith((".kubernetes.io", ".k8s.io")) or prefix == "k8s.io":
            raise self.fail(key, f'{_quoted(prefix)} is reserved by Kubernetes; use e.g. "rdma"')
        return prefix

    def allocation(self, obj: Mapping[str, object], path: str) -> bool:
        key = f"{path}.allocation"
        value = self.string(obj.get("allocation", "shared"), key, '"shared"')
        if value not in ("shared", "exclusive"):
            raise self.fail(
                key,
                f'{_quoted(value)} is not an allocation policy; use "shared" (every container gets every '
                'device of the pool) or "exclusive" (only the devices behind its IDs)',
            )
        return value == "exclusive"

    def device_choice(self, obj: Mapping[str, object], path: str) -> Selectors:
        has_selectors, has_devices = "selectors" in obj, "devices" in obj
        if has_selectors and has_devices:
            raise self.fail(
                path,
                'has both "selectors" and "devices"; keep one: "selectors" (recommended) or the older '
                '"devices" list of netdev names',
            )
        if has_devices:
            return Selectors(if_names=tuple(self.netdev_names(obj["devices"], f"{path}.devices")))
        if has_selectors:
            return self.selectors(obj["selectors"], f"{path}.selectors")
        raise self.fail(
            path,
            'has neither "selectors" nor "devices"; add "selectors": {} to take every RDMA device, or narrow '
            'it, e.g. "selectors": {"vendors": ["15b3"]}',
        )

    def selectors(self, value: object, path: str) -> Selectors:
        obj = self.mapping(value, path, '{"vendors": ["15b3"]}')
        self.known_keys(obj, path, ("vendors", "deviceIDs", "drivers", "ifNames", "linkTypes"))
        return Selectors(
            vendors=self.hex_ids(obj.get("vendors", []), f"{path}.vendors", "vendor", "15b3"),
            device_ids=self.hex_ids(obj.get("deviceIDs", []), f"{path}.deviceIDs", "device", "1017"),
            drivers=self.drivers(obj.get("drivers", []), f"{path}.drivers"),
            if_names=self.if_names(obj.get("ifNames", []), f"{path}.ifNames"),
            link_types=self.link_types(obj.get("linkTypes", []), f"{path}.linkTypes"),
        )

    def hex_ids(self, value: object, path: str, what: str, example: str) -> tuple[str, ...]:
        ids = self.string_list(value, path, f'["{example}"]')
        for index, item in enumerate(ids):
            if not _HEX4.match(item):
                raise self.fail(
                    f"{path}[{index}]",
                    f'{_quoted(item)} is not a 4-digit hex PCI {what} id such as "{example}"',
                )
        return tuple(item.lower() for item in ids)

    def drivers(self, value: object, path: str) -> tuple[str, ...]:
        names = self.string_list(value, path, '["mlx5_core"]')
        for index, name in enumerate(names):
            if not name or "/" in name or name.strip() != name:
                raise self.fail(
                    f"{path}[{index}]", f'{_quoted(name)} is not a kernel driver name such as "mlx5_core"'
                )
        return tuple(names)

    def if_names(self, value: object, path: str) -> tuple[str, ...]:
        names = self.string_list(value, path, '["eth0"]')
        return tuple(self.netdev_names(names, path)) if names else ()

    def link_types(self, value: object, path: str) -> tuple[str, ...]:
        types = self.string_list(value, path, '["ether"]')
        result = []
        for index, item in enumerate(types):
            normal = _LINK_TYPES.get(item.lower())
            if normal is None:
                raise self.fail(
                    f"{path}[{index}]",
                    f'{_quoted(item)} is not a link type; use "ether" (RoCE, iWARP, eRDMA) or "infiniband"',
                )
            result.append(normal)
        return tuple(result)


def _join(path: str, key: str) -> str:
    shown = _shorten(key)
    return f"{path}.{shown}" if path else shown
