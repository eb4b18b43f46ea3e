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
TEST_POD_SERVICE_ACCOUNT = "rdma-test"
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
CHECKOV_SKIP_ANNOTATION = "checkov.io/skip"
# ib_read_bw busy-polls one core: a CPU limit below a whole core would throttle it and the test would measure
# the throttle. Its buffers (64 KiB per QP) and the pinned pages stay far below the memory limit.
TEST_POD_RESOURCES = {"requests": {"cpu": "1", "memory": "128Mi"}, "limits": {"cpu": "2", "memory": "512Mi"}}


def rdma_node_selector() -> dict[str, str]:
    """The node selector every RDMA workload uses; the node pool carries exactly this label."""
    return {RDMA_NODE_LABEL_KEY: RDMA_NODE_LABEL_VALUE}


def _pod_security_context() -> dict[str, Any]:
    """Every pod runs under the container runtime's default seccomp profile: RDMA verbs need only ioctl, mmap
    and mlock on /dev/infiniband, which it allows."""
    return {"seccompProfile": {"type": "RuntimeDefault"}}


def checkov_skips(reasons: Mapping[str, str]) -> dict[str, str]:
    """checkov's skip annotations (``checkov.io/skip<N>: <check>=<reason>``) for the object that needs them.

    A skip lives on the object it concerns, never in a global scan setting, so it says why this object does
    what the check flags.
    """
    for check, reason in reasons.items():
        # checkov splits the value at "=": a second one would garble the check id or the reason.
        if "=" in reason or not reason.strip():
            raise ValueError(f"skip reason for {check} must be non-empty and free of '=': {reason!r}")
    return {
        f"{CHECKOV_SKIP_ANNOTATION}{index}": f"{check}={reason}"
        for index, (check, reason) in enumerate(reasons.items(), start=1)
    }


def image_fields(image: str) -> tuple[dict[str, str], dict[str, str]]:
    """The container's ``image`` (and pull policy), and the checkov skip that a bare tag needs.

    A digest pins the image: kubelet's default pull policy then suffices. A tag is what a prebuilt image from
    the stack config may be, and what a built image is until ``pulumi up`` pushes it and learns its digest
    (preview, the offline plan): ``Always`` makes every start pull what the tag names now, with the pod's
    pull secret checked, instead of whatever an earlier pull left on the node.
    """
    if "@" in image:
        return {"image": image}, {}
    return {"image": image, "imagePullPolicy": "Always"}, {
        "CKV_K8S_43": "given by tag (a prebuilt image from the stack config, or a built one before pulumi up "
        "pushes it and pins it by digest); imagePullPolicy Always pulls what the tag names at each start",
    }


@dataclass(frozen=True, kw_only=True)
class TestPodSpec:
    """What the RDMA test pods look like; shared by the program, its stack output and the check command."""

    __test__ = False  # a spec, not a pytest test class

    namespace: str = defaults.TEST_POD_NAMESPACE
    """Namespace the pods run in: their own (see ``build_test_namespace``), never ``default``."""
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
    service_account: str = TEST_POD_SERVICE_ACCOUNT
    """The pods' own service account (no API token): the one ACR's credential helper gives a pull secret."""
    network_policy: bool = False
    """Admit a test pod's traffic from its pair only. Only where ACK enforces NetworkPolicy (Terway in
    shared-ENI mode); with Flannel ACK does not, and a policy would be a claim rather than a control."""


def pod_names(spec: TestPodSpec) -> list[str]:
    return [f"{spec.name_prefix}-{index}" for index in range(spec.count)]


def build_test_namespace(spec: TestPodSpec) -> dict[str, Any]:
    """The test pods' own namespace: the program creates it, and on destroy deletes it with its content."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": spec.namespace, "labels": dict(PART_OF_LABEL)},
    }


def build_test_service_account(spec: TestPodSpec) -> dict[str, Any]:
    """The test pods' service account: it carries the registry pull secret, the pods get no API token."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": spec.service_account,
            "namespace": spec.namespace,
            "labels": dict(PART_OF_LABEL),
        },
        "automountServiceAccountToken": False,
    }


def build_test_network_policy(spec: TestPodSpec) -> dict[str, Any]:
    """Admits traffic to a test pod from its pair only.

    perftest's TCP handshake (QP numbers, GIDs; port 18515) goes from the client pod to the server pod;
    the RDMA transfer itself bypasses the kernel and with it any NetworkPolicy. Host-network pods are out of
    a NetworkPolicy's reach altogether.
    """
    pair = {"matchLabels": {TEST_PAIR_LABEL_KEY: spec.name_prefix}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": spec.name_prefix, "namespace": spec.namespace, "labels": dict(PART_OF_LABEL)},
        "spec": {
            "podSelector": pair,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": pair}]}],
        },
    }


