"""Pure builders for every Kubernetes object the program declares.

Each builder returns a plain ``kubectl apply``-ready dict (camelCase keys, ``apiVersion``/``kind`` set), so
the same objects feed the Pulumi components, the offline plan renderer and the verification command.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from components import defaults

RDMA_NODE_LABEL_KEY = "aliyun.accelerator/rdma"
RDMA_NODE_LABEL_VALUE = "true"
DEFAULT_RESOURCE_NAME = defaults.PLUGIN_RESOURCE_NAME
TEST_POD_APP_LABEL = "rdma-test"
TEST_PAIR_LABEL_KEY = "ack-rdma/test-pair"
HOSTNAME_TOPOLOGY_KEY = "kubernetes.io/hostname"
PLUGIN_APP_LABEL = "rdma-device-plugin"
PART_OF_LABEL = {"app.kubernetes.io/part-of": "ack-rdma"}
# The directory the original Mellanox plugin (and Alibaba's image built from it) reads its config from.
PLUGIN_CONFIG_DIR = "/k8s-rdma-sriov-dev-plugin"
PLUGIN_CONFIG_FILE = "config.json"
DEVICE_PLUGIN_DIR = "/var/lib/kubelet/device-plugins"
INFINIBAND_DEV_DIR = "/dev/infiniband"
CONFIG_HASH_ANNOTATION = "ack-rdma/config-sha256"


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
    image_pull_secrets: tuple[str, ...] = ()
    """Secrets to pull ``image`` with (ACR Personal Edition)."""


def pod_names(spec: TestPodSpec) -> list[str]:
    return [f"{spec.name_prefix}-{index}" for index in range(spec.count)]


def build_test_pods(spec: TestPodSpec) -> list[dict[str, Any]]:
    """Pods that idle until ``ib_read_bw`` is run in them, forced onto distinct nodes.

    The required anti-affinity makes the test cross the network: two pods on one node would talk over the
    HCA's loopback and prove nothing about the fabric.
    """
    pair_labels = {"app.kubernetes.io/name": TEST_POD_APP_LABEL, TEST_PAIR_LABEL_KEY: spec.name_prefix}
    pods: list[dict[str, Any]] = []
    for name in pod_names(spec):
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
        if spec.image_pull_secrets:
            pod_spec["imagePullSecrets"] = [{"name": secret} for secret in spec.image_pull_secrets]
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": spec.namespace, "labels": dict(pair_labels)},
                "spec": pod_spec,
            }
        )
    return pods


@dataclass(frozen=True, kw_only=True)
class DevicePluginSpec:
    """What the device plugin's ConfigMap, ServiceAccount and DaemonSet look like."""

    namespace: str = defaults.PLUGIN_NAMESPACE
    """Namespace of all three objects."""
    name: str = PLUGIN_APP_LABEL
    """Name of the DaemonSet and its ServiceAccount."""
    config_map_name: str = "rdma-devices"
    """Name of the ConfigMap holding ``config.json``."""
    config_json: str
    """The plugin's ``config.json``, already accepted by the plugin's own validator."""
    image: str
    """Plugin image reference, with its full registry host (ideally pinned by digest)."""
    node_selector: Mapping[str, str] = field(default_factory=rdma_node_selector)
    """Nodes the plugin runs on: the RDMA node pool's label."""
    tolerations: tuple[Mapping[str, str], ...] = ()
    """Tolerations for the RDMA node pools' taints (CriticalAddonsOnly is always tolerated)."""
    metrics_port: int = defaults.PLUGIN_METRICS_PORT
    """Port of ``/metrics`` and ``/healthz``, bound on the node's IP (the pod shares the host network)."""
    image_pull_secrets: tuple[str, ...] = ()
    """Secrets to pull ``image`` with (ACR Personal Edition)."""

    @property
    def labels(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": PLUGIN_APP_LABEL, **PART_OF_LABEL}


def build_config_map(spec: DevicePluginSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": spec.config_map_name, "namespace": spec.namespace, "labels": spec.labels},
        "data": {PLUGIN_CONFIG_FILE: spec.config_json},
    }


def build_service_account(spec: DevicePluginSpec) -> dict[str, Any]:
    # The plugin talks to kubelet over its unix socket only: no API token in the pod.
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": spec.labels},
        "automountServiceAccountToken": False,
    }


