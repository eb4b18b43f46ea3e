"""Turns builder dicts from k8s_objects into pulumi_kubernetes resources (one mapping for every kind)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import defaults
from components.k8s_objects import build_registry_pull_secret
from components.resource_options import child_options

# kind -> (resource class, top-level fields besides apiVersion/kind/metadata the builders may emit)
_KINDS: dict[tuple[str, str], tuple[Callable[..., pulumi.CustomResource], tuple[str, ...]]] = {
    ("v1", "ConfigMap"): (k8s.core.v1.ConfigMap, ("data",)),
    ("v1", "ServiceAccount"): (k8s.core.v1.ServiceAccount, ("automountServiceAccountToken",)),
    ("v1", "Secret"): (k8s.core.v1.Secret, ("type", "stringData")),
    ("v1", "Pod"): (k8s.core.v1.Pod, ("spec",)),
    ("v1", "Namespace"): (k8s.core.v1.Namespace, ()),
    ("networking.k8s.io/v1", "NetworkPolicy"): (k8s.networking.v1.NetworkPolicy, ("spec",)),
    ("apps/v1", "DaemonSet"): (k8s.apps.v1.DaemonSet, ("spec",)),
}
_CAMEL_HUMP = re.compile(r"(?<!^)(?=[A-Z])")


def _checked(manifest: Mapping[str, Any], api_version: str, kind: str) -> Mapping[str, Any]:
    _, fields = _KINDS[(api_version, kind)]
    unexpected = set(manifest) - {"apiVersion", "kind", "metadata", *fields}
    if (manifest["apiVersion"], manifest["kind"]) != (api_version, kind) or unexpected:
        raise ValueError(f"{kind} manifest does not fit its declaration: fields {sorted(unexpected)}")
    return manifest


def _getter(field: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda manifest: manifest.get(field)


def component_dependencies(opts: pulumi.ResourceOptions | None) -> tuple[pulumi.Resource, ...]:
    """A component's own ``depends_on``, for its children to name: Pulumi does not pass a component's
    dependencies down (a child waits only for the resources it names itself), so a Kubernetes object would
    otherwise be created before the node pools or the registry access its component waits for."""
    found = opts.depends_on if opts is not None else None
    if isinstance(found, pulumi.Resource):
        return (found,)
    if isinstance(found, (list, tuple)):
        return tuple(item for item in found if isinstance(item, pulumi.Resource))
    return ()


def declare_object(
    name: str,
    manifest: Mapping[str, Any] | pulumi.Output[Mapping[str, Any]],
    *,
    api_version: str,
    kind: str,
    parent: pulumi.Resource,
    provider: k8s.Provider,
    depends_on: tuple[pulumi.Resource, ...] = (),
) -> pulumi.CustomResource:
    """Declare one builder object.

    ``manifest`` is a builder dict whose field values may be Outputs (a secret's data), or an Output of a
    whole builder dict (an object waiting for an image digest).
    """
    resource_class, fields = _KINDS[(api_version, kind)]
    if isinstance(manifest, Mapping):
        checked_now = _checked(manifest, api_version, kind)
        metadata: pulumi.Input[Any] = checked_now["metadata"]
        kwargs = {_CAMEL_HUMP.sub("_", field).lower(): checked_now.get(field) for field in fields}
    else:
        checked = manifest.apply(lambda value: _checked(value, api_version, kind))
        metadata = checked.apply(_getter("metadata"))
        kwargs = {_CAMEL_HUMP.sub("_", field).lower(): checked.apply(_getter(field)) for field in fields}
    return resource_class(
        name,
        metadata=metadata,
        opts=child_options(
            parent, defaults.KUBERNETES_OBJECT_TIMEOUTS, provider=provider, depends_on=depends_on
        ),
        **kwargs,
    )


@dataclass(frozen=True, kw_only=True)
class PullSecretSource:
    """Registry login for a ``kubernetes.io/dockerconfigjson`` Secret (ACR Personal Edition pulls)."""

    host: str
    username: pulumi.Input[str]
    password: pulumi.Input[str]
    secret_name: str = "ack-rdma-registry"


def declare_pull_secret(
    name: str,
    source: PullSecretSource,
    *,
    namespace: str,
    parent: pulumi.Resource,
    provider: k8s.Provider,
    depends_on: tuple[pulumi.Resource, ...] = (),
) -> pulumi.CustomResource:
    def manifest(username: str, password: str) -> dict[str, Any]:
        return build_registry_pull_secret(
            namespace=namespace,
            name=source.secret_name,
            host=source.host,
            username=username,
            password=password,
        )

    # Only the credentials are secret: name and namespace stay readable in plans and diffs.
    string_data = pulumi.Output.secret(
        pulumi.Output.all(source.username, source.password).apply(
            lambda login: manifest(*login)["stringData"]
        )
    )
    return declare_object(
        name,
        {**manifest("", ""), "stringData": string_data},
        api_version="v1",
        kind="Secret",
        parent=parent,
        provider=provider,
        depends_on=depends_on,
    )
