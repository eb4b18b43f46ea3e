"""Stack outputs as `pulumi stack output --json --show-secrets` prints them for the dev stack (the test pod
outputs made by the program's own builders), and a stand-in ``pulumi`` executable that prints them (this
machine has no Pulumi CLI)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from components.k8s_objects import TestPodSpec, build_test_objects, manifests_yaml, pod_names

REGISTRY = "ack-rdma-registry.cn-shanghai.cr.aliyuncs.com/ack-rdma"
TOOLS_IMAGE = f"{REGISTRY}/rdma-tools:0.1.0"

KUBECONFIG_YAML = """\
apiVersion: v1
clusters:
- cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: true
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: "kubernetes-admin"
  name: kubernetes-admin-c5e1f0c0d9b2a4e6f8a0b1c2d3e4f5a6b
current-context: kubernetes-admin-c5e1f0c0d9b2a4e6f8a0b1c2d3e4f5a6b
kind: Config
preferences: {}
users:
- name: "kubernetes-admin"
  user:
    token: ack-rdma-check-test-token
"""


def outputs(**changes: Any) -> dict[str, Any]:
    """The dev stack's outputs with test pods on; ``changes`` replace or (with None) drop keys."""
    spec = TestPodSpec(image=TOOLS_IMAGE)
    values: dict[str, Any] = {
        "clusterId": "c5e1f0c0d9b2a4e6f8a0b1c2d3e4f5a6b",
        "devicePluginNamespace": "kube-system",
        "kubeconfig": KUBECONFIG_YAML,
        "kubeconfigExpiration": "2026-05-02T09:30:00Z",
        "nodePoolId": "np8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f",
        "nodePoolIds": ["np8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f"],
        "pluginImage": f"{REGISTRY}/rdma-device-plugin:0.1.0@sha256:{'3f' * 32}",
        "rdmaResourceName": "rdma/hca",
        "securityGroupId": "sg-uf6fd7aj3s2zm9qhc1k4",
        "testCommands": {
            "server": "kubectl exec -n rdma-test rdma-test-0 -- ib_read_bw -q 30",
            "client": "kubectl exec -n rdma-test rdma-test-1 -- ib_read_bw -q 30 "
            "\"$(kubectl get pod -n rdma-test rdma-test-0 -o jsonpath='{.status.podIP}')\"",
        },
        "testPodManifest": manifests_yaml(build_test_objects(spec)),
        "testPods": {"enabled": True, "namespace": spec.namespace, "names": pod_names(spec)},
        "vpcId": "vpc-uf6k3ds8d2n9y2x7b1c0a",
        "vswitchIds": ["vsw-uf6n5q0b2m3xk7c8d9e1f"],
    }
    values.update(changes)
    return {key: value for key, value in values.items() if value is not None}


def write_outputs(path: Path, **changes: Any) -> Path:
    path.write_text(json.dumps(outputs(**changes), indent=2), encoding="utf-8")
    return path


def pulumi_stand_in(bin_dir: Path, stdout_file: Path, *, rc: int = 0, stderr: str = "") -> Path:
    """STAND-IN for the Pulumi CLI: records its arguments in ``bin_dir/pulumi.args`` and prints a file."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    stderr_file = bin_dir / "pulumi.stderr"
    stderr_file.write_text(stderr, encoding="utf-8")
    script = bin_dir / "pulumi"
    script.write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' \"$@\" > '{bin_dir / 'pulumi.args'}'\n"
        f"cat '{stdout_file}'\n"
        f"cat '{stderr_file}' >&2\n"
        f"exit {rc}\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script