def _test_pod_skips(spec: TestPodSpec, image_skips: Mapping[str, str]) -> dict[str, str]:
    idle = "the pod idles in sleep infinity until a test runs in it by kubectl exec; nothing to probe"
    root = (
        "capabilities added to a container reach only uid 0 (Kubernetes sets no ambient capabilities) and "
        "RDMA memory registration needs IPC_LOCK"
    )
    reasons = {
        "CKV_K8S_8": idle,
        "CKV_K8S_9": idle,
        "CKV_K8S_23": root,
        "CKV_K8S_40": root,
        "CKV_K8S_25": "IPC_LOCK is the only capability added (pinning pages for RDMA memory registration)",
    }
    if not spec.network_policy:
        reasons["CKV2_K8S_6"] = (
            "ACK enforces NetworkPolicy only with Terway in shared-ENI mode; on this Flannel cluster a "
            "policy would restrict nothing"
        )
    if spec.host_network:
        reasons["CKV_K8S_19"] = (
            "RDMA_CM addresses the peer by an IP on an RDMA netdev; the VPC pod IP is on none, the node's "
            "bond0 address is"
        )
    return checkov_skips({**reasons, **image_skips})


def build_test_pods(spec: TestPodSpec) -> list[dict[str, Any]]:
    """Pods that idle until ``ib_read_bw`` is run in them, forced onto distinct nodes.

    The required anti-affinity makes the test cross the network: two pods on one node would talk over the
    HCA's loopback and prove nothing about the fabric.
    """
    image, image_skips = image_fields(spec.image)
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
            "serviceAccountName": spec.service_account,
            "automountServiceAccountToken": False,
            "securityContext": _pod_security_context(),
            "containers": [
                {
                    "name": "rdma-test",
                    **image,
                    "command": ["sleep", "infinity"],
                    "resources": {
                        "requests": dict(TEST_POD_RESOURCES["requests"]),
                        "limits": {**TEST_POD_RESOURCES["limits"], spec.resource_name: "1"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        # perftest writes nothing: it reads sysfs and talks to /dev/infiniband.
                        "readOnlyRootFilesystem": True,
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
                "metadata": {
                    "name": name,
                    "namespace": spec.namespace,
                    "labels": dict(pair_labels),
                    "annotations": _test_pod_skips(spec, image_skips),
                },
                "spec": pod_spec,
            }
        )
    return pods


def build_test_objects(spec: TestPodSpec) -> list[dict[str, Any]]:
    """Namespace, service account, NetworkPolicy (where enforced) and pods, in the order
    ``kubectl apply -f -`` needs them."""
    policy = [build_test_network_policy(spec)] if spec.network_policy else []
    return [build_test_namespace(spec), build_test_service_account(spec), *policy, *build_test_pods(spec)]


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


def _plugin_container(spec: DevicePluginSpec, image: Mapping[str, str]) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/healthz", "port": "metrics"}, "timeoutSeconds": 2}
    return {
        "name": "rdma-device-plugin",
        **image,
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
        },
        "volumeMounts": [
            {"name": "device-plugins", "mountPath": DEVICE_PLUGIN_DIR},
            {"name": "config", "mountPath": PLUGIN_CONFIG_DIR, "readOnly": True},
            {"name": "infiniband", "mountPath": INFINIBAND_DEV_DIR, "readOnly": True},
        ],
    }


def _daemon_set_skips(image_skips: Mapping[str, str]) -> dict[str, str]:
    root = (
        "uid 0 owns kubelet's device-plugins directory and kubelet.sock, which the plugin must create its "
        "socket in and dial; every capability is dropped"
    )
    return checkov_skips(
        {
            "CKV_K8S_19": "sysfs shows an HCA's netdevs only in their own network namespace, the host's",
            "CKV_K8S_23": root,
            "CKV_K8S_40": root,
            "CKV2_K8S_6": "a NetworkPolicy does not apply to host-network pods",
            **image_skips,
        }
    )


def build_daemon_set(spec: DevicePluginSpec) -> dict[str, Any]:
    """The plugin on every RDMA node, unprivileged: it reads sysfs and stats device nodes, nothing more."""
    image, image_skips = image_fields(spec.image)
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
        "securityContext": _pod_security_context(),
        "containers": [_plugin_container(spec, image)],
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
        "metadata": {
            "name": spec.name,
            "namespace": spec.namespace,
            "labels": spec.labels,
            "annotations": _daemon_set_skips(image_skips),
        },
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
