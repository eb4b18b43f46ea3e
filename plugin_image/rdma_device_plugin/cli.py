"""The rdma-device-plugin command: serve (the default), discover, check-config, --version.

Bad input (a flag, an environment variable, the config file) exits with status 2 and one paragraph on
stderr naming what is wrong and how to fix it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NoReturn

from rdma_device_plugin import __version__
from rdma_device_plugin.config import ConfigError, PluginConfig, load_config
from rdma_device_plugin.discovery import Hca, discover, rdma_cm_present
from rdma_device_plugin.pools import ResourcePool, build_pools, usable
from rdma_device_plugin.pyverbs_backend import VerbsListError, cross_check, list_devices
from rdma_device_plugin.settings import (
    OPTION_BY_DEST,
    OPTIONS,
    SettingsError,
    check_host,
    host_roots,
    resolve,
    serve_options,
)

PROG = "rdma-device-plugin"
EXIT_BAD_INPUT = 2
COMMANDS = ("serve", "discover", "check-config")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse's own error is usage plus a message on two lines; keep the one-paragraph rule.
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message}; see {PROG} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG, description="Kubernetes device plugin for RDMA devices (kubelet API v1beta1)."
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    serve = commands.add_parser("serve", help="serve every configured resource to kubelet (the default)")
    for option in OPTIONS:
        serve.add_argument(
            option.flag,
            dest=option.dest,
            help=f"{option.help} [env {option.env}, default {option.default or 'empty'}]",
        )
    discover_cmd = commands.add_parser("discover", help="print the RDMA devices and the pool each lands in")
    for dest in ("sysfs_root", "dev_root", "config_path"):
        option = OPTION_BY_DEST[dest]
        discover_cmd.add_argument(option.flag, dest=dest, help=f"{option.help} [env {option.env}]")
    discover_cmd.add_argument("--json", action="store_true", help="print one JSON document")
    check = commands.add_parser("check-config", help="validate a config file and summarise it")
    check.add_argument("path", type=Path)
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in (*COMMANDS, "-h", "--help", "--version"):
        arguments.insert(0, "serve")
    args = build_parser().parse_args(arguments)
    env = os.environ if environ is None else environ
    try:
        if args.command == "discover":
            return _discover(args, env)
        if args.command == "check-config":
            return _check_config(args.path)
        return _serve(vars(args), env)
    except (ConfigError, SettingsError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _serve(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> int:
    opts = serve_options(flags, environ)
    check_host(opts)
    from rdma_device_plugin.log import configure_logging  # noqa: PLC0415

    configure_logging(opts.log_level, opts.log_format)
    # app pulls in grpc; discover and check-config stay light without it.
    from rdma_device_plugin.app import serve  # noqa: PLC0415

    return serve(opts)


def _check_config(path: Path) -> int:
    config = load_config(path)
    interval = config.periodic_update_interval
    print(f"{path}: valid ({config.source_format} format)")
    print(f"rediscovery: every {interval:g} s" if interval else "rediscovery: off")
    for resource in config.resources:
        print(f"{resource.resource_name} on {resource.socket_name}: {resource.describe()}")
    return 0


@dataclass
class VerbsCheck:
    """libibverbs' second opinion on the device list (see pyverbs_backend)."""

    checked: bool
    note: str = ""
    devices: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)


def verbs_check(sysfs_root: Path, dev_root: Path, hcas: Sequence[Hca]) -> VerbsCheck:
    if dev_root.resolve() != Path("/dev"):
        return VerbsCheck(False, f"skipped: libibverbs opens /dev/infiniband, not {dev_root}/infiniband")
    try:
        devices = list_devices(sysfs_root)
    except VerbsListError as error:
        return VerbsCheck(False, str(error))
    if devices is None:
        return VerbsCheck(False, "skipped: pyverbs is not importable (Debian package python3-pyverbs)")
    return VerbsCheck(True, "", [device.name for device in devices], cross_check(hcas, devices))


@dataclass
class Discovery:
    """What `discover` prints: the devices, the pools they land in and libibverbs' opinion."""

    sysfs_root: Path
    dev_root: Path
    config_path: Path | None
    hcas: list[Hca]
    pools: list[ResourcePool]
    verbs: VerbsCheck


