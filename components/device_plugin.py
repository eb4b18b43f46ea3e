"""RdmaDevicePlugin: config, service account and DaemonSet of the RDMA device plugin in kube-system."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pulumi
import pulumi_kubernetes as k8s

from components.k8s_objects import (
    DevicePluginSpec,
    build_config_map,
    build_daemon_set,
    build_service_account,
)
from components.k8s_resources import (
    PullSecretSource,
    component_dependencies,
    declare_object,
    declare_pull_secret,
)


@dataclass(frozen=True, kw_only=True)
class RdmaDevicePluginArgs:
    """The plugin's objects, plus registry access when its images need a pull secret."""

    spec: DevicePluginSpec
    """The objects' shape; ``spec.image`` is the tag pushed by this program or the prebuilt image."""
    resource_names: tuple[str, ...]
    """Extended resources the plugin advertises, as its own validator read them from ``spec.config_json``."""
    pull_secret: PullSecretSource | None = None
    """Registry login for ACR Personal Edition pulls; ``None`` when nodes pull without one."""
    pull_secret_namespaces: tuple[str, ...] = ()
    """Further namespaces pulling this project's images (the test pods'), which get the same secret."""


class RdmaDevicePlugin(pulumi.ComponentResource):
    """Unprivileged device plugin DaemonSet on the RDMA nodes, fed by the ``rdma-devices`` ConfigMap."""

    namespace: str
    resource_name: str
    image: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: RdmaDevicePluginArgs,
        *,
        provider: k8s.Provider,
        image: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``image`` overrides ``spec.image``, e.g. with the built tag pinned by digest."""
        super().__init__("ack-rdma:device_plugin:RdmaDevicePlugin", name, None, opts)
        after = component_dependencies(opts)
        spec = args.spec
        if args.pull_secret is not None:
            for namespace in dict.fromkeys((spec.namespace, *args.pull_secret_namespaces)):
                declare_pull_secret(
                    f"{name}-pull-secret-{namespace}",
                    args.pull_secret,
                    namespace=namespace,
                    parent=self,
                    provider=provider,
                    depends_on=after,
                )
        config_map = declare_object(
            f"{name}-config",
            build_config_map(spec),
            api_version="v1",
            kind="ConfigMap",
            parent=self,
            provider=provider,
            depends_on=after,
        )
        # Created as early as the cluster allows, not after the component's dependencies: ACR's credential
        # helper gives a service account its pull secret some time after the account appears, and a pod
        # admitted before that never gets it (ACR doc "Use the passwordless component to pull images").
        service_account = declare_object(
            f"{name}-service-account",
            build_service_account(spec),
            api_version="v1",
            kind="ServiceAccount",
            parent=self,
            provider=provider,
        )
        self.image = pulumi.Output.from_input(image if image is not None else spec.image)
        declare_object(
            f"{name}-daemonset",
            self.image.apply(lambda ref: build_daemon_set(replace(spec, image=ref))),
            api_version="apps/v1",
            kind="DaemonSet",
            parent=self,
            provider=provider,
            depends_on=(*after, config_map, service_account),
        )
        self.namespace = spec.namespace
        # The first resource is the one the test pods request.
        self.resource_name = args.resource_names[0]
        self.register_outputs(
            {"namespace": self.namespace, "resourceName": self.resource_name, "image": self.image}
        )
