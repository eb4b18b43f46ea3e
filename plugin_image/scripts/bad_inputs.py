"""Rerun the plugin-side bad inputs of issue #14 against the rdma-device-plugin command and classify each:
clear (exit 2, one short paragraph), traceback, hang (no exit within the limit, or none after SIGTERM),
silent (accepted: exit 0, or serve kept running), unclear (any other exit, or a long or multi-line message).

Usage: venv/bin/python plugin_image/scripts/bad_inputs.py [--python PY] [--pythonpath DIR]
  --pythonpath runs another copy of the package (e.g. an old revision unpacked with git archive).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from sysfs_fixture import ib_two_numa

LIMIT = 10.0
SERVE_GRACE = 4.0
MAX_CLEAR_CHARS = 600


@dataclass
class Case:
    name: str
    args: list[str]
    serve: bool = False


def nested(depth: int) -> str:
    return '{"mode": "hca", "x": ' + "[" * depth + "]" * depth + "}"


def pool(value: str) -> str:
    return '{"configList": [{"resourceName": "a", "rdmaHcaMax": ' + value + ', "selectors": {}}]}'


def build_cases(root: Path, busy_port: int) -> list[Case]:
    tree = ib_two_numa(root / "host")
    roots = ["--sysfs-root", str(tree.sysfs_root), "--dev-root", str(tree.dev_root)]
    plugin_dir = Path(tempfile.mkdtemp(prefix="rdp-bad-", dir="/tmp"))
    good = root / "good.json"
    good.write_text('{"mode": "hca"}')
    a_file = root / "a-file"
    a_file.write_text("")
    fifo = root / "fifo.json"
    os.mkfifo(fifo)
    configs = {
        "nested 1000": nested(1000),
        "nested 100000": nested(100_000),
        "rdmaHcaMax 200000": pool("200000"),
        "rdmaHcaMax 1e9": pool("1e9"),
        "rdmaHcaMax 1e20": pool("1e20"),
        "interval NaN": '{"mode": "hca", "periodicUpdateInterval": NaN}',
        "interval Infinity": '{"mode": "hca", "periodicUpdateInterval": Infinity}',
        "interval 1e-9": '{"mode": "hca", "periodicUpdateInterval": 1e-9}',
        "duplicate pfNetdevices": '{"mode": "sriov", "pfNetdevices": ["eth0", "eth0"]}',
        "20,000-character value": '{"mode": "' + "m" * 20_000 + '"}',
        "10 MB value": '{"mode": "' + "m" * 10_000_000 + '"}',
        "5000-digit number": '{"mode": "hca", "periodicUpdateInterval": 1' + "0" * 5000 + "}",
    }
    cases = []
    for name, text in configs.items():
        path = root / f"{len(cases)}.json"
        path.write_text(text)
        cases.append(Case(f"check-config: {name}", ["check-config", str(path)]))
    latin1 = root / "latin1.json"
    latin1.write_bytes('{"mode": "sriov", "pfNetdevices": ["eth\u00e90"]}'.encode("latin-1"))
    cases.append(Case("check-config: Latin-1 file", ["check-config", str(latin1)]))
    cases.append(Case("check-config: FIFO", ["check-config", str(fifo)]))

    def serve(name: str, *args: str, config: Path = good, directory: Path = plugin_dir) -> Case:
        base = ["serve", "--config", str(config), "--device-plugin-dir", str(directory), *roots]
        return Case(f"serve: {name}", [*base, *args], serve=True)

    cases += [
        serve("config nested 100000", config=root / "1.json"),
        serve("config FIFO", config=fifo),
        serve("--health-poll-interval 1e-9", "--health-poll-interval", "1e-9"),
        serve("--health-poll-interval nan", "--health-poll-interval", "nan"),
        serve("--health-poll-interval inf", "--health-poll-interval", "inf"),
        serve("missing --device-plugin-dir", directory=root / "absent"),
        serve("a file as --device-plugin-dir", directory=a_file),
        serve("--device-plugin-dir over the socket limit", directory=Path("/tmp") / ("d" * 100)),
        serve("--metrics-address 999.1.1.1:9530", "--metrics-address", "999.1.1.1:9530"),
        serve(
            "--metrics-address no-such-host.invalid:9530", "--metrics-address", "no-such-host.invalid:9530"
        ),
        serve("--metrics-address with its port in use", "--metrics-address", f"127.0.0.1:{busy_port}"),
    ]
    for flag in ("--sysfs-root", "--dev-root"):
        for kind, path in (("missing", root / "absent"), ("a file", a_file)):
            cases.append(Case(f"discover: {kind} as {flag}", ["discover", *roots, flag, str(path)]))
            cases.append(serve(f"{kind} as {flag}", flag, str(path)))
    return cases


def classify(case: Case, command: list[str], env: dict[str, str]) -> tuple[str, str]:
    process = subprocess.Popen(
        [*command, *case.args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    try:
        out, err = process.communicate(timeout=SERVE_GRACE if case.serve else LIMIT)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            out, err = process.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            return "hang", "ignored SIGTERM"
        return ("silent", "kept serving") if case.serve else ("hang", f"no exit in {LIMIT:g} s")
    text = (err or "") + (out or "" if process.returncode else "")
    first = text.strip().splitlines()[-1][:140] if text.strip() else ""
    if "Traceback" in text:
        return "traceback", first
    if process.returncode == 0:
        return "silent", "exit 0"
    lines = [line for line in (err or "").splitlines() if line.strip()]
    if process.returncode == 2 and len(lines) == 1 and len(lines[0]) <= MAX_CLEAR_CHARS:
        return "clear", lines[0][:140]
    return "unclear", f"exit {process.returncode}, {len(lines)} lines, {len(err or '')} chars: {first}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--pythonpath", help="a directory holding another rdma_device_plugin package")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    command = [args.python, "-m", "rdma_device_plugin"]
    with tempfile.TemporaryDirectory(prefix="rdp-bad-inputs-") as scratch, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cases = build_cases(Path(scratch), taken.getsockname()[1])
        rows = []
        for case in cases:
            started = time.monotonic()
            verdict, detail = classify(case, command, env)
            seconds = round(time.monotonic() - started, 2)
            rows.append({"input": case.name, "verdict": verdict, "seconds": seconds, "detail": detail})
            print(f"{verdict:9}  {rows[-1]['seconds']:5.2f} s  {case.name}  |  {detail}")
    counts = Counter(row["verdict"] for row in rows)
    print(f"\ntried {len(rows)}: " + ", ".join(f"{key} {counts[key]}" for key in
                                            ("clear", "traceback", "hang", "silent", "unclear")))  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
