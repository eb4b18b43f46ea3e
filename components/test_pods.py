"""RdmaTestNamespace: where RDMA test pods run; RdmaTestPods: two idle pods on two RDMA nodes, ready for
``ib_read_bw``."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.k8s_objects import (
    TestPodSpec,
    build_test_namespace,
    build_test_network_policy,
    build_test_objects,
    build_test_pods,
    build_test_service_account,
    manifests_yaml,
    pod_names,
)
from components.k8s_resources import component_dependencies, declare_object

PERFTEST_COMMAND = ("ib_read_bw", "-q", "30")


def perftest_commands(spec: TestPodSpec) -> dict[str, str]:
    """The walkthrough's bandwidth test as two shell lines: start the server, then point the client at it."""
    server, client = pod_names(spec)[:2]
    namespace = shlex.quote(spec.namespace)
    perftest = " ".join(PERFTEST_COMMAND)
    server_ip = f"$(kubectl get pod -n {namespace} {server} -o jsonpath='{{.status.podIP}}')"
    return {
        "server": f"kubectl exec -n {namespace} {server} -- {perftest}",
        "client": f'kubectl exec -n {namespace} {client} -- {perftest} "{server_ip}"',
    }


def pods_with_image(
    spec: TestPodSpec, image: pulumi.Input[str] | None = None
) -> pulumi.Output[list[dict[str, Any]]]:
    """The pods, with ``image`` (e.g. a digest-pinned ref) in place of ``spec.image`` when given."""
    ref = pulumi.Output.from_input(image if image is not None else spec.image)
    return ref.apply(lambda value: build_test_pods(replace(spec, image=value)))


def pod_manifest_yaml(spec: TestPodSpec, image: pulumi.Input[str] | None = None) -> pulumi.Output[str]:
    """The test objects (``image`` in place of ``spec.image`` when given) as YAML, for
    ``pulumi stack output testPodManifest | kubectl apply -f -``."""
    ref = pulumi.Output.from_input(image if image is not None else spec.image)
    return ref.apply(lambda value: manifests_yaml(build_test_objects(replace(spec, image=value))))


def _nth(index: int) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    return lambda manifests: manifests[index]


class RdmaTestNamespace(pulumi.ComponentResource):
    """The test pods' namespace and service account, with the NetworkPolicy that admits a test pod's traffic
    from its pair only where ACK enforces it (Terway).

    Declared whether the stack runs the test pods or not: pods applied from the ``testPodManifest`` output or
    created by ``ack-rdma-check --create``, and the registry pull secret they use, live in it.
    """

    namespace: str

    def __init__(
        self,
        name: str,
        spec: TestPodSpec,
        *,
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ack-rdma:test_pods:RdmaTestNamespace", name, None, opts)
        after = component_dependencies(opts)
        namespace = declare_object(
            f"{name}-namespace",
            build_test_namespace(spec),
            api_version="v1",
            kind="Namespace",
            parent=self,
            provider=provider,
            depends_on=after,
        )
        declare_object(
            f"{name}-service-account",
            build_test_service_account(spec),
            api_version="v1",
            kind="ServiceAccount",
            parent=self,
            provider=provider,
            depends_on=(*after, namespace),
        )
        if spec.network_policy:
            declare_object(
                f"{name}-network-policy",
                build_test_network_policy(spec),
                api_version="networking.k8s.io/v1",
                kind="NetworkPolicy",
                parent=self,
                provider=provider,
                depends_on=(*after, namespace),
            )
        self.namespace = spec.namespace
        self.register_outputs({"namespace": self.namespace})


class RdmaTestPods(pulumi.ComponentResource):
    """The test pods as Pulumi resources (when the stack turns them on)."""

    namespace: str
    names: list[str]

    def __init__(
        self,
        name: str,
        spec: TestPodSpec,
        *,
        provider: k8s.Provider,
        image: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ack-rdma:test_pods:RdmaTestPods", name, None, opts)
        after = component_dependencies(opts)
        pods = pods_with_image(spec, image)
        self.names = pod_names(spec)
        for index, pod_name in enumerate(self.names):
            declare_object(
                f"{name}-{pod_name}",
                pods.apply(_nth(index)),
                api_version="v1",
                kind="Pod",
                parent=self,
                provider=provider,
                depends_on=after,
            )
        self.namespace = spec.namespace
        self.register_outputs({"namespace": self.namespace, "names": self.names})
