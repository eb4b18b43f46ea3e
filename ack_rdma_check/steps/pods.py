"""Finding (or creating) the two test pods and making sure they run on different nodes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ack_rdma_check.errors import SetupError
from ack_rdma_check.steps.record import StepLog
from ack_rdma_check.transport import Cluster, PodRef, PodState


@dataclass(frozen=True)
class PodTarget:
    """Which pods to test: named ones (the stack's ``testPods``), a label selector, or objects to create."""

    namespace: str
    names: tuple[str, ...] = ()
    selector: str | None = None
    manifests: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    """With ``--create``: the builder's namespace, network policy and pods, each created when missing and
    deleted afterwards."""


def locate(
    cluster: Cluster, target: PodTarget, log: StepLog, created: list[Mapping[str, Any]]
) -> list[PodRef]:
    """The two pods, server first; objects this call creates are appended to ``created`` as they are made."""
    with log.step("Test pods") as note:
        if target.manifests:
            for manifest in target.manifests:
                if not cluster.exists(manifest):
                    cluster.create(manifest)
                    created.append(manifest)
            refs = [_ref(manifest) for manifest in target.manifests if manifest["kind"] == "Pod"]
            made = ", ".join(_describe(manifest) for manifest in created) or "nothing, all existed"
            note.detail = f"{_names(refs)} in {target.namespace} (created: {made})"
        elif target.names:
            refs = [PodRef(target.namespace, name) for name in target.names]
            missing = [str(ref) for ref in refs if cluster.read(ref) is None]
            if missing:
                raise SetupError(
                    f"pod {', '.join(missing)} does not exist: turn the test pods on (testPods: true in the "
                    "stack config), "
                    "or run with --create to create them for this check"
                )
            note.detail = f"{_names(refs)} in {target.namespace}"
        else:
            refs = _select(cluster, target)
            note.detail = f"{_names(refs)} selected by {target.selector} in {target.namespace}"
    return refs


def wait_on_two_nodes(
    cluster: Cluster, refs: Sequence[PodRef], timeout: float, log: StepLog
) -> list[PodState]:
    with log.step("Pods running on different nodes") as note:
        states = cluster.wait_running(refs, timeout)
        for state in states:
            if not state.running:
                problem = f": {state.problem}" if state.problem else ""
                raise SetupError(f"pod {state.ref} is {state.phase} after {timeout:g} s{problem}")
        server, client = states
        if server.node == client.node:
            raise SetupError(
                f"both pods run on node {server.node}, so the test would not cross the network; the pods "
                "need required pod anti-affinity on kubernetes.io/hostname (the builder sets it) and two "
                "RDMA nodes"
            )
        note.detail = ", ".join(f"{state.ref.name} on {state.node}" for state in states)
    return states


def delete_created(cluster: Cluster, created: Sequence[Mapping[str, Any]], log: StepLog) -> None:
    """Deletes in reverse order of creation: pods, then their network policy, then their namespace."""
    with log.step("Delete created objects") as note:
        for manifest in reversed(created):
            cluster.delete(manifest)
        note.detail = ", ".join(_describe(manifest) for manifest in reversed(created))


def _ref(manifest: Mapping[str, Any]) -> PodRef:
    return PodRef(manifest["metadata"]["namespace"], manifest["metadata"]["name"])


def _describe(manifest: Mapping[str, Any]) -> str:
    return f"{manifest['kind']} {manifest['metadata']['name']}"


def _select(cluster: Cluster, target: PodTarget) -> list[PodRef]:
    selector = target.selector or ""
    pods = sorted(state.ref for state in cluster.find(target.namespace, selector))
    if len(pods) < 2:
        raise SetupError(
            f"selector {selector!r} matches {len(pods)} pod(s) in namespace {target.namespace}; the check "
            "needs two: fix --selector/--namespace or run with --create"
        )
    return pods[:2]


def _names(refs: Sequence[PodRef]) -> str:
    return ", ".join(ref.name for ref in refs)
