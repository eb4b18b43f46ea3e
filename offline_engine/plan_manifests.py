"""The Kubernetes objects of a plan as ``kubectl apply``-ready files, one per object.

Only objects whose every value is known before deployment and that hold no secret are written: a file with a
placeholder would apply something wrong, and credentials do not belong in a build directory.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.k8s_objects import manifests_yaml
from offline_engine.offline_run import DeclaredResource
from offline_engine.plan_values import SECRET, UNKNOWN, contains, leaves, masked

KUBERNETES_PREFIX = "kubernetes:"
_HEAD = ("apiVersion", "kind", "metadata")


def is_kubernetes_object(resource: DeclaredResource) -> bool:
    return resource.custom and resource.type.startswith(KUBERNETES_PREFIX)


def _canonical(value: Any) -> Any:
    """Keys sorted at every level, as ``kubectl get -o yaml`` shows objects (the wire keeps no order)."""
    if isinstance(value, dict):
        return {key: _canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


@dataclass(frozen=True)
class Manifest:
    """One Kubernetes object of the plan: its file, or why it has none."""

    resource: DeclaredResource
    kind: str
    namespace: str | None
    name: str
    file_name: str
    content: dict[str, Any] | None
    """The object as written; ``None`` when it is not written."""
    withheld: str | None
    """Why the object is not written; ``None`` when it is."""

    @property
    def title(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


def manifest_of(resource: DeclaredResource, position: int) -> Manifest:
    """``position`` numbers the files in declaration order, so ``kubectl apply -f <dir>`` follows it."""
    inputs = masked(dict(resource.inputs))
    kind = str(inputs["kind"])
    metadata = inputs["metadata"] if isinstance(inputs.get("metadata"), dict) else {}
    namespace = metadata.get("namespace")
    name = str(metadata.get("name", resource.name))
    scope = f"{namespace}-" if namespace else ""
    file_name = f"{position:02d}-{kind.lower()}-{scope}{name}.yaml"
    content: dict[str, Any] | None = None
    withheld: str | None = None
    if kind == "Secret" or contains(inputs, SECRET):
        withheld = (
            "holds secret values, which stay out of build files; `pulumi up` creates it, "
            "or create it by hand with `kubectl create secret`"
        )
    elif contains(inputs, UNKNOWN):
        fields = ", ".join(path for path, value in leaves(inputs) if value is UNKNOWN)
        withheld = f"depends on values known only after deployment ({fields})"
    else:
        order = (*_HEAD, *sorted(set(inputs) - set(_HEAD)))
        content = {key: _canonical(inputs[key]) for key in order}
    return Manifest(resource, kind, namespace, name, file_name, content, withheld)


def write_manifests(manifests: Sequence[Manifest], directory: Path) -> None:
    """Replace ``directory`` with one YAML file per written object: nothing stale survives a new plan."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for manifest in manifests:
        if manifest.content is not None:
            (directory / manifest.file_name).write_text(manifests_yaml([manifest.content]), encoding="utf-8")
