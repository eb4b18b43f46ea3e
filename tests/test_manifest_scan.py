"""scripts/scan-manifests.sh: checkov over rendered manifests; skips only on the object, with a reason."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.k8s_objects import CHECKOV_SKIP_ANNOTATION, manifests_yaml
from offline_engine.offline_run import reveal, run_program
from offline_engine.stack_files import load_stack_settings

REPO = Path(__file__).resolve().parents[1]
SCAN = REPO / "scripts/scan-manifests.sh"

# Creating checkov's own venv on a fresh machine downloads ~55 MB of wheels: allow for it once.
pytestmark = pytest.mark.timeout(600)

LABELS = {"app.kubernetes.io/name": "rdma-test"}
# A pod that passes every checkov Kubernetes check except host networking, which it skips with a reason.
POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "rdma-cm-0",
        "namespace": "ack-rdma-test",
        "labels": LABELS,
        "annotations": {"checkov.io/skip1": "CKV_K8S_19=RDMA_CM needs the node's RDMA netdev address"},
    },
    "spec": {
        "hostNetwork": True,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "tools",
                "image": "registry.cn-shanghai.aliyuncs.com/ack-rdma/rdma-tools@sha256:" + "b" * 64,
                "imagePullPolicy": "Always",
                "command": ["sleep", "infinity"],
                "resources": {
                    "requests": {"cpu": "100m", "memory": "64Mi"},
                    "limits": {"cpu": "1", "memory": "256Mi"},
                },
                "livenessProbe": {"exec": {"command": ["true"]}},
                "readinessProbe": {"exec": {"command": ["true"]}},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    },
}
NETWORK_POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "rdma-test", "namespace": "ack-rdma-test"},
    "spec": {"podSelector": {"matchLabels": LABELS}, "policyTypes": ["Ingress"], "ingress": []},
}


def scan(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCAN), str(directory)], capture_output=True, text=True, timeout=540, check=False
    )


def write(directory: Path, **objects: dict[str, Any]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, obj in objects.items():
        (directory / f"{name}.yaml").write_text(yaml.safe_dump(obj, sort_keys=False))
    return directory


def test_skip_with_reason_on_the_object_passes(tmp_path: Path) -> None:
    result = scan(write(tmp_path / "ok", pod=POD, netpol=NETWORK_POLICY))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failed, 1 skipped" in result.stdout


def test_failed_check_fails_the_scan_and_is_named(tmp_path: Path) -> None:
    unskipped = copy.deepcopy(POD)
    del unskipped["metadata"]["annotations"]
    result = scan(write(tmp_path / "bad", pod=unskipped, netpol=NETWORK_POLICY))
    assert result.returncode == 1
    assert 'CKV_K8S_19: "Containers should not share the host network namespace"' in result.stdout
    assert "1 failed" in result.stdout


def test_skip_without_reason_and_non_objects_are_refused_before_scanning(tmp_path: Path) -> None:
    bare_skip = copy.deepcopy(POD)
    bare_skip["metadata"]["annotations"] = {"checkov.io/skip1": "CKV_K8S_19"}
    directory = write(tmp_path / "refused", pod=bare_skip, notes={"just": "text"})
    (directory / "broken.yaml").write_text("kind: Pod\nmetadata:\n  name: x\n spec: [\n")
    result = scan(directory)
    assert result.returncode == 1
    assert "checkov.io/skip1: 'CKV_K8S_19' skips without a reason" in result.stderr
    assert "notes.yaml: a document is not a Kubernetes object" in result.stderr
    assert "broken.yaml: not valid YAML" in result.stderr
    assert "kubernetes scan results" not in result.stdout


@pytest.mark.parametrize("name", ["missing", "empty"])
def test_nothing_to_scan_is_an_error(tmp_path: Path, name: str) -> None:
    if name == "empty":
        (tmp_path / name).mkdir()
    result = scan(tmp_path / name)
    assert result.returncode in (1, 2)
    assert "make preview STACK=<stack>" in result.stderr


# --- the program's own objects ------------------------------------------------------------------------------

SUMMARY = re.compile(r"(\d+) objects, (\d+) passed, (\d+) failed, (\d+) skipped .*, (\d+) parsing errors")
# The only checks an object of the program may skip (each with its reason on the object); a new skip needs a
# decision here too.
SKIPPABLE = {
    "DaemonSet": {"CKV_K8S_19", "CKV_K8S_23", "CKV_K8S_40", "CKV2_K8S_6", "CKV_K8S_43"},
    "Pod": {
        "CKV_K8S_8",
        "CKV_K8S_9",
        "CKV_K8S_23",
        "CKV_K8S_40",
        "CKV_K8S_25",
        "CKV_K8S_19",
        "CKV_K8S_43",
        # Flannel only: ACK enforces no NetworkPolicy there, so none is declared.
        "CKV2_K8S_6",
    },
}


def rendered_objects(stack: str, overrides: dict[str, object]) -> list[dict[str, Any]]:
    """What the stack declares, as ``pulumi preview`` sees it, plus the ``testPodManifest`` objects it does
    not declare itself (a stack with the test pods off hands them out to apply by hand)."""
    run = run_program(load_stack_settings(stack, overrides=overrides), preview=True)
    declared = run.kubernetes_objects()

    def key(obj: dict[str, Any]) -> tuple[str, str, str]:
        return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]

    known = {key(obj) for obj in declared}
    manifest = yaml.safe_load_all(reveal(run.outputs["testPodManifest"]))
    return declared + [obj for obj in manifest if key(obj) not in known]


def skips(obj: dict[str, Any]) -> dict[str, str]:
    annotations = obj["metadata"].get("annotations") or {}
    return dict(
        value.split("=", 1) for name, value in annotations.items() if name.startswith(CHECKOV_SKIP_ANNOTATION)
    )


@pytest.mark.parametrize(
    ("stack", "overrides"),
    [
        ("dev", {}),
        ("prod", {}),
        ("dev", {"ack-rdma:testPodHostNetwork": True}),
        ("dev", {"ack-rdma:networkPlugin": "terway", "ack-rdma:podVswitchCidrs": ["192.168.16.0/20"]}),
    ],
    ids=["dev", "prod", "dev-host-network-test-pods", "dev-terway"],
)
def test_the_programs_manifests_pass_checkov_with_reasoned_skips_only(
    tmp_path: Path, stack: str, overrides: dict[str, object]
) -> None:
    objects = rendered_objects(stack, overrides)
    terway = overrides.get("ack-rdma:networkPlugin") == "terway"
    kinds = {obj["kind"] for obj in objects}
    assert kinds >= {"Namespace", "ServiceAccount", "DaemonSet", "Pod"}
    # A NetworkPolicy only where ACK enforces it; elsewhere the pods say so to checkov.
    assert ("NetworkPolicy" in kinds) == terway
    pods = [obj for obj in objects if obj["kind"] == "Pod"]
    assert pods and all(("CKV2_K8S_6" in skips(pod)) != terway for pod in pods)
    for index, obj in enumerate(objects):
        (tmp_path / f"{index:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml").write_text(
            manifests_yaml([obj])
        )
    skipped = 0
    for obj in objects:
        reasons = skips(obj)
        assert set(reasons) <= SKIPPABLE.get(obj["kind"], set()), obj["metadata"]["name"]
        assert all(len(reason.split()) >= 4 for reason in reasons.values()), reasons
        skipped += len(reasons)
    if overrides.get("ack-rdma:testPodHostNetwork"):
        assert all("CKV_K8S_19" in skips(pod) for pod in pods)

    result = scan(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = SUMMARY.search(result.stdout)
    assert summary is not None, result.stdout
    _, passed, failed, skipped_by_checkov, parse_errors = map(int, summary.groups())
    assert (failed, parse_errors) == (0, 0)
    assert passed > 0
    # Every annotation silences a check that applies to its object: none is stale or misspelt.
    assert skipped_by_checkov == skipped