def _plugin_container(spec: DevicePluginSpec) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/healthz", "port": "metrics"}, "timeoutSeconds": 2}
    return {
        "name": "rdma-device-plugin",
        "image": spec.image,
        "env": [
            {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "RDMA_DP_CONFIG", "value": f"{PLUGIN_CONFIG_DIR}/{PLUGIN_CONFIG_FILE}"},
            {"name": "RDMA_DP_DEVICE_PLUGIN_DIR", "value": DEVICE_PLUGIN_DIR},
            # The node IP, not 0.0.0.0: kubelet probes the pod IP (the node IP under hostNetwork), and the
            # RoCE and other host interfaces need not expose the endpoint.
            {"name": "RDMA_DP_METRICS_ADDRESS", "value": f"$(HOST_IP):{spec.metrics_port}"},
            {"name": "RDMA_DP_LOG_FORMAT", "value": "json"},
        ],
        "ports": [{"name": "metrics", "containerPort": spec.metrics_port, "protocol": "TCP"}],
        "livenessProbe": {**probe, "initialDelaySeconds": 10, "periodSeconds": 10, "failureThreshold": 3},
        "readinessProbe": {**probe, "initialDelaySeconds": 2, "periodSeconds": 5, "failureThreshold": 2},
        "resources": {
            "requests": {"cpu": "20m", "memory": "48Mi"},
            "limits": {"cpu": "200m", "memory": "160Mi"},
        },
        "securityContext": {
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "device-plugins", "mountPath": DEVICE_PLUGIN_DIR},
            {"name": "config", "mountPath": PLUGIN_CONFIG_DIR, "readOnly": True},
            {"name": "infiniband", "mountPath": INFINIBAND_DEV_DIR, "readOnly": True},
        ],
    }


def build_daemon_set(spec: DevicePluginSpec) -> dict[str, Any]:
    """The plugin on every RDMA node, unprivileged: it reads sysfs and stats device nodes, nothing more."""
    tolerations = [{"key": "CriticalAddonsOnly", "operator": "Exists"}]
    tolerations.extend(dict(toleration) for toleration in spec.tolerations)
    pod_spec: dict[str, Any] = {
        "serviceAccountName": spec.name,
        "automountServiceAccountToken": False,
        "priorityClassName": "system-node-critical",
        "nodeSelector": dict(sorted(spec.node_selector.items())),
        "tolerations": tolerations,
        # sysfs lists an HCA's netdevs only in their own network namespace: the plugin must share the host's.
        "hostNetwork": True,
        "dnsPolicy": "ClusterFirstWithHostNet",
        "containers": [_plugin_container(spec)],
        "volumes": [
            {"name": "device-plugins", "hostPath": {"path": DEVICE_PLUGIN_DIR, "type": "Directory"}},
            {"name": "config", "configMap": {"name": spec.config_map_name}},
            # Allocate checks that the device nodes it hands to a pod exist (stat only, never opened).
            # DirectoryOrCreate: the plugin must start, and report zero healthy devices, on a node whose RDMA
            # driver has not created the directory yet.
            {"name": "infiniband", "hostPath": {"path": INFINIBAND_DEV_DIR, "type": "DirectoryOrCreate"}},
        ],
    }
    if spec.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": secret} for secret in spec.image_pull_secrets]
    config_hash = hashlib.sha256(spec.config_json.encode()).hexdigest()
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": spec.labels},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": PLUGIN_APP_LABEL}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                # A changed config.json rolls the pods: the plugin reads it once at start.
                "metadata": {"labels": spec.labels, "annotations": {CONFIG_HASH_ANNOTATION: config_hash}},
                "spec": pod_spec,
            },
        },
    }


def build_registry_pull_secret(
    *, namespace: str, name: str, host: str, username: str, password: str
) -> dict[str, Any]:
    """A ``kubernetes.io/dockerconfigjson`` Secret for one registry host."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    docker_config = {"auths": {host: {"username": username, "password": password, "auth": auth}}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(PART_OF_LABEL)},
        "stringData": {".dockerconfigjson": json.dumps(docker_config, sort_keys=True)},
    }


def manifests_yaml(objects: Iterable[Mapping[str, Any]]) -> str:
    """Objects as one multi-document YAML stream, keys in builder order (``kubectl apply -f -`` ready)."""
    return yaml.safe_dump_all([dict(obj) for obj in objects], sort_keys=False, explicit_start=True)
