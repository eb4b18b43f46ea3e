"""Pure builders for every Kubernetes object the program declares.

Each builder returns a plain ``kubectl apply``-ready dict (camelCase keys, ``apiVersion``/``kind`` set), so
the same objects feed the Pulumi components, the offline plan renderer and the verification command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RDMA_NODE_LABEL_KEY = "aliyun.accelerator/rdma"
RDMA_NODE_LABEL_VALUE = "true"
DEFAULT_RESOURCE_NAME = "rdma/hca"
TEST_POD_APP_LABEL = "rdma-test"
TEST_PAIR_LABEL_KEY = "ack-rdma/test-pair"
HOSTNAME_TOPOLOGY_KEY = "kubernetes.io/hostname"


def rdma_node_selector() -> dict[str, str]:
    """The node selector every RDMA workload uses; the node pool carries exactly this label."""
    return {RDMA_NODE_LABEL_KEY: RDMA_NODE_LABEL_VALUE}


@dataclass(frozen=True, kw_only=True)
class TestPodSpec:
    """What the RDMA test pods look like; shared by the program, its stack output and the check command."""

    __test__ = False  # a spec, not a pytest test class

    namespace: str = "default"
    """Namespace the pods run in."""
    name_prefix: str = "rdma-test"
    """Pods are named ``<name_prefix>-0`` (server) and ``<name_prefix>-1`` (client)."""
    image: str
    """Image with perftest (``ib_read_bw``) installed: the tools image built from plugin_image/."""
    resource_name: str = DEFAULT_RESOURCE_NAME
    """Extended resource each pod requests one of."""
    node_selector: Mapping[str, str] = field(default_factory=rdma_node_selector)
    """Where the pods may run: the RDMA node pool's label."""
    host_network: bool = False
    """Host network for RDMA_CM, which cannot use the VPC pod IP (the bond0 address is reachable instead)."""
    tolerations: tuple[Mapping[str, str], ...] = ()
    """Tolerations for the RDMA node pool's taint, if it has one."""
    count: int = 2
    """Number of pods; each lands on a different node."""


def test_pod_names(spec: TestPodSpec) -> list[str]:
    return [f"{spec.name_prefix}-{index}" for index in range(spec.count)]


def build_test_pods(spec: TestPodSpec) -> list[dict[str, Any]]:
    """Pods that idle until ``ib_read_bw`` is run in them, forced onto distinct nodes.

    The required anti-affinity makes the test cross the network: two pods on one node would talk over the
    HCA's loopback and prove nothing about the fabric.
    """
    pair_labels = {"app.kubernetes.io/name": TEST_POD_APP_LABEL, TEST_PAIR_LABEL_KEY: spec.name_prefix}
    pods: list[dict[str, Any]] = []
    for name in test_pod_names(spec):
        pod_spec: dict[str, Any] = {
            "nodeSelector": dict(sorted(spec.node_selector.items())),
            "affinity": {
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "labelSelector": {"matchLabels": {TEST_PAIR_LABEL_KEY: spec.name_prefix}},
                            "topologyKey": HOSTNAME_TOPOLOGY_KEY,
                        }
                    ]
                }
            },
            # `sleep` as PID 1 ignores SIGTERM: without a short grace period every delete waits 30 s.
            "terminationGracePeriodSeconds": 2,
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "rdma-test",
                    "image": spec.image,
                    "command": ["sleep", "infinity"],
                    "resources": {"limits": {spec.resource_name: "1"}},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        # RDMA memory registration pins pages: IPC_LOCK is the one capability it needs.
                        "capabilities": {"drop": ["ALL"], "add": ["IPC_LOCK"]},
                    },
                }
            ],
        }
        if spec.host_network:
            pod_spec["hostNetwork"] = True
            pod_spec["dnsPolicy"] = "ClusterFirstWithHostNet"
        if spec.tolerations:
            pod_spec["tolerations"] = [dict(toleration) for toleration in spec.tolerations]
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": spec.namespace, "labels": dict(pair_labels)},
                "spec": pod_spec,
            }
        )
    return pods
