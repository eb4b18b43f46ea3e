"""SIGHUP: the config is read again; a broken one is refused (the old one keeps serving, the exact error is
logged), a valid one is applied (resources added, removed or changed get their sockets and registrations;
unchanged ones are left alone)."""

from __future__ import annotations

import json
import logging
import signal

import pytest
from lifecycle_harness import supervised, until
from plugin_harness import node, plugin_subprocess, run

TWO = {
    "periodicUpdateInterval": 0,
    "configList": [
        {"resourceName": "keep", "rdmaHcaMax": 2, "selectors": {}},
        {"resourceName": "change", "rdmaHcaMax": 2, "selectors": {}},
        {"resourceName": "drop", "rdmaHcaMax": 2, "selectors": {}},
    ],
}
RELOADED = {
    "periodicUpdateInterval": 0,
    "configList": [
        {"resourceName": "keep", "rdmaHcaMax": 2, "selectors": {}},
        {"resourceName": "change", "rdmaHcaMax": 3, "selectors": {}},
        {"resourceName": "add", "rdmaHcaMax": 1, "selectors": {}},
    ],
}
BROKEN_VENDOR = {"configList": [{"resourceName": "a", "rdmaHcaMax": 1, "selectors": {"vendors": ["15B"]}}]}


def test_sighup_with_a_broken_config_keeps_serving_the_old_one_and_logs_the_exact_error() -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", {"mode": "hca"}) as host, plugin_subprocess(host) as plugin:
            endpoint = await host.kubelet.wait_registered("rdma/hca", timeout=10)
            assert len(await endpoint.next_update()) == 1000
            host.write_config(BROKEN_VENDOR)
            plugin.process.send_signal(signal.SIGHUP)
            await until(lambda: "reload refused" in plugin.log(), what="the refusal")
            (refusal,) = [line for line in plugin.log().splitlines() if "reload refused" in line]
            assert 'configList[0].selectors.vendors[0]: "15B" is not a 4-digit hex PCI vendor id' in refusal
            assert "still serving the previous config" in refusal
            # Still the same process, socket, registration and stream, and Allocate still answers.
            assert plugin.process.returncode is None
            assert not endpoint.stream_ended.is_set()
            assert len(host.kubelet.requests) == 1
            (container,) = (await endpoint.allocate(["7"])).container_responses
            assert dict(container.envs) == {"RDMA_DEVICES": "mlx5_0,mlx5_1"}
            assert "Traceback" not in plugin.log()

            # Fixed and signalled again: applied. The legacy sriov mode over no VF is a new resource.
            host.write_config({"mode": "sriov", "pfNetdevices": ["ens2f0"]})
            plugin.process.send_signal(signal.SIGHUP)
            vhca = await host.kubelet.wait_registered("rdma/vhca", timeout=10)
            assert await vhca.next_update() == []
            await until(lambda: not (host.plugin_dir / "rdma_hca.sock").exists(), what="rdma/hca removed")
            await endpoint.stream_ended.wait()

    run(scenario)


def test_a_valid_reload_starts_added_stops_removed_restarts_changed_and_leaves_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with node("ib_two_numa", TWO) as host, supervised(host) as running:
            endpoints = {
                r: await host.kubelet.wait_registered(f"rdma/{r}") for r in ("keep", "change", "drop")
            }
            for endpoint in endpoints.values():
                await endpoint.next_update()
            host.write_config(RELOADED)
            running.reload.set()
            added = await host.kubelet.wait_registered("rdma/add")
            changed = await host.kubelet.wait_registered("rdma/change", after=endpoints["change"])
            assert len(await added.next_update()) == 1
            assert len(await changed.next_update()) == 3
            await endpoints["drop"].stream_ended.wait()
            assert sorted(p.name for p in host.plugin_dir.iterdir()) == [
                "kubelet.sock",
                "rdma_add.sock",
                "rdma_change.sock",
                "rdma_keep.sock",
            ]
            # The unchanged resource kept its registration and its stream.
            assert [r.resource_name for r in host.kubelet.requests].count("rdma/keep") == 1
            assert not endpoints["keep"].stream_ended.is_set()
            assert sorted(running.supervisor.plugins) == ["rdma/add", "rdma/change", "rdma/keep"]
            await until(lambda: running.supervisor.health().ok, what="every resource registered")

    with caplog.at_level(logging.INFO, logger="rdma_device_plugin.app"):
        run(scenario)
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reloaded")]
    assert line.endswith("added rdma/add; removed rdma/drop; changed rdma/change; rediscovery every 0 s")


def test_an_unreadable_config_on_reload_is_refused_too(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with node("erdma", TWO) as host, supervised(host) as running:
            await host.kubelet.wait_registered("rdma/keep")
            host.config_path.unlink()
            await running.supervisor.reload()
            host.write_config("{not json")
            await running.supervisor.reload()
            assert sorted(running.supervisor.plugins) == ["rdma/change", "rdma/drop", "rdma/keep"]
            host.write_config(json.dumps(TWO))
            await running.supervisor.reload()

    with caplog.at_level(logging.INFO, logger="rdma_device_plugin.app"):
        run(scenario)
    messages = [r.getMessage() for r in caplog.records if "reload" in r.getMessage()]
    assert len(messages) == 3
    assert all(m.startswith("reload refused, still serving the previous config: ") for m in messages[:2])
    assert "config.json" in messages[0]
    assert messages[2].endswith("added none; removed none; changed none; rediscovery every 0 s")