def _discover(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    values = resolve(vars(args), environ)
    sysfs_root, dev_root = host_roots(values)
    config_path = Path(values["config_path"])
    config: PluginConfig | None = None
    # The default path is only a guess outside the DaemonSet; an explicitly named config must load.
    if args.config_path is not None or OPTION_BY_DEST["config_path"].env in environ or config_path.exists():
        config = load_config(config_path)
    hcas = discover(sysfs_root, dev_root)
    pools = build_pools(config, dev_root) if config else []
    for pool in pools:
        pool.refresh(hcas)
    found = Discovery(
        sysfs_root,
        dev_root,
        config_path if config else None,
        hcas,
        pools,
        verbs_check(sysfs_root, dev_root, hcas),
    )
    print(json.dumps(_as_json(found), indent=2) if args.json else _as_text(found))
    return 0


def _pools_of(hca: Hca, pools: Sequence[ResourcePool]) -> list[str]:
    return [pool.config.resource_name for pool in pools if hca in pool.members]


def _as_json(found: Discovery) -> dict[str, object]:
    return {
        "sysfs_root": str(found.sysfs_root),
        "dev_root": str(found.dev_root),
        "config": str(found.config_path) if found.config_path else None,
        "rdma_cm": rdma_cm_present(found.dev_root),
        "devices": [
            {
                **asdict(hca),
                "healthy": hca.healthy,
                "usable": usable(hca),
                "pools": _pools_of(hca, found.pools),
            }
            for hca in found.hcas
        ],
        "pools": [
            {
                "resource": pool.config.resource_name,
                "socket": pool.config.socket_name,
                "description": pool.config.describe(),
                "ids": len(pool.devices()),
                "healthy_ids": sum(device.healthy for device in pool.devices()),
                "members": [hca.name for hca in pool.members],
            }
            for pool in found.pools
        ],
        "pyverbs": asdict(found.verbs),
    }


def _hca_lines(hca: Hca) -> list[str]:
    numa = "-" if hca.numa_node is None else str(hca.numa_node)
    lines = [
        f"{hca.name}  pci {hca.pci_address or '-'}  id {hca.vendor}:{hca.device_id}  driver {hca.driver}  "
        f"numa {numa}  type {hca.node_type}  {'healthy' if usable(hca) else 'UNHEALTHY'}"
    ]
    if hca.physfn:
        lines.append(f"  VF of {hca.physfn}")
    if hca.virtfns:
        lines.append(f"  VFs: {', '.join(hca.virtfns)}")
    lines.append(f"  netdevs: {', '.join(hca.netdevs) or '-'}")
    for port in hca.ports:
        netdev = f"  netdev {', '.join(port.netdevs)}" if port.netdevs else ""
        lines.append(
            f"  port {port.number}: {port.state} {port.phys_state}  {port.link_layer}  {port.rate}{netdev}"
        )
    chars = [f"{dev.name} ({dev.dev}{'' if dev.present else ', node MISSING'})" for dev in hca.char_devices]
    lines.append(f"  char devices: {', '.join(chars) or '-'}")
    return lines


def _as_text(found: Discovery) -> str:
    lines = [f"RDMA devices under {found.sysfs_root} (nodes under {found.dev_root}): {len(found.hcas)}"]
    for hca in found.hcas:
        lines += _hca_lines(hca)
        if found.config_path:
            lines.append(f"  pools: {', '.join(_pools_of(hca, found.pools)) or 'none'}")
    lines.append(f"rdma_cm: {'present' if rdma_cm_present(found.dev_root) else 'absent'}")
    if found.config_path is None:
        lines.append("config: none found; pass --config PATH to see which pool each device lands in")
    else:
        lines.append(f"config: {found.config_path}")
        for pool in found.pools:
            devices = pool.devices()
            healthy = sum(device.healthy for device in devices)
            members = ", ".join(hca.name for hca in pool.members) or "no device"
            lines.append(
                f"  {pool.config.resource_name}: {len(devices)} IDs ({healthy} healthy) over {members}; "
                f"{pool.config.describe()}"
            )
    if found.verbs.checked:
        agreement = "; ".join(found.verbs.mismatches) or "agrees with sysfs"
        lines.append(f"libibverbs: lists {', '.join(found.verbs.devices) or 'no device'}; {agreement}")
    else:
        lines.append(f"libibverbs: {found.verbs.note}")
    return "\n".join(lines)
