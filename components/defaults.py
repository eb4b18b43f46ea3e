"""Named defaults of the stack config, in one place.

Pulumi.yaml declares the same defaults for the CLI; a test keeps the two in step.
"""

from __future__ import annotations

from typing import Final

NAME_PREFIX: Final = "ack-rdma"

VPC_CIDR: Final = "192.168.0.0/16"
VSWITCH_CIDR: Final = "192.168.0.0/20"
# ACK's own defaults for Flannel clusters; both lie outside VPC_CIDR.
POD_CIDR: Final = "172.20.0.0/16"
SERVICE_CIDR: Final = "172.21.0.0/20"

CLUSTER_SPEC: Final = "ack.pro.small"
NEW_NAT_GATEWAY: Final = True
DELETION_PROTECTION: Final = False
# The CNI, installed at creation (ACK cannot switch it later). Flannel routes pods over VPC routes from
# POD_CIDR; Terway gives pods addresses from pod vSwitches and, in shared-ENI mode, is the only CNI with
# which ACK enforces NetworkPolicy (ACK doc "Use network policies": "Not supported" with Flannel).
FLANNEL: Final = "flannel"
TERWAY: Final = "terway"
NETWORK_PLUGINS: Final = (FLANNEL, TERWAY)
NETWORK_PLUGIN: Final = FLANNEL
# Terway shared ENI (no IPVlan) with NetworkPolicy on, as ACK's Terraform guide configures the add-on.
TERWAY_ADDON_CONFIG: Final = '{"IPVlan":"false","NetworkPolicy":"true"}'
# A kubeconfig minted by each run; long enough for a working day of `refresh`/`destroy` without
# `--run-program`, short enough that a leaked state file stops granting access soon.
KUBECONFIG_DURATION_MINUTES: Final = 1440
KUBECONFIG_DURATION_RANGE: Final = (15, 4320)
# kube-proxy mode (create-only). ACK deprecates ipvs from Kubernetes 1.35, and `newest` is what an unpinned
# stack gets: iptables is the mode every supported version keeps. RDMA traffic bypasses kube-proxy entirely,
# and a cluster this size (tens of Services) sees no difference between the two.
KUBE_PROXY_MODE: Final = "iptables"
KUBE_PROXY_MODES: Final = ("iptables", "ipvs")
IPVS_DEPRECATED_FROM: Final = (1, 35)

NODE_POOL_NAME: Final = "rdma"
# Purchase priority (components/instance_catalogue.py holds each type's published figures and source):
# eRDMA-capable general-purpose types, g8i (Intel) first, g8ae (AMD) when g8i has no stock. 16 vCPU with
# 12 Gbit/s baseline and 25 burst is the smallest step whose RDMA bandwidth stands out from a laptop's TCP.
INSTANCE_TYPES: Final = ("ecs.g8i.4xlarge", "ecs.g8ae.4xlarge")
DESIRED_SIZE: Final = 2
# Both families take ESSD and ESSD AutoPL system disks only (no cloud_efficiency / cloud_ssd).
SYSTEM_DISK_CATEGORY: Final = "cloud_essd"
SYSTEM_DISK_SIZE_GIB: Final = 120
DEPLOYMENT_SET: Final = False
# containerd's memlock limit for the RDMA pools: the provider's upper bound (containerd_config.limit_mem_lock,
# ValidateNullableIntBetween(65536, 9007199254740991); "infinity" is not accepted). ACK raises it itself only
# when RDMA devices exist at node init, and eRDMA devices appear after the node is Ready.
RDMA_MEMLOCK_LIMIT: Final = 9007199254740991

# The untainted pool CoreDNS and the add-ons (the eRDMA controller among them) run on, whatever the RDMA
# pools' taints: the smallest g8i/g8ae step with room for them.
SYSTEM_POOL_NAME: Final = "system"
SYSTEM_POOL_INSTANCE_TYPES: Final = ("ecs.g8i.xlarge", "ecs.g8ae.xlarge")
SYSTEM_POOL_SIZE: Final = 1
SYSTEM_POOL_DISK_SIZE_GIB: Final = 60

# ack-erdma-controller: compat gives RoCEv2-style GIDs, so perftest connects out of band like the
# walkthrough's RoCE (default needs RDMA CM); every eRDMA device of a node goes to the pod asking for RDMA.
ERDMA_DRIVER: Final = "compat"
ERDMA_ALLOCATE_ALL_DEVICES: Final = True

PLUGIN_CONFIG: Final[dict[str, object]] = {"mode": "hca"}
PLUGIN_NAMESPACE: Final = "kube-system"
PLUGIN_METRICS_PORT: Final = 9530
IMAGE_VERSION: Final = "0.1.0"
REGISTRY_EDITION: Final = "enterprise"
REGISTRY_NAMESPACE: Final = "ack-rdma"
PLUGIN_REPOSITORY: Final = "rdma-device-plugin"
TOOLS_REPOSITORY: Final = "rdma-tools"


TEST_PODS: Final = False
TEST_POD_NAMESPACE: Final = "rdma-test"
TEST_POD_HOST_NETWORK: Final = False

# Explicit timeouts: the provider's own (90 min create) hide a stuck purchase for an hour and a half.
CLUSTER_TIMEOUTS: Final = {"create": "45m", "update": "45m", "delete": "45m"}
NODE_POOL_TIMEOUTS: Final = {"create": "60m", "update": "60m", "delete": "45m"}
NETWORK_TIMEOUTS: Final = {"create": "10m", "update": "10m", "delete": "20m"}
ADDON_TIMEOUTS: Final = {"create": "20m", "update": "20m", "delete": "20m"}
IMAGE_BUILD_TIMEOUTS: Final = {"create": "30m", "update": "30m", "delete": "5m"}
KUBERNETES_OBJECT_TIMEOUTS: Final = {"create": "10m", "update": "10m", "delete": "5m"}
PLUGIN_RESOURCE_NAME: Final = "rdma/hca"
