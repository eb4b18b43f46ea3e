"""ErdmaController: the ``ack-erdma-controller`` add-on that turns eRDMA-capable nodes into RDMA nodes.

Node pools have no ERI switch (neither ``cs.NodePool`` nor CreateClusterNodePool has one): after a node is
Ready the add-on's controller switches its primary ENI to ``HighPerformance`` (or attaches ERIs), its agent
DaemonSet installs the eRDMA driver in the chosen mode, and its own device plugin advertises ``aliyun/erdma``.
Our plugin serves ``rdma/hca`` on the same ``/dev/infiniband`` nodes beside it.

It is a ``cs.KubernetesAddon`` of its own, not an entry of the cluster's ``addons``: the provider sends that
list only in CreateCluster and ignores later changes to it (terraform-provider-alicloud at the revision of
offline_engine/provider_constraints.yaml, resource_alicloud_cs_managed_kubernetes.go: ``addons`` is read
only by the Create function, line 949; field report #5907), whereas ``alicloud_cs_kubernetes_addon`` updates
``config`` and ``version`` in place (resource_alicloud_cs_kubernetes_addon.go line 192; ``cluster_id`` and
``name`` Required+ForceNew, ``config``/``version`` Optional+Computed).

The config keys are the controller's own (AliyunContainerService/alibabacloud-erdma-controller,
deploy/helm/values.yaml ``agent.preferDriver``/``agent.allocateAllDevices``, passed to the agent as
``--prefer-driver``/``--allocate-all-devices``; drivers registered in internal/drivers: ``default``,
``compat``, ``ofed``) and the ones ACK's console shows for the add-on (ACK docs "Use eRDMA to accelerate
container networks": preferDriver default/compat/ofed, and whether to assign all eRDMA devices of a node to a
pod).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_alicloud as alicloud

from components import defaults
from components.resource_options import child_options

ADDON_NAME: Final = "ack-erdma-controller"
DRIVER_MODES: Final = ("default", "compat", "ofed")
"""``default``: iWARP-like, connections through RDMA CM; ``compat``: RoCEv2-style GIDs, out-of-band setup
works; ``ofed``: the OFED stack, for GPU instance types (NCCL)."""
# Terway's own eRDMA switch: the eni_conf field enable_erdma (AliyunContainerService/terway,
# types/daemon/config.go: EnableERDMA `json:"enable_erdma"`). With it on, Terway advertises aliyun/erdma too.
TERWAY_ERDMA_SWITCH: Final = "enable_erdma"
# Terway manages only ENIs carrying these tags once eni_conf has an eni_tag_filter (ACK docs "Configure a
# filter for ENIs"; Terway >= 1.5.5), which keeps it off the ENIs the eRDMA controller converts.
TERWAY_ENI_WHITELIST: Final = {"eni_tag_filter": {"creator": "terway"}}


@dataclass(frozen=True, kw_only=True)
class ErdmaControllerArgs:
    """How the add-on drives the eRDMA devices of every node."""

    driver: str = defaults.ERDMA_DRIVER
    """eRDMA driver mode (one of ``DRIVER_MODES``); GPU eRDMA families need ``ofed``."""
    allocate_all_devices: bool = defaults.ERDMA_ALLOCATE_ALL_DEVICES
    """Give a pod every eRDMA device of its node (``False``: one device by NUMA, which needs the static CPU
    manager policy)."""
    version: str | None = None
    """Add-on version; ``None`` installs the one ACK offers and keeps it."""


def addon_config(args: ErdmaControllerArgs) -> dict[str, Any]:
    """The add-on config ACK passes to the controller's chart."""
    if args.driver not in DRIVER_MODES:
        raise ValueError(f"eRDMA driver {args.driver[:32]!r} is not one of {', '.join(DRIVER_MODES)}")
    return {"agent": {"preferDriver": args.driver, "allocateAllDevices": args.allocate_all_devices}}


def _addon_config_object(config: str | Mapping[str, Any] | None) -> Mapping[str, Any]:
    if isinstance(config, Mapping):
        return config
    if not config:
        return {}
    try:
        parsed = json.loads(config)
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def is_terway(addon_name: str) -> bool:
    return addon_name.startswith("terway")


def cluster_addon_problems(
    addons: Sequence[tuple[str, str | Mapping[str, Any] | None]],
) -> list[tuple[int, str]]:
    """What the cluster's create-time add-on list, as (name, config) pairs, must not hold next to this
    component, by position: the eRDMA add-on itself (it is managed here, where it can change), or Terway with
    its own eRDMA switch on (two plugins would both claim ``aliyun/erdma`` on the same ENIs)."""
    problems = []
    for index, (name, config) in enumerate(addons):
        if name == ADDON_NAME:
            problems.append(
                (
                    index,
                    f"lists {ADDON_NAME}; remove it: the program installs it as an add-on of its own from "
                    "ack-rdma:erdmaDriver and ack-rdma:erdmaAllocateAllDevices, where changes take effect.",
                )
            )
        elif is_terway(name) and _addon_config_object(config).get(TERWAY_ERDMA_SWITCH) in (True, "true"):
            problems.append(
                (
                    index,
                    f"turns on Terway's own eRDMA support ({name}: {TERWAY_ERDMA_SWITCH}); remove it: "
                    f"{ADDON_NAME} manages the eRDMA devices and both would advertise aliyun/erdma.",
                )
            )
    return problems


def terway_whitelist_warning(addon_names: Sequence[str]) -> str | None:
    """The step a Terway cluster needs before eRDMA nodes join, or ``None`` without Terway."""
    terway = [name for name in addon_names if is_terway(name)]
    if not terway:
        return None
    return (
        f"Terway ({', '.join(terway)}) manages every ENI of a node unless eni_conf in "
        f"kube-system/eni-config has an ENI whitelist; add {json.dumps(TERWAY_ENI_WHITELIST)} to it (ACK: "
        f"Configure a filter for ENIs) before the RDMA nodes join, or Terway may take the ENIs {ADDON_NAME} "
        "converts. The program does not write eni-config: ACK owns that ConfigMap and eni_conf is one JSON "
        "value that cannot be merged."
    )


class ErdmaController(pulumi.ComponentResource):
    """The ``ack-erdma-controller`` add-on of the cluster, with its config from the stack."""

    config_json: str
    driver: str

    def __init__(
        self,
        name: str,
        args: ErdmaControllerArgs,
        *,
        cluster_id: pulumi.Input[str],
        cluster_addon_names: Sequence[str] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ack-rdma:erdma:ErdmaController", name, None, opts)
        self.driver = args.driver
        self.config_json = json.dumps(addon_config(args), sort_keys=True, separators=(",", ":"))
        warning = terway_whitelist_warning(cluster_addon_names)
        if warning is not None:
            pulumi.log.warn(warning, resource=self)
        addon = alicloud.cs.KubernetesAddon(
            f"{name}-addon",
            cluster_id=cluster_id,
            name=ADDON_NAME,
            config=self.config_json,
            version=args.version,
            opts=child_options(self, defaults.ADDON_TIMEOUTS),
        )
        self.addon_id = addon.id
        self.register_outputs({"addonId": self.addon_id, "driver": self.driver, "config": self.config_json})
