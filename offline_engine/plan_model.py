"""A plan: what one preview run of the program declares, as a tree in creation order with masked values."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offline_engine.offline_run import DeclaredResource, Diagnostic, ProgramRun
from offline_engine.plan_manifests import Manifest, is_kubernetes_object, manifest_of
from offline_engine.plan_policies import PolicyVerdict, policy_verdict
from offline_engine.plan_values import leaves, masked

PROVIDER_PREFIX = "pulumi:providers:"
# What a reviewer checks on a Kubernetes object (its file holds the rest): a few fields of the object, and
# these of a Pod's spec or a Pod template's spec, listed under that spec.
KUBERNETES_KEY_INPUTS = (
    "type",
    "data",
    "stringData",
    "automountServiceAccountToken",
    "spec.updateStrategy.type",
    "spec.podSelector",
    "spec.policyTypes",
    "spec.ingress",
    "spec.egress",
)
POD_SPEC_ROOTS = ("spec.template.spec", "spec")
POD_SPEC_KEY_INPUTS = (
    "serviceAccountName",
    "nodeSelector",
    "tolerations",
    "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[].topologyKey",
    "hostNetwork",
    "priorityClassName",
    "securityContext",
    "containers[].image",
    "containers[].imagePullPolicy",
    "containers[].command",
    "containers[].securityContext",
    "containers[].resources",
    "volumes",
)
_INDEX = re.compile(r"\[\d+\]")


def _under(path: str, key: str) -> bool:
    return path == key or path.startswith((f"{key}.", f"{key}["))


def _kubernetes_group(path: str) -> str | None:
    """Where a Kubernetes object's input is listed: "" with the object, under a Pod spec root, or not."""
    general = _INDEX.sub("[]", path)
    if any(_under(general, key) for key in KUBERNETES_KEY_INPUTS):
        return ""
    for root in POD_SPEC_ROOTS:
        if any(_under(general, f"{root}.{key}") for key in POD_SPEC_KEY_INPUTS):
            return root
    return None


def _urn_of_provider(reference: str) -> str:
    """A provider reference is ``<urn>::<id>``."""
    return reference.rsplit("::", 1)[0]


@dataclass(frozen=True)
class PlannedResource:
    resource: DeclaredResource
    depth: int
    """1 for the stack's children."""
    provider_name: str | None
    """Name of the explicit provider the resource is managed by; ``None`` for the default one."""
    manifest: Manifest | None
    """For a Kubernetes object: its file, or why it is not written."""

    @property
    def inputs(self) -> dict[str, Any]:
        """Every input, masked (what ``--json`` shows)."""
        return {key: masked(value) for key, value in sorted(self.resource.inputs.items())}

    def key_inputs(self) -> Iterator[tuple[str, str, Any]]:
        """The inputs the text plan lists, as (group, path within the group, value): all of a cloud
        resource's (group ""), a Kubernetes object's key ones."""
        for path, value in leaves(self.inputs):
            group = "" if self.manifest is None else _kubernetes_group(path)
            if group is not None:
                yield group, path[len(group) + 1 :] if group else path, value

    def options(self) -> dict[str, Any]:
        """Resource options that differ from Pulumi's defaults."""
        resource = self.resource
        options: dict[str, Any] = {}
        if resource.protect:
            options["protect"] = True
        if resource.delete_before_replace:
            options["deleteBeforeReplace"] = True
        if resource.ignore_changes:
            options["ignoreChanges"] = list(resource.ignore_changes)
        if resource.custom_timeouts:
            options["customTimeouts"] = dict(resource.custom_timeouts)
        if self.provider_name is not None:
            options["provider"] = self.provider_name
        return options


