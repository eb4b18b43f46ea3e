"""The text form of a plan, laid out like ``pulumi preview --diff``: a ``+`` tree with resources' inputs."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offline_engine.plan_model import Plan, PlannedResource
from offline_engine.plan_policies import PolicyVerdict
from offline_engine.plan_values import SECRET, UNKNOWN, Marker, leaves, shown

INDENT = "    "
STACK_TYPE = "pulumi:pulumi:Stack"
MAX_ALIGNED_PATH = 56
# ANSI SGR codes.
_STYLES = {
    "create": "32",
    "name": "1",
    "meta": "2",
    "heading": "1",
    "violation": "31",
    UNKNOWN: "33",
    SECRET: "35",
}


@dataclass(frozen=True)
class _Painter:
    colour: bool

    def __call__(self, text: str, style: str) -> str:
        return f"\x1b[{_STYLES[style]}m{text}\x1b[0m" if self.colour else text

    def value(self, value: Any) -> str:
        text = shown(value)
        return self(text, value) if isinstance(value, Marker) else text


def _fields(pairs: Iterable[tuple[str, Any]], indent: str, paint: _Painter) -> list[str]:
    pairs = list(pairs)
    # Aligned like pulumi's diff, except that a rare very long path does not push every value off screen.
    width = min(max((len(path) for path, _ in pairs), default=0), MAX_ALIGNED_PATH)
    return [f"{indent}{path.ljust(width)} : {paint.value(value)}" for path, value in pairs]


def _grouped_fields(planned: PlannedResource, indent: str, paint: _Painter) -> list[str]:
    lines: list[str] = []
    for group, members in itertools.groupby(planned.key_inputs(), key=lambda item: item[0]):
        pairs = [(path, value) for _, path, value in members]
        if group:
            lines.append(f"{indent}{group}:")
            lines.extend(_fields(pairs, indent + INDENT, paint))
        else:
            lines.extend(_fields(pairs, indent, paint))
    return lines


def _created(type_: str, name: str, paint: _Painter) -> str:
    return f"{paint('+', 'create')} {paint(type_, 'create')}  {paint(name, 'name')}"


def _options(planned: PlannedResource) -> list[str]:
    shown_options = []
    for option, value in planned.options().items():
        if value is True:
            shown_options.append(f"[{option}]")
        elif isinstance(value, dict):
            shown_options.append(f"[{option}: " + " ".join(f"{k}={v}" for k, v in value.items()) + "]")
        elif isinstance(value, list):
            shown_options.append(f"[{option}: " + ", ".join(value) + "]")
        else:
            shown_options.append(f"[{option}={value}]")
    return shown_options


def _resource(planned: PlannedResource, paint: _Painter) -> list[str]:
    resource = planned.resource
    indent = INDENT * planned.depth
    detail = indent + INDENT + "  "
    lines = [f"{indent}{_created(resource.type, resource.name, paint)}"]
    options = _options(planned)
    if options:
        lines.append(detail + paint(" ".join(options), "meta"))
    manifest = planned.manifest
    if manifest is not None:
        target = manifest.file_name if manifest.content is not None else f"not written: {manifest.withheld}"
        lines.append(detail + paint(f"{manifest.title} -> {target}", "meta"))
    lines.extend(_grouped_fields(planned, detail, paint))
    return lines


def _policies(verdict: PolicyVerdict, paint: _Painter) -> list[str]:
    lines = [paint("Policies:", "heading") + " the pack in policy/, as `pulumi preview --policy-pack policy`"]
    count = len(verdict.policies)
    if verdict.passed:
        lines.append(
            f"{INDENT}{paint('all', 'create')} {count} mandatory policies passed "
            f"({verdict.resources_checked} resources checked)"
        )
        return lines
    for violation in verdict.violations:
        lines.append(
            f"{INDENT}{paint('[mandatory]', 'violation')} {violation.policy}  "
            f"{violation.resource_type}  {paint(violation.resource_name, 'name')}"
        )
        lines.append(f"{INDENT}{INDENT}{violation.message}")
    violations = len(verdict.violations)
    lines.append(
        f"{INDENT}{paint(str(violations), 'violation')} violation{'s' if violations > 1 else ''} of "
        f"{count} mandatory policies: `pulumi preview --policy-pack policy` fails for this stack"
    )
    return lines


def render_plan(plan: Plan, *, manifest_dir: Path, seconds: float, colour: bool) -> str:
    paint = _Painter(colour)
    lines = [
        paint(f"Previewing stack {plan.stack} of project {plan.project} offline", "heading")
        + ": the real program under Pulumi's mock engine (no Pulumi CLI, no credentials, no cloud calls).",
        f"{paint(UNKNOWN, UNKNOWN)} known only after deployment   {paint(SECRET, SECRET)} secret, not shown",
        "",
        _created(STACK_TYPE, plan.stack_name, paint),
    ]
    for planned in plan.resources:
        lines.extend(_resource(planned, paint))
    if plan.diagnostics:
        lines += ["", paint("Diagnostics:", "heading")]
        lines.extend(f"{INDENT}{item.severity}: {item.message}" for item in plan.diagnostics)
    lines += ["", *_policies(plan.policies, paint)]
    lines += ["", paint("Outputs:", "heading")]
    lines.extend(_fields(leaves(plan.outputs), INDENT, paint))
    counts = plan.counts()
    parts = ["1 stack"] + [
        f"{count} {kind}{'s' if count > 1 and kind in ('component', 'provider') else ''}"
        for kind, count in sorted(counts.items(), key=lambda item: (item[0] != "component", item[0]))
    ]
    lines += [
        "",
        paint("Resources:", "heading"),
        f"{INDENT}{paint('+', 'create')} {sum(counts.values()) + 1} to create: {', '.join(parts)}",
        "",
        paint("Manifests:", "heading") + f" kubectl apply -f {manifest_dir}",
    ]
    for manifest in plan.manifests:
        if manifest.content is not None:
            lines.append(f"{INDENT}{manifest_dir / manifest.file_name}")
        else:
            lines.append(f"{INDENT}not written: {manifest.title}: {manifest.withheld}")
    lines += ["", f"Duration: {seconds:.1f}s"]
    return "\n".join(lines) + "\n"
