"""The program on eRDMA under the mock engine: what dev and prod buy, the eRDMA add-on with its config, the
system pool, memlock, and the variants (GPU families, Terway, SCC attached)."""

from __future__ import annotations

import json

import pytest

from components.config import StackConfigError
from components.erdma import ADDON_NAME
from components.instance_catalogue import CATALOGUE, unsupported_by_ack
from offline_engine.addon_config import check_addon_config
from offline_engine.offline_run import DeclaredResource, ProgramRun, reveal
from tests.conftest import RunStack

NODE_POOL = "alicloud:cs/nodePool:NodePool"
ADDON = "alicloud:cs/kubernetesAddon:KubernetesAddon"
CLUSTER = "alicloud:cs/managedKubernetes:ManagedKubernetes"


def erdma_addon(run: ProgramRun) -> DeclaredResource:
    """The eRDMA add-on among the cluster's add-on resources (the registry's credential helper is another)."""
    (addon,) = [addon for addon in run.of_type(ADDON) if addon.inputs["name"] == ADDON_NAME]
    return addon


def bought_pools(run: ProgramRun) -> list[DeclaredResource]:
    return [pool for pool in run.of_type(NODE_POOL) if "desiredSize" in pool.inputs]


def test_no_stack_buys_scc_and_every_bought_type_is_catalogued(stack_run: ProgramRun) -> None:
    pools = bought_pools(stack_run)
    assert len(pools) == len(stack_run.of_type(NODE_POOL)) == 2
    for pool in pools:
        for name in reveal(pool.inputs["instanceTypes"]):
            assert not unsupported_by_ack(name)
            assert reveal(pool.inputs["systemDiskCategory"]) in CATALOGUE[name].disk_categories


def test_the_erdma_addon_is_its_own_resource_with_the_stacks_config(stack_run: ProgramRun) -> None:
    addon = erdma_addon(stack_run)
    cluster = stack_run.one(CLUSTER)
    assert addon.inputs["name"] == ADDON_NAME
    assert addon.inputs["clusterId"] == cluster.id
    driver = stack_run.settings.config["ack-rdma:erdmaDriver"]
    assert json.loads(addon.inputs["config"]) == {
        "agent": {"preferDriver": driver, "allocateAllDevices": True}
    }
    check_addon_config(ADDON_NAME, addon.inputs["config"])
    # Not in the cluster's create-time add-ons, whose later changes the provider never sends.
    assert ADDON_NAME not in {entry["name"] for entry in reveal(cluster.inputs["addons"])}
    assert reveal(stack_run.outputs["erdmaDriver"]) == driver


def test_the_addon_waits_for_the_untainted_system_pool(stack_run: ProgramRun) -> None:
    component = stack_run.one("ack-rdma:erdma:ErdmaController")
    (system,) = [pool for pool in stack_run.of_type(NODE_POOL) if "labels" not in pool.inputs]
    assert system.urn in component.dependencies
    assert "taints" not in system.inputs
    assert reveal(system.inputs["nodePoolName"]) == "system"


def test_prod_taints_only_the_rdma_pool(program_runs: dict[str, ProgramRun]) -> None:
    prod = program_runs["prod"]
    tainted = [pool for pool in prod.of_type(NODE_POOL) if pool.inputs.get("taints")]
    (rdma,) = tainted
    assert reveal(rdma.inputs["nodePoolName"]) == "rdma"
    assert int(reveal(next(p for p in prod.of_type(NODE_POOL) if p is not rdma).inputs["desiredSize"])) >= 1


def test_dev_and_prod_expect_what_their_instance_types_publish(program_runs: dict[str, ProgramRun]) -> None:
    # dev buys g8i.4xlarge / g8ae.4xlarge (12 Gbit/s baseline), prod g8i.24xlarge / g8ae.32xlarge (50, 64).
    assert reveal(program_runs["dev"].outputs["expectedGbits"]) == 12
    assert reveal(program_runs["dev"].outputs["checkMinGbits"]) == 9
    assert reveal(program_runs["prod"].outputs["expectedGbits"]) == 50
    assert reveal(program_runs["prod"].outputs["checkMinGbits"]) == 40


def test_gpu_erdma_pool_runs_the_ofed_driver(run_stack: RunStack) -> None:
    run = run_stack("dev", instanceTypes=["ecs.gn8is.2xlarge", "ecs.gn8is.4xlarge"], erdmaDriver="ofed")
    assert json.loads(erdma_addon(run).inputs["config"])["agent"]["preferDriver"] == "ofed"
    assert reveal(run.outputs["expectedGbits"]) == 8
    assert reveal(run.outputs["checkMinGbits"]) == 6
    with pytest.raises(
        StackConfigError, match="ack-rdma:erdmaDriver is 'compat', but the RDMA pools buy GPU"
    ):
        run_stack("dev", instanceTypes=["ecs.gn8is.2xlarge"])


def test_terway_gets_the_whitelist_warning_and_never_its_own_erdma(run_stack: RunStack) -> None:
    run = run_stack("dev", networkPlugin="terway", podVswitchCidrs=["192.168.16.0/20"])
    warnings = [d.message for d in run.diagnostics if d.severity == "warning"]
    assert any('{"eni_tag_filter": {"creator": "terway"}}' in message for message in warnings)
    flannel = run_stack("dev")
    assert not any("eni_tag_filter" in d.message for d in flannel.diagnostics)
    with pytest.raises(StackConfigError, match=r"ack-rdma:addons\[0\] turns on Terway's own eRDMA support"):
        run_stack("dev", addons=[{"name": "terway-controlplane", "config": {"enable_erdma": True}}])


def test_scc_only_as_attached_instances_with_a_warning(run_stack: RunStack) -> None:
    with pytest.raises(StackConfigError, match=r"ack-rdma:instanceTypes lists ecs\.scch5\.16xlarge, which"):
        run_stack("dev", instanceTypes=["ecs.scch5.16xlarge"])
    run = run_stack(
        "dev",
        instanceTypes=["ecs.scch5.16xlarge"],
        existingInstances=["i-uf6scc01", "i-uf6scc02"],
        desiredSize=0,
        checkMinGbits=40,
    )
    (attached,) = [pool for pool in run.of_type(NODE_POOL) if "instances" in pool.inputs]
    assert "desiredSize" not in attached.inputs
    (warning,) = [d.message for d in run.diagnostics if "attaches 2 existing ECS" in d.message]
    assert "ACK no longer supports the walkthrough's SCC family (ecs.scch5.16xlarge)" in warning
    # Nothing bought in the RDMA pools: no published bandwidth to expect, the stack's figure stands.
    assert reveal(run.outputs["checkMinGbits"]) == 40
    assert run.outputs.get("expectedGbits") is None
