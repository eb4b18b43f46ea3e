"""Where the check's inputs come from: the stack outputs (a saved JSON file or the Pulumi CLI), the
kubeconfig (flag, stack output or ``KUBECONFIG``), the pods to test and the bandwidth to expect.

Every problem is a UsageError: one paragraph naming the input and the fix. Nothing falls back to a default
cluster (``~/.kube/config``): measuring the wrong cluster would look like a valid result.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ack_rdma_check.errors import UsageError
from ack_rdma_check.steps.pods import PodTarget
from ack_rdma_check.transport import Kubeconfig
from components import defaults
from components.k8s_objects import DEFAULT_RESOURCE_NAME, TestPodSpec, build_test_objects, rdma_node_selector

DEFAULT_MIN_GBITS = 40.0
"""Without a stack value: the walkthrough's SCC nodes gave 44 Gbit/s; 40 leaves room for run-to-run noise."""
DEFAULT_NAME_PREFIX = "rdma-test"
HOST_NETWORK_SUFFIX = "-hostnet"
"""Created host-network pods get their own names so they never collide with pod-network test pods."""

SAVE_OUTPUTS = "pulumi stack output --json --show-secrets > outputs.json"
_PULUMI_TIMEOUT = 120.0


@dataclass(frozen=True)
class StackOutputs:
    values: Mapping[str, Any]
    origin: str

    def get(self, key: str) -> Any:
        return self.values.get(key)


NO_OUTPUTS = StackOutputs({}, "no stack outputs")


def load_outputs(outputs_file: str | None, stack: str | None, kubeconfig_elsewhere: bool) -> StackOutputs:
    """``--outputs FILE``, else ``--stack NAME`` through the Pulumi CLI, else the current stack if the CLI is
    on PATH. The current stack is only a guess: when it cannot be read (not in the project directory) and a
    kubeconfig comes from elsewhere (``--kubeconfig``, ``KUBECONFIG``), the check goes on without outputs."""
    if outputs_file is not None:
        return _read_outputs_file(outputs_file)
    pulumi = shutil.which("pulumi")
    if stack is not None:
        if pulumi is None:
            raise UsageError(
                f"--stack {stack} needs the pulumi CLI, which is not on PATH. Install it, or save the "
                f"outputs where it is installed (`{SAVE_OUTPUTS}`) and pass --outputs outputs.json."
            )
        return _pulumi_outputs(pulumi, stack)
    if pulumi is None:
        return NO_OUTPUTS
    try:
        return _pulumi_outputs(pulumi, None)
    except UsageError:
        if kubeconfig_elsewhere:
            return NO_OUTPUTS
        raise


def _read_outputs_file(path: str) -> StackOutputs:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(
            f"--outputs {path} cannot be read ({error.strerror or error}). Save the stack outputs with "
            f"`{SAVE_OUTPUTS}` and pass that file."
        ) from None
    return _parse_outputs(text, f"--outputs {path}")


def _pulumi_outputs(pulumi: str, stack: str | None) -> StackOutputs:
    argv = [pulumi, "stack", "output", "--json", "--show-secrets"] + (["--stack", stack] if stack else [])
    where = f"`pulumi stack output`{f' --stack {stack}' if stack else ''}"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_PULUMI_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UsageError(f"{where} could not run: {error}. Pass --outputs FILE instead.") from None
    if done.returncode != 0:
        message = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise UsageError(
            f"{where} failed: {message}. Run the check in the Pulumi project directory, name the stack with "
            "--stack NAME, or pass --outputs FILE (or --kubeconfig with --selector/--create)."
        )
    return _parse_outputs(done.stdout, where)


def _parse_outputs(text: str, origin: str) -> StackOutputs:
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(
            f"{origin} is not JSON ({error.msg} at line {error.lineno}). It must be the output of "
            f"`{SAVE_OUTPUTS}`."
        ) from None
    if not isinstance(values, dict):
        raise UsageError(f"{origin} must be a JSON object of stack outputs, as `{SAVE_OUTPUTS}` writes it.")
    return StackOutputs(values, origin)


def resolve_kubeconfig(flag: str | None, outputs: StackOutputs, environ: Mapping[str, str]) -> Kubeconfig:
    """``--kubeconfig``, else the stack's ``kubeconfig`` output, else ``KUBECONFIG``."""
    if flag is not None:
        if not Path(flag).is_file():
            raise UsageError(f"--kubeconfig {flag} is not a readable file. Pass the path of a kubeconfig.")
        return Kubeconfig(f"--kubeconfig {flag}", path=flag)
    stack_value = outputs.get("kubeconfig")
    if stack_value is not None:
        return _kubeconfig_output(stack_value, outputs.origin)
    if environ.get("KUBECONFIG"):
        return Kubeconfig("from KUBECONFIG", path=environ["KUBECONFIG"])
    raise UsageError(
        "No kubeconfig found: pass --kubeconfig PATH, set KUBECONFIG, or give the stack outputs (which hold "
        f"the cluster's kubeconfig) with --outputs FILE (`{SAVE_OUTPUTS}`) or --stack NAME with the pulumi "
        "CLI on PATH."
    )


