"""scripts/scan-manifests.sh: checkov over rendered manifests; skips only on the object, with a reason."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

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
