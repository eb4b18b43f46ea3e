"""Rerun of the bad stack-file inputs of issues #11 and #14 against a checkout: each written as
stacks/Pulumi.<case>.yaml, planned with `python -m offline_engine.plan` (what `make preview` runs), then
classified.

    venv/bin/python scripts/bad_stack_inputs.py [--project-dir DIR] [--python PY] [--json OUT]

Classes: clear (exit 2, one short line on stderr naming the problem), traceback, hang (over --timeout), silent
(exit 0), unclear (any other exit, or an error of several lines or over 2,000 characters). The base stack is
stacks/Pulumi.dev.yaml of the checkout with eRDMA instance types (g8i, g8ae) in place of any SCC ones.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

MAX_CLEAR = 2000


def base(project: Path) -> str:
    text = (project / "stacks" / "Pulumi.dev.yaml").read_text()
    return text.replace("ecs.scch5.16xlarge", "ecs.g8i.8xlarge").replace(
        "ecs.sccg7.32xlarge", "ecs.g8ae.8xlarge"
    )


def replaced(text: str, key: str, line: str) -> str:
    """``text`` with the line of ``key`` (and its list items) replaced by ``line`` (appended if absent)."""
    out, skipping, done = [], False, False
    for current in text.splitlines():
        if current.strip().startswith(f"{key}:"):
            out.append(f"  {line}")
            skipping, done = True, True
            continue
        if skipping and current.startswith("    "):
            continue
        skipping = False
        out.append(current)
    return "\n".join(out + ([] if done else [f"  {line}"])) + "\n"


def bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(9)]
    return "\n".join(lines) + "\nconfig:\n  ack-rdma:nodeLabels: *j\n"


def cases(dev: str) -> dict[str, Callable[[Path], object]]:
    def text(content: str) -> Callable[[Path], object]:
        return lambda path: path.write_text(content)

    def data(content: bytes) -> Callable[[Path], object]:
        return lambda path: path.write_bytes(content)

    return {
        "not UTF-8": data(dev.encode() + b"  ack-rdma:imageSource: caf\xe9\n"),
        "YAML alias bomb": text(bomb()),
        "confg: instead of config:": text(dev.replace("\nconfig:", "\nconfg:")),
        "20,000-character value": text(
            replaced(dev, "ack-rdma:namePrefix", "ack-rdma:namePrefix: " + "x" * 20_000)
        ),
        "testPods: yes": text(replaced(dev, "ack-rdma:testPods", "ack-rdma:testPods: yes")),
        "null value (desiredSize:)": text(replaced(dev, "ack-rdma:desiredSize", "ack-rdma:desiredSize:")),
        "null value (nodeTaint: ~)": text(dev + "  ack-rdma:nodeTaint: ~\n"),
        "null in a list": text(dev + "  ack-rdma:sshIngressCidrs: [~]\n"),
        "FIFO as the stack file": os.mkfifo,
        "directory as the stack file": lambda path: path.mkdir(),
        "5 MiB stack file": text(dev + "#" * (5 * 2**20) + "\n"),
        "empty stack file": text(""),
        "binary garbage": data(bytes(range(256)) * 4),
        "config: a list": text("config:\n  - a\n"),
        "nesting 100,000 deep": text(
            "config:\n  ack-rdma:pluginConfig: " + "[" * 100_000 + "]" * 100_000 + "\n"
        ),
        "integer of 5,000 digits": text(
            replaced(dev, "ack-rdma:desiredSize", "ack-rdma:desiredSize: " + "9" * 5000)
        ),
        "desiredSize: 2.5": text(replaced(dev, "ack-rdma:desiredSize", "ack-rdma:desiredSize: 2.5")),
        "duplicate key": text(dev + "  ack-rdma:desiredSize: 3\n"),
        "misspelt key ack-rdma:nodeCont": text(dev + "  ack-rdma:nodeCont: 3\n"),
        "misspelt key ack-rdma:desiredSzie": text(dev + "  ack-rdma:desiredSzie: 3\n"),
        "misspelt namespace ack-rmda:desiredSize": text(dev + "  ack-rmda:desiredSize: 3\n"),
        "malformed key a:b:c": text(dev + "  ack-rdma:a:b: 3\n"),
        "plaintext nodePassword": text(replaced(dev, "ack-rdma:keyName", "ack-rdma:nodePassword: hunter2")),
        "plaintext registryPassword": text(
            replaced(
                replaced(dev, "ack-rdma:registryEdition", "ack-rdma:registryEdition: personal"),
                "ack-rdma:registryInstanceId",
                "ack-rdma:registryPassword: hunter2",
            ).replace(
                "  ack-rdma:registryHost:", "  ack-rdma:registryUsername: me\n  ack-rdma:x-registryHost:"
            )
        ),
        "kubernetesVersion: banana": text(dev + "  ack-rdma:kubernetesVersion: banana\n"),
        "region mars-north-1": text(
            dev.replace("alicloud:region: cn-shanghai", "alicloud:region: mars-north-1")
        ),
        "instance type that does not exist": text(
            replaced(dev, "ack-rdma:instanceTypes", "ack-rdma:instanceTypes: [ecs.g8i.9xlarge]")
        ),
    }


def classify(done: subprocess.CompletedProcess[str] | None) -> str:
    if done is None:
        return "hang"
    if "Traceback" in done.stderr:
        return "traceback"
    if done.returncode == 0:
        return "silent"
    if done.returncode == 2 and done.stderr.count("\n") <= 1 and len(done.stderr) < MAX_CLEAR:
        return "clear"
    return "unclear"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project-dir", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    project = arguments.project_dir.resolve()
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as out:
        for index, (name, write) in enumerate(cases(base(project)).items()):
            stack = f"bad{index}"
            path = project / "stacks" / f"Pulumi.{stack}.yaml"
            write(path)
            started = time.perf_counter()
            try:
                done: subprocess.CompletedProcess[str] | None = subprocess.run(
                    [arguments.python, "-m", "offline_engine.plan", "--stack", stack, "--out", out],
                    cwd=project,
                    capture_output=True,
                    text=True,
                    errors="replace",
                    timeout=arguments.timeout,
                    check=False,
                    env={**os.environ, "NO_COLOR": "1"},
                )
            except subprocess.TimeoutExpired:
                done = None
            seconds = time.perf_counter() - started
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink()
            verdict = classify(done)
            stderr = done.stderr if done else ""
            results.append(
                {
                    "case": name,
                    "verdict": verdict,
                    "exit": done.returncode if done else None,
                    "seconds": round(seconds, 1),
                    "stderr_bytes": len(stderr),
                    "stderr": stderr[:300],
                }
            )
            code = done.returncode if done else "-"
            print(f"{verdict:9} exit={code:>2} {seconds:5.1f}s {len(stderr):>9} B  {name}")
    counts = Counter(str(result["verdict"]) for result in results)
    print(
        f"tried {len(results)}: "
        + ", ".join(f"{kind} {counts[kind]}" for kind in ("clear", "traceback", "hang", "silent", "unclear"))
    )
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
