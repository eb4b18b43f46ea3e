"""Offline plan of a stack: ``python -m offline_engine.plan --stack dev [--out build] [--json]``.

Runs the real program with the stack's config under Pulumi's mock engine, as ``pulumi preview`` would see a
new stack (no Pulumi CLI, no credentials, no network), prints the plan and writes the Kubernetes objects to
``<out>/<stack>/manifests/``, and the policy pack's verdict on the stack. Exit status: 0 planned, 1 planned
(plan printed, manifests written) but a mandatory policy is violated, 2 bad stack or config (the message on
stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pulumi

from offline_engine.plan_manifests import write_manifests
from offline_engine.plan_model import build_plan
from offline_engine.plan_preview import check_as_up, preview_run
from offline_engine.plan_render import render_plan
from offline_engine.stack_files import StackFileError, load_stack_settings

EXIT_POLICY_VIOLATED = 1
EXIT_BAD_INPUT = 2


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m offline_engine.plan",
        description="Offline plan of a stack under Pulumi's mock engine; writes its Kubernetes manifests.",
    )
    parser.add_argument("--stack", default="dev", help="stack whose stacks/Pulumi.<stack>.yaml to plan (dev)")
    parser.add_argument(
        "--out", type=Path, default=Path("build"), help="manifests go to <out>/<stack>/manifests (build)"
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        help="the project (Pulumi.yaml, __main__.py) to plan (default: this repository)",
    )
    parser.add_argument(
        "--stack-file",
        type=Path,
        help="plan this stack file instead of stacks/Pulumi.<stack>.yaml (to try a change before making it)",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON instead of text")
    return parser.parse_args(argv)


def _colour() -> bool:
    # https://no-color.org: colour only for a terminal, and never when NO_COLOR is set.
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _arguments(argv)
    started = time.perf_counter()
    try:
        # Only what was asked for: tests stand in for load_stack_settings with functions of the stack alone.
        options = {"project_dir": arguments.project_dir, "stack_file": arguments.stack_file}
        settings = load_stack_settings(
            arguments.stack, **{name: value for name, value in options.items() if value is not None}
        )
        run = preview_run(settings)
        check_as_up(settings)
    except (StackFileError, pulumi.RunError) as error:
        # StackConfigError (a RunError) and the program's other RunErrors carry their one-paragraph message.
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    plan = build_plan(run)
    manifest_dir = arguments.out / arguments.stack / "manifests"
    write_manifests(plan.manifests, manifest_dir)
    if arguments.json:
        print(json.dumps(plan.as_json(manifest_dir), indent=2))
    else:
        seconds = time.perf_counter() - started
        sys.stdout.write(render_plan(plan, manifest_dir=manifest_dir, seconds=seconds, colour=_colour()))
    return 0 if plan.policies.passed else EXIT_POLICY_VIOLATED


if __name__ == "__main__":
    sys.exit(main())