def _kubeconfig_output(value: Any, origin: str) -> Kubeconfig:
    where = f"the kubeconfig output of {origin}"
    if value == "[secret]":
        raise UsageError(
            f"{where} is hidden as [secret]: export the outputs with --show-secrets ({SAVE_OUTPUTS})."
        )
    try:
        content = yaml.safe_load(value) if isinstance(value, str) else value
    except yaml.YAMLError as error:
        raise UsageError(
            f"{where} is not YAML ({error}). Re-export the outputs with `{SAVE_OUTPUTS}`."
        ) from None
    if not isinstance(content, dict):
        raise UsageError(
            f"{where} is not a kubeconfig document. Re-export the outputs with `{SAVE_OUTPUTS}`."
        )
    return Kubeconfig(f"from {where}", content=content)


def resolve_min_gbits(flag: float | None, outputs: StackOutputs) -> float:
    if flag is not None:
        return flag
    value = outputs.get("checkMinGbits")
    if value is None:
        return DEFAULT_MIN_GBITS
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise UsageError(
            f"The checkMinGbits output of {outputs.origin} is {value!r}; it must be a positive number of "
            "Gbit/s. Fix it in the stack config, or override it with --min-gbits."
        )
    return float(value)


def resource_name(outputs: StackOutputs) -> str:
    value = outputs.get("rdmaResourceName")
    if value is None:
        return DEFAULT_RESOURCE_NAME
    if not isinstance(value, str) or "/" not in value:
        raise UsageError(
            f"The rdmaResourceName output of {outputs.origin} is {value!r}; it must be an extended resource "
            "name such as rdma/hca."
        )
    return value


@dataclass(frozen=True)
class PodChoice:
    """The command line's say on which pods to test."""

    namespace: str | None
    selector: str | None
    create: bool
    image: str | None
    host_network: bool


def resolve_target(choice: PodChoice, outputs: StackOutputs) -> PodTarget:
    test_pods = _test_pods_output(outputs)
    names: list[str] = list(test_pods["names"]) if test_pods else []
    namespace = (
        choice.namespace or (test_pods["namespace"] if test_pods else None) or defaults.TEST_POD_NAMESPACE
    )
    if choice.create:
        if choice.selector is not None:
            raise UsageError("--selector and --create exclude each other: --create makes the builder's pods.")
        return PodTarget(
            namespace, manifests=build_test_objects(_create_spec(choice, namespace, names, outputs))
        )
    if choice.selector is not None:
        return PodTarget(namespace, selector=choice.selector)
    if test_pods is None:
        source = (
            "no stack outputs were read" if outputs is NO_OUTPUTS else f"{outputs.origin} has no testPods"
        )
        raise UsageError(
            f"No test pods known: {source}. Pass --outputs FILE or --stack NAME for the stack's test pods, "
            "--create to create them for this check, or --selector (with --namespace) to pick two pods."
        )
    if test_pods.get("enabled") is False:
        raise UsageError(
            f"The stack's test pods are off (testPods.enabled is false in {outputs.origin}). Run with "
            "--create to create them for this check and delete them afterwards, or set testPods: true in the "
            "stack config and run pulumi up."
        )
    return PodTarget(namespace, names=tuple(names))


def _test_pods_output(outputs: StackOutputs) -> Mapping[str, Any] | None:
    value = outputs.get("testPods")
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("namespace"), str)
        or not isinstance(value.get("names"), list)
        or len(value["names"]) != 2
        or not all(isinstance(name, str) and name for name in value["names"])
    ):
        raise UsageError(
            f"The testPods output of {outputs.origin} is {value!r}; it must be "
            '{"namespace": "...", "names": ["<server>", "<client>"]}. Re-export the stack outputs.'
        )
    return value


def _create_spec(
    choice: PodChoice, namespace: str, names: Sequence[str], outputs: StackOutputs
) -> TestPodSpec:
    stack_pod = _manifest_pod(outputs)
    image = choice.image or _container_image(stack_pod)
    if not image:
        raise UsageError(
            "--create needs the test pod image (one with perftest, such as the tools image): pass --image, "
            "or give stack outputs that carry testPodManifest."
        )
    prefixes = {name.rpartition("-")[0] for name in names}  # the builder names pods <prefix>-0, <prefix>-1
    prefix = prefixes.pop() if len(prefixes) == 1 and "" not in prefixes else DEFAULT_NAME_PREFIX
    spec = stack_pod.get("spec", {}) if stack_pod else {}
    return TestPodSpec(
        namespace=namespace,
        name_prefix=prefix + (HOST_NETWORK_SUFFIX if choice.host_network else ""),
        image=image,
        resource_name=resource_name(outputs),
        node_selector=spec.get("nodeSelector") or rdma_node_selector(),
        host_network=choice.host_network,
        tolerations=tuple(spec.get("tolerations") or ()),
        image_pull_secrets=tuple(secret["name"] for secret in spec.get("imagePullSecrets") or ()),
    )


def _manifest_pod(outputs: StackOutputs) -> Mapping[str, Any] | None:
    """The first Pod of the ``testPodManifest`` output (multi-document YAML or a ``List``)."""
    text = outputs.get("testPodManifest")
    if not isinstance(text, str):
        return None
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]
    except yaml.YAMLError as error:
        raise UsageError(f"The testPodManifest output of {outputs.origin} is not YAML: {error}") from None
    for document in documents:
        for item in document.get("items", [document]) if document.get("kind") == "List" else [document]:
            if isinstance(item, dict) and item.get("kind") == "Pod":
                return item
    return None


def _container_image(pod: Mapping[str, Any] | None) -> str | None:
    containers = (pod or {}).get("spec", {}).get("containers") or [{}]
    image = containers[0].get("image")
    return image if isinstance(image, str) and image else None
