"""``pulumi preview`` of a stack that is already deployed: what the preview asks of the cloud, and which
inputs differ from the ones ``pulumi up`` declares (each difference is a change the preview reports)."""

from __future__ import annotations

import pytest

from components import cluster, defaults
from offline_engine.offline_run import ProgramRun, is_secret, run_program
from offline_engine.stack_files import load_stack_settings, stack_names

IMAGE = "docker-build:index:Image"
CLUSTER = "alicloud:cs/managedKubernetes:ManagedKubernetes"
K8S_PROVIDER = "pulumi:providers:kubernetes"
CREDENTIAL = "alicloud:cs/getClusterCredential:getClusterCredential"


@pytest.fixture(scope="module", params=stack_names())
def deployed_preview(request: pytest.FixtureRequest) -> tuple[ProgramRun, ProgramRun]:
    """The same stack run as ``up`` and as ``preview``. MockCloud answers both with the ids of existing
    resources, as the engine does for a stack that is deployed."""
    settings = load_stack_settings(request.param)
    return run_program(settings), run_program(settings, preview=True)


def test_a_preview_declares_the_images_as_up_does(deployed_preview: tuple[ProgramRun, ProgramRun]) -> None:
    """Unchanged inputs: the engine reports no change and keeps the image's deployed outputs, so the
    DaemonSet running ``ref`` (tag and digest) does not change either."""
    up, preview = deployed_preview
    up_images = {image.name: dict(image.inputs) for image in up.of_type(IMAGE)}
    preview_images = {image.name: dict(image.inputs) for image in preview.of_type(IMAGE)}
    assert up_images and preview_images == up_images
    for image in up_images.values():
        assert image["push"] is True and image["buildOnPreview"] is False


def test_a_preview_mints_no_kubeconfig_and_up_mints_one(
    deployed_preview: tuple[ProgramRun, ProgramRun],
) -> None:
    up, preview = deployed_preview
    assert [call.token for call in preview.invocations if call.token == CREDENTIAL] == []
    (minted,) = [call for call in up.invocations if call.token == CREDENTIAL]
    assert minted.args["clusterId"] == up.one(CLUSTER).id
    configured = up.settings.config.get("ack-rdma:kubeconfigDurationMinutes")
    expected = int(configured) if configured is not None else defaults.KUBECONFIG_DURATION_MINUTES
    assert minted.args["temporaryDurationMinutes"] == expected
    # The provider still gets a kubeconfig input (unknown until the update), and it stays secret.
    provider = preview.one(K8S_PROVIDER)
    assert is_secret(provider.inputs["kubeconfig"])
    assert provider.inputs["clusterIdentifier"] == up.one(K8S_PROVIDER).inputs["clusterIdentifier"]


def test_kube_proxy_runs_in_iptables_mode_by_default(deployed_preview: tuple[ProgramRun, ProgramRun]) -> None:
    up, _ = deployed_preview
    assert up.one(CLUSTER).inputs["proxyMode"] == "iptables"
    assert defaults.KUBE_PROXY_MODE == "iptables"


def test_ipvs_is_refused_from_the_version_that_deprecates_it() -> None:
    assert cluster.check_proxy_mode("ipvs", "1.34.1-aliyun.1") == "1.34.1-aliyun.1"
    assert cluster.check_proxy_mode("iptables", "1.35.0-aliyun.1") == "1.35.0-aliyun.1"
    for version in ("1.35.0-aliyun.1", "1.36.2-aliyun.1", "2.0.0"):
        with pytest.raises(
            Exception, match=r"ipvs is deprecated by ACK from Kubernetes 1\.35.*kubeProxyMode"
        ):
            cluster.check_proxy_mode("ipvs", version)
