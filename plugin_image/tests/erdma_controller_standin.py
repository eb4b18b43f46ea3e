"""STAND-IN, for tests only: the device plugin that Alibaba's ack-erdma-controller runs on every eRDMA node.

It behaves like AliyunContainerService/alibabacloud-erdma-controller's internal/deviceplugin/deviceplugin.go
(facts read from that file and internal/drivers/utils_linux.go, internal/types, internal/consts):
- resource ``aliyun/erdma``, socket ``<unix time>-erdma.sock`` in the device-plugin directory; on start it
  unlinks every file there whose name matches ``.*-erdma.sock`` (its cleanup());
- 200 IDs per eRDMA device, ``<ibdev>/<i>``, all Healthy, with the device's NUMA node as topology
  (``device/numa_node``, -1 read as 0);
- a device's paths are ``/dev/infiniband/uverbsN`` of the ibdev (``class/infiniband_verbs/*/ibdev``) plus
  ``/dev/infiniband/rdma_cm`` when it exists; Allocate with allocAllDevices (the add-on's usual setting)
  gives every device's paths, read-write, and ``SMCR_PNET`` = the first device's MAC, upper case, no colons,
  to the first container of the call only (its `occupied` map spans the call; kubelet sends one container
  per call);
It serves real gRPC on a real unix socket and registers with the kubelet stand-in like the real one.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
from rdma_device_plugin.api import api_pb2, api_pb2_grpc

RESOURCE_NAME = "aliyun/erdma"
IDS_PER_DEVICE = 200
SMCR_PNET_ENV = "SMCR_PNET"
_CLEANUP = re.compile(r".*-erdma.sock")


@dataclass(frozen=True)
class ErdmaDevice:
    name: str
    mac: str
    dev_paths: tuple[str, ...]
    numa: int


def read_devices(sysfs_root: Path, dev_root: Path) -> list[ErdmaDevice]:
    """The controller's view of the node: every erdma_* ibdev, its netdev's MAC, device paths and NUMA."""
    devices = []
    verbs = sysfs_root / "class/infiniband_verbs"
    for ibdev in sorted((sysfs_root / "class/infiniband").glob("erdma_*")):
        paths = [
            f"/dev/infiniband/{entry.name}"
            for entry in sorted(verbs.glob("uverbs*"))
            if (entry / "ibdev").read_text().strip() == ibdev.name
        ]
        if (dev_root / "infiniband/rdma_cm").exists():
            paths.append("/dev/infiniband/rdma_cm")
        netdev = (ibdev / "ports/1/gid_attrs/ndevs/0").read_text().strip()
        mac = (sysfs_root / "class/net" / netdev / "address").read_text().strip()
        numa = int((ibdev / "device/numa_node").read_text())
        devices.append(ErdmaDevice(ibdev.name, mac, tuple(paths), max(numa, 0)))
    return devices


class ErdmaControllerPlugin(api_pb2_grpc.DevicePluginServicer):
    def __init__(self, devices: list[ErdmaDevice], device_plugin_dir: Path) -> None:
        self.devices = devices
        self.device_plugin_dir = device_plugin_dir
        self.socket_name = f"{int(time.time())}-erdma.sock"
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        for entry in self.device_plugin_dir.iterdir():
            if _CLEANUP.match(entry.name):
                entry.unlink()
        server = grpc.aio.server()
        api_pb2_grpc.add_DevicePluginServicer_to_server(self, server)
        server.add_insecure_port(f"unix:{self.device_plugin_dir / self.socket_name}")
        await server.start()
        self._server = server

    async def register(self) -> None:
        async with grpc.aio.insecure_channel(f"unix:{self.device_plugin_dir / 'kubelet.sock'}") as channel:
            await api_pb2_grpc.RegistrationStub(channel).Register(
                api_pb2.RegisterRequest(
                    version="v1beta1",
                    endpoint=self.socket_name,
                    resource_name=RESOURCE_NAME,
                    options=api_pb2.DevicePluginOptions(pre_start_required=False),
                ),
                timeout=5,
            )

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0)
            self._server = None
        (self.device_plugin_dir / self.socket_name).unlink(missing_ok=True)

    async def GetDevicePluginOptions(  # noqa: N802 (the protocol's names)
        self,
        request: api_pb2.Empty,
        context: grpc.aio.ServicerContext[api_pb2.Empty, api_pb2.DevicePluginOptions],
    ) -> api_pb2.DevicePluginOptions:
        return api_pb2.DevicePluginOptions(pre_start_required=False)

    async def ListAndWatch(  # noqa: N802
        self,
        request: api_pb2.Empty,
        context: grpc.aio.ServicerContext[api_pb2.Empty, api_pb2.ListAndWatchResponse],
    ) -> AsyncIterator[api_pb2.ListAndWatchResponse]:
        devices = [
            api_pb2.Device(
                ID=f"{device.name}/{i}",
                health="Healthy",
                topology=api_pb2.TopologyInfo(nodes=[api_pb2.NUMANode(ID=device.numa)]),
            )
            for device in self.devices
            for i in range(IDS_PER_DEVICE)
        ]
        yield api_pb2.ListAndWatchResponse(devices=devices)
        # The real one re-sends the same list every 5 s until stopped; one answer is all kubelet needs here.
        await asyncio.Event().wait()

    async def GetPreferredAllocation(  # noqa: N802
        self,
        request: api_pb2.PreferredAllocationRequest,
        context: grpc.aio.ServicerContext[
            api_pb2.PreferredAllocationRequest, api_pb2.PreferredAllocationResponse
        ],
    ) -> api_pb2.PreferredAllocationResponse:
        await context.abort(grpc.StatusCode.UNKNOWN, "unsupported")

    async def PreStartContainer(  # noqa: N802
        self,
        request: api_pb2.PreStartContainerRequest,
        context: grpc.aio.ServicerContext[
            api_pb2.PreStartContainerRequest, api_pb2.PreStartContainerResponse
        ],
    ) -> api_pb2.PreStartContainerResponse:
        return api_pb2.PreStartContainerResponse()

    async def Allocate(  # noqa: N802
        self,
        request: api_pb2.AllocateRequest,
        context: grpc.aio.ServicerContext[api_pb2.AllocateRequest, api_pb2.AllocateResponse],
    ) -> api_pb2.AllocateResponse:
        specs = [
            api_pb2.DeviceSpec(container_path=path, host_path=path, permissions="rw")
            for device in self.devices
            for path in device.dev_paths
        ]
        pnet = self.devices[0].mac.upper().replace(":", "")
        return api_pb2.AllocateResponse(
            container_responses=[
                api_pb2.ContainerAllocateResponse(devices=specs, envs={SMCR_PNET_ENV: pnet})
                for _ in request.container_requests[:1]
            ]
        )
