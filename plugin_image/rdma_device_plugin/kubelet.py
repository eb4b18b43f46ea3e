"""kubelet's side of the device-plugin directory: the Registration client."""

from __future__ import annotations

from pathlib import Path

import grpc

from rdma_device_plugin.api import api_pb2, api_pb2_grpc
from rdma_device_plugin.server import unix_target

API_VERSION = "v1beta1"
KUBELET_SOCKET = "kubelet.sock"
# kubelet dials the plugin back with a 10 s timeout inside Register; allow for that plus the call itself.
REGISTER_TIMEOUT = 15.0


class RegistrationError(Exception):
    """kubelet refused or did not answer Register; str() is one paragraph naming the resource and cause."""


async def register(
    device_plugin_dir: Path,
    endpoint: str,
    resource_name: str,
    options: api_pb2.DevicePluginOptions,
    timeout: float = REGISTER_TIMEOUT,
) -> None:
    """Register `resource_name`, served on `<device_plugin_dir>/<endpoint>`, with that directory's kubelet."""
    kubelet_socket = device_plugin_dir / KUBELET_SOCKET
    request = api_pb2.RegisterRequest(
        version=API_VERSION, endpoint=endpoint, resource_name=resource_name, options=options
    )
    async with grpc.aio.insecure_channel(unix_target(kubelet_socket)) as channel:
        stub = api_pb2_grpc.RegistrationStub(channel)
        try:
            await stub.Register(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            raise RegistrationError(
                f"registering {resource_name} (endpoint {endpoint}) with kubelet at {kubelet_socket} failed: "
                f"{error.code().name}: {error.details()}"
            ) from error
