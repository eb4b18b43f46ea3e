"""Registration with kubelet: the request's fields, one socket and registration per resource, refusals."""

from __future__ import annotations

import stat

import pytest
from kubelet_standin import is_extended_resource_name
from plugin_harness import node, plugin_in_process, run
from rdma_device_plugin.api import api_pb2
from rdma_device_plugin.config import load_config
from rdma_device_plugin.kubelet import RegistrationError, register
from rdma_device_plugin.pools import build_pools
from rdma_device_plugin.server import PluginServer
from rdma_device_plugin.servicer import DeviceFeed

IB_SPLIT = {
    "periodicUpdateInterval": 0,
    "configList": [
        {"resourceName": "ib_rail0", "rdmaHcaMax": 3, "selectors": {"ifNames": ["ib0"]}},
        {
            "resourceName": "ib_rail1",
            "resourcePrefix": "example.com",
            "rdmaHcaMax": 2,
            "selectors": {"ifNames": ["ib1"]},
        },
    ],
}


def test_register_request_carries_version_socket_name_resource_and_options() -> None:
    async def scenario() -> None:
        async with node("scc_roce_lag", {"mode": "hca"}) as host, plugin_in_process(host):
            endpoint = await host.kubelet.wait_registered("rdma/hca")
            assert host.kubelet.requests == [
                api_pb2.RegisterRequest(
                    version="v1beta1",
                    endpoint="rdma_hca.sock",
                    resource_name="rdma/hca",
                    options=api_pb2.DevicePluginOptions(
                        pre_start_required=False, get_preferred_allocation_available=True
                    ),
                )
            ]
            # kubelet dialed <dir>/<endpoint> inside Register: the socket was serving before Register.
            assert endpoint.socket_path == host.plugin_dir / "rdma_hca.sock"
            assert stat.S_ISSOCK(endpoint.socket_path.stat().st_mode)
            assert len(await endpoint.next_update()) == 1000

    run(scenario)


def test_several_resources_get_one_socket_and_one_registration_each() -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", IB_SPLIT) as host, plugin_in_process(host):
            rail0 = await host.kubelet.wait_registered("rdma/ib_rail0")
            rail1 = await host.kubelet.wait_registered("example.com/ib_rail1")
            assert sorted((r.resource_name, r.endpoint) for r in host.kubelet.requests) == [
                ("example.com/ib_rail1", "example.com_ib_rail1.sock"),
                ("rdma/ib_rail0", "rdma_ib_rail0.sock"),
            ]
            assert sorted(p.name for p in host.plugin_dir.iterdir()) == [
                "example.com_ib_rail1.sock",
                "kubelet.sock",
                "rdma_ib_rail0.sock",
            ]
            rail0_devices = await rail0.next_update()
            rail1_devices = await rail1.next_update()
            assert [(d.ID, d.topology.nodes[0].ID) for d in rail0_devices] == [("0", 0), ("1", 0), ("2", 0)]
            assert [(d.ID, d.topology.nodes[0].ID) for d in rail1_devices] == [("0", 1), ("1", 1)]
            (on_rail0,) = (await rail0.allocate(["2"])).container_responses
            (on_rail1,) = (await rail1.allocate(["0"])).container_responses
            assert dict(on_rail0.envs) == {"RDMA_DEVICES": "mlx5_0"}
            assert dict(on_rail1.envs) == {"RDMA_DEVICES": "mlx5_1"}
            assert [d.host_path for d in on_rail1.devices] == [
                "/dev/infiniband/uverbs1",
                "/dev/infiniband/umad1",
                "/dev/infiniband/issm1",
                "/dev/infiniband/rdma_cm",
            ]

    run(scenario)


def test_kubelet_refusals_surface_as_one_paragraph_naming_the_resource() -> None:
    async def scenario() -> None:
        async with node("erdma", {"mode": "hca"}) as host:
            (pool,) = build_pools(load_config(host.config_path), host.tree.dev_root)
            server = PluginServer(DeviceFeed(pool), host.plugin_dir / "rdma_hca.sock")
            await server.start()
            # kubelet waits 10 s for a plugin socket that does not answer; no need to here.
            host.kubelet.dial_timeout = 0.2
            try:
                options = api_pb2.DevicePluginOptions()
                with pytest.raises(RegistrationError) as bad_name:
                    await register(host.plugin_dir, "rdma_hca.sock", "hca", options)
                assert '"hca" is invalid' in str(bad_name.value)
                assert str(host.plugin_dir / "kubelet.sock") in str(bad_name.value)
                with pytest.raises(RegistrationError) as no_socket:
                    await register(host.plugin_dir, "absent.sock", "rdma/hca", options)
                assert "absent.sock" in str(no_socket.value)
                assert host.kubelet.endpoints == {}
            finally:
                await server.stop(grace=0)

    run(scenario)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("rdma/hca", True),
        ("rdma/hca_shared_a", True),
        ("example.com/ib-rail.0", True),
        ("hca", False),
        ("kubernetes.io/hca", False),
        ("RDMA/hca", False),
        ("requests.rdma/hca", False),
        ("rdma/_hca", False),
        ("rdma/" + "h" * 64, False),
    ],
)
def test_standin_checks_resource_names_like_kubelet(name: str, valid: bool) -> None:
    assert is_extended_resource_name(name) is valid
