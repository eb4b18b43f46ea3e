"""Where the check's inputs come from: the stack outputs (a saved JSON file or the Pulumi CLI), the
kubeconfig (flag, stack output or ``KUBECONFIG``), the pods to test and the bandwidth to expect.

Every problem is a UsageError: one paragraph naming the input and the fix. Nothing falls back to a default
cluster (``~/.kube/config``): measuring the wrong cluster would look like a valid result.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from ack_rdma_check.errors import UsageError
from ack_rdma_check.input_files import (
    echo,
    echo_path,
    load_json,
    load_yaml,
    load_yaml_documents,
    read_text,
    shorten,
)
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
_OUTPUTS_FIX = f"It must be the output of `{SAVE_OUTPUTS}`."
_KUBECONFIG_FIX = "Pass the path of a kubeconfig with --kubeconfig PATH or KUBECONFIG."
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
    where = f"--outputs {echo_path(path)}"
    text = read_text(path, where, f"Save the stack outputs with `{SAVE_OUTPUTS}` and pass that file.")
    return _parse_outputs(text, where)


def _pulumi_outputs(pulumi: str, stack: str | None) -> StackOutputs:
    argv = [pulumi, "stack", "output", "--json", "--show-secrets"] + (["--stack", stack] if stack else [])
    where = f"`pulumi stack output`{f' --stack {stack}' if stack else ''}"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_PULUMI_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UsageError(f"{where} could not run: {error}. Pass --outputs FILE instead.") from None
    if done.returncode != 0:
        message = shorten((done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1], 240)
        raise UsageError(
            f"{where} failed: {message}. Run the check in the Pulumi project directory, name the stack with "
            "--stack NAME, or pass --outputs FILE (or --kubeconfig with --selector/--create)."
        )
    return _parse_outputs(done.stdout, where)


def _parse_outputs(text: str, origin: str) -> StackOutputs:
    values = load_json(text, origin, _OUTPUTS_FIX)
    if not isinstance(values, dict):
        raise UsageError(f"{origin} must be a JSON object of stack outputs, as `{SAVE_OUTPUTS}` writes it.")
    return StackOutputs(values, origin)


def resolve_kubeconfig(flag: str | None, outputs: StackOutputs, environ: Mapping[str, str]) -> Kubeconfig:
    """``--kubeconfig``, else the stack's ``kubeconfig`` output, else ``KUBECONFIG``."""
    if flag is not None:
        where = f"--kubeconfig {echo_path(flag)}"
        _check_kubeconfig_file(flag, where)
        return Kubeconfig(where, path=flag)
    stack_value = outputs.get("kubeconfig")
    if stack_value is not None:
        return _kubeconfig_output(stack_value, outputs.origin)
    if environ.get("KUBECONFIG"):
        return _kubeconfig_from_environment(environ["KUBECONFIG"])
    raise UsageError(
        "No kubeconfig found: pass --kubeconfig PATH, set KUBECONFIG, or give the stack outputs (which hold "
        f"the cluster's kubeconfig) with --outputs FILE (`{SAVE_OUTPUTS}`) or --stack NAME with the pulumi "
        "CLI on PATH."
    )


def _check_kubeconfig_file(path: str, where: str) -> None:
    """The client reads the file itself (relative certificate paths resolve against its directory); this
    refuses first what it would hang on (a FIFO), choke on (deep nesting, alias bombs) or misreport."""
    content = load_yaml(read_text(path, where, _KUBECONFIG_FIX), where, _KUBECONFIG_FIX)
    if not isinstance(content, dict):
        raise UsageError(f"{where} is not a kubeconfig (a YAML mapping). {_KUBECONFIG_FIX}")


def _kubeconfig_from_environment(value: str) -> Kubeconfig:
    """KUBECONFIG is a list of paths like PATH; as kubectl does, entries that do not exist are passed over."""
    where = f"KUBECONFIG={echo_path(value)}"
    paths = [path for path in value.split(os.pathsep) if path]
    present = [path for path in paths if os.path.lexists(path)]
    if not present:
        raise UsageError(
            f"{where} names no file that exists. Set KUBECONFIG to the path of a kubeconfig, or pass "
            "--kubeconfig PATH or the stack outputs with --outputs/--stack."
        )
    for path in present:
        _check_kubeconfig_file(path, f"{echo_path(path)} (in KUBECONFIG)")
    return Kubeconfig("from KUBECONFIG", path=value)


