"""Every config key the program reads: type, default and description. Pulumi.yaml declares exactly these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components import defaults

PROJECT = "ack-rdma"

ConfigType = Literal["string", "integer", "boolean", "array", "object"]


@dataclass(frozen=True)
class ConfigKey:
    """One project-level config key as Pulumi.yaml declares it."""

    name: str
    type: ConfigType
    description: str
    default: object = None
    """``None``: no default; the key is optional and its absence means what the description says."""
    items: ConfigType | None = None
    """Item type of an array."""
    secret: bool = False

    @property
    def qualified(self) -> str:
        return f"{PROJECT}:{self.name}"

    def declaration(self) -> dict[str, object]:
        """The key's entry under ``config:`` in Pulumi.yaml."""
        entry: dict[str, object] = {"type": self.type, "description": self.description}
        if self.items is not None:
            entry["items"] = {"type": self.items}
        if self.secret:
            entry["secret"] = True
        if self.default is not None:
            entry["default"] = self.default
        return entry


NODE_POOL_FIELDS = (
    "name",
    "instanceTypes",
    "desiredSize",
    "labels",
    "taint",
    "deploymentSet",
    "existingInstances",
    "systemDiskCategory",
    "systemDiskSize",
)

KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("namePrefix", "string", "Prefix of every cloud-side resource name.", defaults.NAME_PREFIX),
    ConfigKey("vpcCidr", "string", "Address range of the VPC.", defaults.VPC_CIDR),
    ConfigKey(
        "vswitchCidr", "string", "Address range of the vSwitch; inside vpcCidr.", defaults.VSWITCH_CIDR
    ),
    ConfigKey(
        "zoneId",
        "string",
        "Zone of the vSwitch. Unset: the first zone of the region that sells the first of instanceTypes.",
    ),
    ConfigKey(
        "sshIngressCidrs",
        "array",
        "CIDRs allowed to SSH (tcp/22) into the nodes. Empty: none; 0.0.0.0/0 only if you list it.",
        [],
        items="string",
    ),
    ConfigKey(
        "apiServerIngressCidrs",
        "array",
        "CIDRs allowed to reach tcp/6443 on members of the cluster security group. Empty: none.",
        [],
        items="string",
    ),
    ConfigKey("clusterSpec", "string", "ACK edition: ack.pro.small or ack.standard.", defaults.CLUSTER_SPEC),
    ConfigKey(
        "kubernetesVersion",
        "string",
        "Kubernetes version of the cluster, e.g. 1.33.3-aliyun.1. Unset: the newest ACK offers at creation "
        "(later releases do not upgrade the cluster; set this key to upgrade).",
    ),
    ConfigKey("podCidr", "string", "Flannel pod range; outside the VPC and serviceCidr.", defaults.POD_CIDR),
    ConfigKey("serviceCidr", "string", "Service range; outside the VPC and podCidr.", defaults.SERVICE_CIDR),
    ConfigKey(
        "newNatGateway", "boolean", "Create a NAT gateway for outbound traffic.", defaults.NEW_NAT_GATEWAY
    ),
    ConfigKey(
        "apiServerInternet",
        "boolean",
        "Expose the API server on an internet-facing SLB (the program deploys Kubernetes objects "
        "through it).",
        defaults.API_SERVER_INTERNET,
    ),
    ConfigKey(
        "deletionProtection",
        "boolean",
        "Protect the cluster from deletion (ACK API and Pulumi protect).",
        defaults.DELETION_PROTECTION,
    ),
    ConfigKey(
        "addons",
        "array",
        "ACK addons installed at creation: objects {name, config (string or object), version, disabled}. "
        "ACK ignores later changes to this list. For ACR Enterprise Edition pulls, add "
        "managed-aliyun-acr-credential-helper and configure it for the instance.",
        [{"name": name} for name in defaults.ADDON_NAMES],
        items="object",
    ),
    ConfigKey(
        "kubeconfigDurationMinutes",
        "integer",
        "Lifetime of the kubeconfig certificate minted on each run (15-4320 minutes).",
        defaults.KUBECONFIG_DURATION_MINUTES,
    ),
    ConfigKey(
        "nodePoolName", "string", "Name of the RDMA node pool (single-pool form).", defaults.NODE_POOL_NAME
    ),
    ConfigKey(
        "instanceTypes",
        "array",
        "RDMA instance types in purchase priority (SCC with RoCE). Also the default of every "
        "nodePools entry.",
        list(defaults.INSTANCE_TYPES),
        items="string",
    ),
    ConfigKey(
        "desiredSize",
        "integer",
        "Number of RDMA nodes to buy (single-pool form; default of nodePools entries).",
        defaults.DESIRED_SIZE,
    ),
    ConfigKey(
        "nodeLabels",
        "object",
        "Extra node labels (string to string); aliyun.accelerator/rdma=true is always added.",
        {},
    ),
    ConfigKey(
        "nodeTaint",
        "string",
        "Taint of the RDMA nodes as key=value:Effect or key:Effect. Unset: no taint. RDMA workloads of this "
        "program tolerate it.",
    ),
    ConfigKey(
        "deploymentSet",
        "boolean",
        "Put the RDMA nodes in a LowLatency deployment set.",
        defaults.DEPLOYMENT_SET,
    ),
    ConfigKey(
        "existingInstances",
        "array",
        "ECS instance ids to attach to the pool instead of buying (disks kept, names kept). Empty: buy "
        "desiredSize instances.",
        [],
        items="string",
    ),
    ConfigKey(
        "systemDiskCategory",
        "string",
        "System disk category of the RDMA nodes.",
        defaults.SYSTEM_DISK_CATEGORY,
    ),
    ConfigKey(
        "systemDiskSize",
        "integer",
        "System disk size of the RDMA nodes in GiB.",
        defaults.SYSTEM_DISK_SIZE_GIB,
    ),
    ConfigKey(
        "nodePools",
        "array",
        "Several RDMA node pools: objects with keys " + ", ".join(NODE_POOL_FIELDS) + " (labels an object, "
        "taint a string). Unset keys take the single-pool keys above. Empty: one pool from those keys.",
        [],
        items="object",
    ),
    ConfigKey(
        "keyName", "string", "ECS key pair for node login. Set exactly one of keyName and nodePassword."
    ),
    ConfigKey(
        "nodePassword",
        "string",
        "Node login password (pulumi config set --secret). Set exactly one of keyName and nodePassword.",
        secret=True,
    ),
    ConfigKey(
        "pluginConfig",
        "object",
        'The device plugin\'s config.json: {"mode": "hca"}, {"mode": "sriov", "pfNetdevices": [...]} or the '
        "pool format with configList. Checked by the plugin's own validator.",
        dict(defaults.PLUGIN_CONFIG),
    ),
    ConfigKey(
        "pluginMetricsPort",
        "integer",
        "Port of the plugin's /metrics and /healthz on the node IP (the plugin uses the host network).",
        defaults.PLUGIN_METRICS_PORT,
    ),
    ConfigKey(
        "pluginImage",
        "string",
        "Prebuilt plugin image with its registry host (pin it by digest). Unset: build plugin_image/ "
        "and push it to ACR. When set, testPodImage is required.",
    ),
    ConfigKey("imageVersion", "string", "Tag of the images this program builds.", defaults.IMAGE_VERSION),
    ConfigKey(
        "imageRevision",
        "string",
        "Source revision in the OCI revision label of the images this program builds. Unset: the last "
        "commit that changed plugin_image/ (git); outside a git checkout the label stays empty, with a "
        "warning.",
    ),
    ConfigKey(
        "imageSource",
        "string",
        "Repository URL in the OCI source label of the images this program builds. Unset: no source label.",
    ),
    ConfigKey(
        "registryEdition",
        "string",
        "ACR edition the images are pushed to: enterprise (an existing instance; temporary credentials) or "
        "personal (registryUsername and the secret registryPassword; pods pull with a pull secret).",
        defaults.REGISTRY_EDITION,
    ),
    ConfigKey(
        "registryInstanceId", "string", "ACR Enterprise Edition instance id (cri-...); needed for enterprise."
    ),
    ConfigKey(
        "registryHost",
        "string",
        "Registry host in image tags, e.g. <instance>-registry.<region>.cr.aliyuncs.com. Needed for "
        "enterprise; personal defaults to registry.<region>.aliyuncs.com.",
    ),
    ConfigKey(
        "registryNamespace", "string", "ACR namespace created for the images.", defaults.REGISTRY_NAMESPACE
    ),
    ConfigKey("registryUsername", "string", "ACR Personal Edition login; needed for personal."),
    ConfigKey(
        "registryPassword",
        "string",
        "ACR Personal Edition password (pulumi config set --secret); needed for personal.",
        secret=True,
    ),
    ConfigKey(
        "testPods",
        "boolean",
        "Run the two RDMA test pods. The testPodManifest output holds them either way.",
        defaults.TEST_PODS,
    ),
    ConfigKey(
        "testPodImage",
        "string",
        "Image of the test pods (perftest inside). Unset: the tools image this program builds.",
    ),
    ConfigKey(
        "checkMinGbits",
        "integer",
        "Average Gbit/s that ack-rdma-check expects between the test pods (exported as the checkMinGbits "
        "output). SCC ecs.scch5 RoCE gives about 46.",
        defaults.CHECK_MIN_GBITS,
    ),
    ConfigKey(
        "testPodNamespace",
        "string",
        "Namespace of the test pods, created (and on destroy deleted) by the program: a name of its own.",
        defaults.TEST_POD_NAMESPACE,
    ),
    ConfigKey(
        "testPodHostNetwork",
        "boolean",
        "Run the test pods in the host network (needed for RDMA_CM, which cannot use the VPC pod IP).",
        defaults.TEST_POD_HOST_NETWORK,
    ),
)

KEYS_BY_NAME = {key.name: key for key in KEYS}