@dataclass(frozen=True)
class Plan:
    project: str
    stack: str
    stack_name: str
    """Name of the ``pulumi:pulumi:Stack`` resource, the tree's root."""
    resources: tuple[PlannedResource, ...]
    """Depth-first, each component's children in the order they can be created."""
    outputs: dict[str, Any]
    """Stack outputs, masked."""
    diagnostics: tuple[Diagnostic, ...]
    """What the program logged, in order."""
    policies: PolicyVerdict

    @property
    def manifests(self) -> list[Manifest]:
        return [planned.manifest for planned in self.resources if planned.manifest is not None]

    def counts(self) -> Counter[str]:
        """Resources to create by kind of resource: components, providers, then each cloud package."""
        return Counter(_category(planned.resource) for planned in self.resources)

    def as_json(self, manifest_dir: Path) -> dict[str, Any]:
        return {
            "project": self.project,
            "stack": self.stack,
            "resources": [
                {
                    "urn": planned.resource.urn,
                    "type": planned.resource.type,
                    "name": planned.resource.name,
                    "parent": planned.resource.parent,
                    "custom": planned.resource.custom,
                    "inputs": planned.inputs,
                    "options": planned.options(),
                }
                for planned in self.resources
            ],
            "outputs": self.outputs,
            "diagnostics": [
                {"severity": item.severity, "message": item.message} for item in self.diagnostics
            ],
            "policies": self.policies.as_json(),
            "summary": {"create": len(self.resources) + 1, "byKind": dict(sorted(self.counts().items()))},
            "manifests": {
                "directory": str(manifest_dir),
                "written": [m.file_name for m in self.manifests if m.content is not None],
                "withheld": [{"object": m.title, "reason": m.withheld} for m in self.manifests if m.withheld],
            },
        }


def _category(resource: DeclaredResource) -> str:
    if not resource.custom:
        return "component"
    if resource.type.startswith(PROVIDER_PREFIX):
        return "provider"
    return resource.type.split(":", 1)[0]


class _Tree:
    """Parent/child links and what each resource needs before it can be created."""

    def __init__(self, run: ProgramRun) -> None:
        self.children: dict[str, list[DeclaredResource]] = defaultdict(list)
        for resource in run.resources:
            self.children[resource.parent].append(resource)

    def subtree(self, resource: DeclaredResource) -> Iterator[DeclaredResource]:
        yield resource
        for child in self.children[resource.urn]:
            yield from self.subtree(child)

    def needs(self, resource: DeclaredResource) -> set[str]:
        """URNs the resource or anything under it waits for (explicit or through inputs, and providers)."""
        needed: set[str] = set()
        for member in self.subtree(resource):
            needed.update(member.dependencies)
            if member.provider:
                needed.add(_urn_of_provider(member.provider))
        return needed

    def in_creation_order(self, siblings: Sequence[DeclaredResource]) -> list[DeclaredResource]:
        """Siblings ordered so that each comes after those it needs; otherwise by name.

        The engine registers concurrently, so registration order differs between runs; this one does not.
        """
        owner = {member.urn: sibling.urn for sibling in siblings for member in self.subtree(sibling)}
        waits_for = {
            sibling.urn: {owner[urn] for urn in self.needs(sibling) if urn in owner} - {sibling.urn}
            for sibling in siblings
        }
        remaining = sorted(siblings, key=lambda sibling: (sibling.name, sibling.type))
        ordered: list[DeclaredResource] = []
        created: set[str] = set()
        while remaining:
            # A cycle between components cannot be created by Pulumi either; name order then.
            ready = next((s for s in remaining if waits_for[s.urn] <= created), remaining[0])
            remaining.remove(ready)
            ordered.append(ready)
            created.add(ready.urn)
        return ordered

    def walk(self, parent: str, depth: int) -> Iterator[tuple[int, DeclaredResource]]:
        for resource in self.in_creation_order(self.children[parent]):
            yield depth, resource
            yield from self.walk(resource.urn, depth + 1)


def build_plan(run: ProgramRun) -> Plan:
    names = {resource.urn: resource.name for resource in run.resources}
    planned: list[PlannedResource] = []
    objects = 0
    for depth, resource in _Tree(run).walk(run.stack_urn, 1):
        manifest = None
        if is_kubernetes_object(resource):
            objects += 1
            manifest = manifest_of(resource, objects)
        provider = names.get(_urn_of_provider(resource.provider)) if resource.provider else None
        planned.append(PlannedResource(resource, depth, provider, manifest))
    return Plan(
        project=run.settings.project,
        stack=run.settings.stack,
        stack_name=run.stack_urn.rsplit("::", 1)[-1],
        resources=tuple(planned),
        outputs={key: masked(value) for key, value in sorted(run.outputs.items())},
        # The program logs from callbacks that run in whatever order the engine resolves outputs: sorted, two
        # plans of the same program read the same.
        diagnostics=tuple(sorted(run.diagnostics, key=lambda item: (item.severity, item.message))),
        policies=policy_verdict(run),
    )
