"""The committed generated API matches api.proto, and api.proto matches kubelet's v1beta1 wire contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rdma_device_plugin.api import api_pb2

API_DIR = Path(__file__).resolve().parent.parent / "rdma_device_plugin" / "api"
GEN_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gen_api.py"
GENERATED = ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py", "api_pb2_grpc.pyi")


def test_committed_code_is_what_the_proto_generates(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(GEN_SCRIPT), "--out-dir", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    for name in GENERATED:
        assert (tmp_path / name).read_bytes() == (API_DIR / name).read_bytes(), (
            f"{name} is stale: run venv/bin/python plugin_image/scripts/gen_api.py"
        )


# (message, field, number, repeated) for every field of kubelet's v1beta1 api.proto.
KUBELET_FIELDS = [
    ("DevicePluginOptions", "pre_start_required", 1, False),
    ("DevicePluginOptions", "get_preferred_allocation_available", 2, False),
    ("RegisterRequest", "version", 1, False),
    ("RegisterRequest", "endpoint", 2, False),
    ("RegisterRequest", "resource_name", 3, False),
    ("RegisterRequest", "options", 4, False),
    ("ListAndWatchResponse", "devices", 1, True),
    ("TopologyInfo", "nodes", 1, True),
    ("NUMANode", "ID", 1, False),
    ("Device", "ID", 1, False),
    ("Device", "health", 2, False),
    ("Device", "topology", 3, False),
    ("PreStartContainerRequest", "devices_ids", 1, True),
    ("PreferredAllocationRequest", "container_requests", 1, True),
    ("ContainerPreferredAllocationRequest", "available_deviceIDs", 1, True),
    ("ContainerPreferredAllocationRequest", "must_include_deviceIDs", 2, True),
    ("ContainerPreferredAllocationRequest", "allocation_size", 3, False),
    ("PreferredAllocationResponse", "container_responses", 1, True),
    ("ContainerPreferredAllocationResponse", "deviceIDs", 1, True),
    ("AllocateRequest", "container_requests", 1, True),
    ("ContainerAllocateRequest", "devices_ids", 1, True),
    ("CDIDevice", "name", 1, False),
    ("AllocateResponse", "container_responses", 1, True),
    ("ContainerAllocateResponse", "envs", 1, True),
    ("ContainerAllocateResponse", "mounts", 2, True),
    ("ContainerAllocateResponse", "devices", 3, True),
    ("ContainerAllocateResponse", "annotations", 4, True),
    ("ContainerAllocateResponse", "cdi_devices", 5, True),
    ("Mount", "container_path", 1, False),
    ("Mount", "host_path", 2, False),
    ("Mount", "read_only", 3, False),
    ("DeviceSpec", "container_path", 1, False),
    ("DeviceSpec", "host_path", 2, False),
    ("DeviceSpec", "permissions", 3, False),
]


@pytest.mark.parametrize(("message", "field", "number", "repeated"), KUBELET_FIELDS)
def test_field_numbers_match_kubelet(message: str, field: str, number: int, repeated: bool) -> None:
    descriptor = api_pb2.DESCRIPTOR.message_types_by_name[message].fields_by_name[field]
    assert descriptor.number == number
    assert descriptor.is_repeated is repeated


def test_messages_have_no_fields_beyond_kubelets() -> None:
    expected: dict[str, set[str]] = {}
    for message, field, _, _ in KUBELET_FIELDS:
        expected.setdefault(message, set()).add(field)
    for empty in ("Empty", "PreStartContainerResponse"):
        expected[empty] = set()
    actual = {
        name: set(desc.fields_by_name) for name, desc in api_pb2.DESCRIPTOR.message_types_by_name.items()
    }
    assert actual == expected


def test_services_and_method_paths_match_kubelet() -> None:
    assert api_pb2.DESCRIPTOR.package == "v1beta1"
    methods = {
        f"/{service.full_name}/{method.name}": (
            method.input_type.name,
            method.output_type.name,
            method.server_streaming,
        )
        for service in api_pb2.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert methods == {
        "/v1beta1.Registration/Register": ("RegisterRequest", "Empty", False),
        "/v1beta1.DevicePlugin/GetDevicePluginOptions": ("Empty", "DevicePluginOptions", False),
        "/v1beta1.DevicePlugin/ListAndWatch": ("Empty", "ListAndWatchResponse", True),
        "/v1beta1.DevicePlugin/GetPreferredAllocation": (
            "PreferredAllocationRequest",
            "PreferredAllocationResponse",
            False,
        ),
        "/v1beta1.DevicePlugin/Allocate": ("AllocateRequest", "AllocateResponse", False),
        "/v1beta1.DevicePlugin/PreStartContainer": (
            "PreStartContainerRequest",
            "PreStartContainerResponse",
            False,
        ),
    }