def _kubeconfig_output(value: Any, origin: str) -> Kubeconfig:
    where = f"the kubeconfig output of {origin}"
    if value == "[secret]":
        raise UsageError(
            f"{where} is hidden as [secret]: export the outputs with --show-secrets ({SAVE_OUTPUTS})."
        )
    fix = f"Re-export the outputs with `{SAVE_OUTPUTS}`."
    content = load_yaml(value, where, fix) if isinstance(value, str) else value
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
            f"The checkMinGbits output of {outputs.origin} is {echo(value)}; it must be a positive number of "
            "Gbit/s. Fix it in the stack config, or override it with --min-gbits."
        )
    return float(value)


def resource_name(outputs: StackOutputs) -> str:
    value = outputs.get("rdmaResourceName")
    if value is None:
        return DEFAULT_RESOURCE_NAME
    if not isinstance(value, str) or "/" not in value:
        raise UsageError(
            f"The rdmaResourceName output of {outputs.origin} is {echo(value)}; it must be an extended "
            "resource name such as rdma/hca."
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
            f"The testPods output of {outputs.origin} is {echo(value)}; it must be "
            '{"namespace": "...", "names": ["<server>", "<client>"]}. Re-export the stack outputs.'
        )
    return value


def _create_spec(
    choice: PodChoice, namespace: str, names: Sequence[str], outputs: StackOutputs
) -> TestPodSpec:
    pod = _ManifestPod(outputs)
    image = choice.image or pod.image()
    if not image:
        raise UsageError(
            "--create needs the test pod image (one with perftest, such as the tools image): pass --image, "
            "or give stack outputs that carry testPodManifest."
        )
    prefixes = {name.rpartition("-")[0] for name in names}  # the builder names pods <prefix>-0, <prefix>-1
    prefix = prefixes.pop() if len(prefixes) == 1 and "" not in prefixes else DEFAULT_NAME_PREFIX
    return TestPodSpec(
        namespace=namespace,
        name_prefix=prefix + (HOST_NETWORK_SUFFIX if choice.host_network else ""),
        image=image,
        resource_name=resource_name(outputs),
        node_selector=pod.mapping("nodeSelector") or rdma_node_selector(),
        host_network=choice.host_network,
        tolerations=tuple(pod.mappings("tolerations")),
        image_pull_secrets=tuple(_secret_name(secret, pod) for secret in pod.mappings("imagePullSecrets")),
    )


class _ManifestPod:
    """The first Pod of the ``testPodManifest`` output (multi-document YAML or a ``List``), read for the
    parts of its spec that --create reuses; each part of the wrong shape is refused by its key path."""

    def __init__(self, outputs: StackOutputs) -> None:
        self.where = f"the testPodManifest output of {outputs.origin}"
        self.spec: Mapping[str, Any] = {}
        text = outputs.get("testPodManifest")
        if not isinstance(text, str):
            return
        fix = f"Re-export the stack outputs with `{SAVE_OUTPUTS}`."
        for document in load_yaml_documents(text, self.where, fix):
            is_list = isinstance(document, dict) and document.get("kind") == "List"
            items = document.get("items") if is_list else None
            for item in items if isinstance(items, list) else [document]:
                if isinstance(item, dict) and item.get("kind") == "Pod":
                    spec = item.get("spec")
                    self.spec = spec if isinstance(spec, dict) else self._refuse("spec", spec, "a mapping")
                    return

    def _refuse(self, key: str, value: Any, shape: str) -> NoReturn:
        raise UsageError(
            f"{self.where}: the Pod's {key} is {echo(value)}; it must be {shape}. Re-export the stack "
            f"outputs with `{SAVE_OUTPUTS}`, or pass --image."
        )

    def mapping(self, key: str) -> dict[str, str] | None:
        value = self.spec.get(key)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in [*value, *value.values()]):
            self._refuse(f"spec.{key}", value, "a mapping of strings")
        return value

    def mappings(self, key: str) -> list[dict[str, Any]]:
        value = self.spec.get(key) or []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self._refuse(f"spec.{key}", value, "a list of mappings")
        return value

    def image(self) -> str | None:
        containers = self.mappings("containers")
        image = containers[0].get("image") if containers else None
        if image is not None and not isinstance(image, str):
            self._refuse("spec.containers[0].image", image, "a string")
        return image or None


def _secret_name(secret: Mapping[str, Any], pod: _ManifestPod) -> str:
    name = secret.get("name")
    if not isinstance(name, str) or not name:
        pod._refuse("spec.imagePullSecrets[].name", name, "a secret name")
    return name
