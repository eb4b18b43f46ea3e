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

Every invalid input raises ConfigError whose text is one paragraph naming the key path and the fix.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

DEFAULT_CONFIG_PATH = Path("/k8s-rdma-sriov-dev-plugin/config.json")
DEFAULT_UPDATE_INTERVAL = 60.0
LEGACY_HCA_IDS = 1000
DEFAULT_PREFIX = "rdma"

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


def load_config(path: Path) -> PluginConfig:
    """Read and validate the JSON file at path."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            str(path),
            "",
            f"cannot read the config file ({reason}); mount the ConfigMap there or point --config "
            "(env RDMA_DP_CONFIG) at a readable JSON file",
        ) from None
    return parse_config(text, source=str(path))


def parse_config(data: str | Mapping[str, object], source: str = "config.json") -> PluginConfig:
    """Validate JSON text or an already decoded mapping; raise ConfigError on the first problem."""
    root: object = _decode(data, source) if isinstance(data, str) else data
    return _Validator(source).plugin_config(root)


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKeyError(key)
        obj[key] = value
    return obj


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _decode(text: str, source: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            source,
            "",
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); fix the syntax so the file "
            'holds one JSON object such as {"mode": "hca"}',
        ) from None
    except _DuplicateKeyError as exc:
        raise ConfigError(
            source, "", f'the key "{exc.key}" appears twice in one object; keep a single "{exc.key}"'
        ) from None


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
    if isinstance(value, str | int | float | bool) or value is None:
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
                close = difflib.get_close_matches(key, allowed, n=1)
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
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected a whole number ({hint}), got {_shown(value)}")
        if value < 0:
            raise self.fail(path, f"{value} is negative; use 0 or more ({hint})")
        return value

    def interval(self, obj: Mapping[str, object]) -> float:
        value = obj.get("periodicUpdateInterval", DEFAULT_UPDATE_INTERVAL)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(
                "periodicUpdateInterval",
                f"expected a number of seconds such as 60 (0 disables rediscovery), got {_shown(value)}",
            )
        if value < 0:
            raise self.fail(
                "periodicUpdateInterval", f"{value} is negative; use 0 (off) or a number of seconds"
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
            f'{json.dumps(mode)} is not a known mode; use "hca" (resource rdma/hca, shared by every pod) or '
            '"sriov" (resource rdma/vhca, one ID per VF of "pfNetdevices")',
        )

    def netdev_names(self, value: object, path: str) -> list[str]:
        names = self.string_list(value, path, '["eth0"]')
        if not names:
            raise self.fail(path, 'is empty; list at least one netdev name, e.g. ["eth0"]')
        for index, name in enumerate(names):
            if not _IFNAME.match(name):
                raise self.fail(
                    f"{path}[{index}]",
                    f"{json.dumps(name)} is not a network interface name (1-15 characters, no '/', ':' or "
                    'spaces) such as "eth0"',
                )
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
        resources = []
        for index, entry in enumerate(value):
            path = f"configList[{index}]"
            resource = self.pool(entry, path)
            name = resource.resource_name.split("/", 1)[1]
            if name in first_use:
                raise self.fail(
                    f"{path}.resourceName",
                    f"{json.dumps(name)} is already used by configList[{first_use[name]}]; give every pool "
                    "a unique resourceName",
                )
            first_use[name] = index
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
                f'{json.dumps(name)} may hold only letters, digits and "_" (^[a-zA-Z0-9_]+$), '
                'e.g. "hca_shared"',
            )
        if name.startswith("_") or name.endswith("_") or len(name) > 63:
            raise self.fail(
                key,
                f"{json.dumps(name)} must start and end with a letter or digit and be at most 63 characters "
                "(kubelet rejects other extended resource names)",
            )
        return name

    def resource_prefix(self, obj: Mapping[str, object], path: str) -> str:
        key = f"{path}.resourcePrefix"
        prefix = self.string(obj.get("resourcePrefix", DEFAULT_PREFIX), key, '"rdma"')
        if len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix):
            raise self.fail(
                key,
                f"{json.dumps(prefix)} is not a DNS subdomain (lower-case letters, digits, '-' and '.'); "
                'use e.g. "rdma" or "example.com"',
            )
        if prefix == "kubernetes.io" or prefix.endswith((".kubernetes.io", ".k8s.io")) or prefix == "k8s.io":
            raise self.fail(key, f'{json.dumps(prefix)} is reserved by Kubernetes; use e.g. "rdma"')
        return prefix

    def allocation(self, obj: Mapping[str, object], path: str) -> bool:
        key = f"{path}.allocation"
        value = self.string(obj.get("allocation", "shared"), key, '"shared"')
        if value not in ("shared", "exclusive"):
            raise self.fail(
                key,
                f'{json.dumps(value)} is not an allocation policy; use "shared" (every container gets every '
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
                    f'{json.dumps(item)} is not a 4-digit hex PCI {what} id such as "{example}"',
                )
        return tuple(item.lower() for item in ids)

    def drivers(self, value: object, path: str) -> tuple[str, ...]:
        names = self.string_list(value, path, '["mlx5_core"]')
        for index, name in enumerate(names):
            if not name or "/" in name or name.strip() != name:
                raise self.fail(
                    f"{path}[{index}]", f'{json.dumps(name)} is not a kernel driver name such as "mlx5_core"'
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
                    f'{json.dumps(item)} is not a link type; use "ether" (RoCE, iWARP, eRDMA) '
                    'or "infiniband"',
                )
            result.append(normal)
        return tuple(result)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
