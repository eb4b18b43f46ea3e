"""PluginImages: the plugin and tools images built from plugin_image/ and pushed to Alibaba Cloud ACR."""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_alicloud as alicloud
import pulumi_docker_build as docker_build

from components import defaults
from components.resource_options import child_options

ENTERPRISE = "enterprise"
PERSONAL = "personal"
REGISTRY_EDITIONS = (ENTERPRISE, PERSONAL)
# Relative to the project directory, where Pulumi runs the program: an absolute path would differ between
# machines and rebuild the images on every deploy from a new checkout.
BUILD_CONTEXT = "plugin_image"
PLUGIN_PYPROJECT = f"{BUILD_CONTEXT}/pyproject.toml"
GIT_TIMEOUT_SECONDS = 30


def personal_registry_host(region: str) -> str:
    return f"registry.{region}.aliyuncs.com"


def image_tag(host: str, namespace: str, repository: str, version: str) -> str:
    """A tag from config strings only, with the full registry host (a bare name means Docker Hub)."""
    return f"{host}/{namespace}/{repository}:{version}"


def plugin_version(pyproject: Path) -> str:
    """The plugin's version as its pyproject declares it: the one source of the version the image holds
    (``make image`` reads the same field)."""
    try:
        version = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("version")
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise pulumi.RunError(
            f"{pyproject}: cannot read the plugin's version ({error}); the images are built from "
            f"{BUILD_CONTEXT}/, so run the program from a complete checkout."
        ) from None
    if not isinstance(version, str) or not version:
        raise pulumi.RunError(f"{pyproject}: [project] version is missing; give the plugin a version there.")
    return version


def source_revision(directory: Path) -> str | None:
    """The commit that last changed ``directory``, or None when it is not in a git checkout with that commit
    (or git is missing).

    Not HEAD: every commit elsewhere in the repository would change the build args, and with them rebuild
    both images and roll the device plugin over every RDMA node, for the same image content.
    """
    try:
        done = subprocess.run(
            ["git", "log", "-1", "--format=%H", "--", "."],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    revision = done.stdout.strip()
    return revision if done.returncode == 0 and revision else None


@dataclass(frozen=True)
class ImageLabels:
    """What the Dockerfile's OCI labels say about the build; unknown ones stay out of the build args."""

    version: str
    revision: str | None
    source: str | None

    def build_args(self) -> dict[str, str]:
        """The Dockerfile's ``ARG``s (VERSION, REVISION, SOURCE) that are known."""
        values = {"VERSION": self.version, "REVISION": self.revision, "SOURCE": self.source}
        return {name: value for name, value in values.items() if value}


@dataclass(frozen=True, kw_only=True)
class RegistryCredentials:
    """Who pushes, and (Personal Edition) who pulls."""

    username: pulumi.Input[str]
    password: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class PluginImagesArgs:
    """Where the images go. Enterprise Edition mints temporary push credentials; Personal takes a password."""

    edition: str = defaults.REGISTRY_EDITION
    """``enterprise`` (an existing ACR EE instance) or ``personal``."""
    host: str
    """Registry host: ``<name>-registry.<region>.cr.aliyuncs.com`` or ``registry.<region>.aliyuncs.com``."""
    namespace: str = defaults.REGISTRY_NAMESPACE
    """ACR namespace, created by the program."""
    instance_id: str | None = None
    """ACR Enterprise Edition instance id (``cri-...``); required for ``enterprise``."""
    username: str | None = None
    """Personal Edition login; required for ``personal``."""
    password: pulumi.Input[str] | None = None
    """Personal Edition password (a config secret); required for ``personal``."""
    version: str = defaults.IMAGE_VERSION
    """Tag of both images."""
    revision: str | None = None
    """OCI revision label. ``None``: the commit that last changed the build context, if git knows one."""
    source: str | None = None
    """OCI source label (the repository's URL). ``None``: no label."""
    plugin_repository: str = defaults.PLUGIN_REPOSITORY
    tools_repository: str = defaults.TOOLS_REPOSITORY
    pull_host: str | None = None
    """Host the nodes pull from when not ``host``: an Enterprise Edition instance's VPC endpoint."""

    def tag(self, repository: str) -> str:
        return image_tag(self.host, self.namespace, repository, self.version)

    def pull_ref(self, pushed_ref: str) -> str:
        """``pushed_ref`` (tag or tag@digest under ``host``) as the nodes pull it."""
        if self.pull_host is None or not pushed_ref.startswith(f"{self.host}/"):
            return pushed_ref
        return f"{self.pull_host}/{pushed_ref.removeprefix(f'{self.host}/')}"


def enterprise_credentials(
    instance_id: str, instances: list[alicloud.cs.outputs.GetRegistryEnterpriseInstancesInstanceResult]
) -> tuple[str, str]:
    for instance in instances:
        if instance.id == instance_id:
            return instance.temp_username, instance.authorization_token
    raise pulumi.RunError(
        f"ACR Enterprise Edition instance {instance_id} was not found in this region: set "
        "ack-rdma:registryInstanceId to an instance of the stack's region (alicloud:region)."
    )


class PluginImages(pulumi.ComponentResource):
    """ACR namespace and repositories, then both Dockerfile targets built and pushed (never in preview)."""

    plugin_ref: pulumi.Output[str]
    """The plugin image as the nodes pull it, pinned by digest once pushed."""
    tools_ref: pulumi.Output[str]
    credentials: RegistryCredentials

    def __init__(
        self,
        name: str,
        args: PluginImagesArgs,
        *,
        push_access: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``push_access``: what must exist before a push reaches the registry (its internet endpoint)."""
        super().__init__("ack-rdma:images:PluginImages", name, None, opts)
        self.push_access = list(push_access)
        options = child_options(self, defaults.NETWORK_TIMEOUTS)
        repositories: list[pulumi.Resource] = []
        if args.edition == ENTERPRISE:
            instance_id = args.instance_id or ""
            found = alicloud.cs.get_registry_enterprise_instances_output(
                ids=[instance_id], enable_details=True, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            login = found.instances.apply(lambda instances: enterprise_credentials(instance_id, instances))
            self.credentials = RegistryCredentials(username=login[0], password=pulumi.Output.secret(login[1]))
            namespace = alicloud.cs.RegistryEnterpriseNamespace(
                f"{name}-namespace",
                instance_id=instance_id,
                name=args.namespace,
                auto_create=False,
                default_visibility="PRIVATE",
                opts=options,
            )
            for repository in (args.plugin_repository, args.tools_repository):
                repositories.append(
                    alicloud.cs.RegistryEnterpriseRepo(
                        f"{name}-{repository}",
                        instance_id=instance_id,
                        namespace=namespace.name,
                        name=repository,
                        summary=f"ack-rdma {repository}",
                        repo_type="PRIVATE",
                        opts=options,
                    )
                )
        else:
            self.credentials = RegistryCredentials(
                username=args.username or "", password=pulumi.Output.secret(args.password or "")
            )
            personal_namespace = alicloud.cr.Namespace(
                f"{name}-namespace",
                name=args.namespace,
                auto_create=False,
                default_visibility="PRIVATE",
                opts=options,
            )
            for repository in (args.plugin_repository, args.tools_repository):
                repositories.append(
                    alicloud.cr.Repo(
                        f"{name}-{repository}",
                        namespace=personal_namespace.name,
                        name=repository,
                        summary=f"ack-rdma {repository}",
                        repo_type="PRIVATE",
                        opts=options,
                    )
                )
        labels = self._labels(args)
        refs = {
            target: self._build(name, args, target, repository, repositories, labels=labels)
            for target, repository in (("plugin", args.plugin_repository), ("tools", args.tools_repository))
        }
        self.plugin_ref = refs["plugin"]
        self.tools_ref = refs["tools"]
        self.register_outputs({"pluginRef": self.plugin_ref, "toolsRef": self.tools_ref})

    def _labels(self, args: PluginImagesArgs) -> ImageLabels:
        # Pulumi runs the program from the project directory, so the relative paths name the build context.
        revision = args.revision or source_revision(Path(BUILD_CONTEXT))
        if revision is None:
            pulumi.log.warn(
                f"No source revision for the images: {BUILD_CONTEXT}/ is not in a git checkout with a commit "
                "that changed it, so their OCI revision label stays empty. Set ack-rdma:imageRevision to "
                "the revision you build from.",
                resource=self,
            )
        return ImageLabels(
            version=plugin_version(Path(PLUGIN_PYPROJECT)), revision=revision, source=args.source
        )

    def _build(
        self,
        name: str,
        args: PluginImagesArgs,
        target: str,
        repository: str,
        repositories: list[pulumi.Resource],
        *,
        labels: ImageLabels,
    ) -> pulumi.Output[str]:
        image = docker_build.Image(
            f"{name}-{target}",
            tags=[args.tag(repository)],
            context=docker_build.BuildContextArgs(location=BUILD_CONTEXT),
            dockerfile=docker_build.DockerfileArgs(location=f"{BUILD_CONTEXT}/Dockerfile"),
            target=target,
            build_args=labels.build_args(),
            platforms=[docker_build.Platform.LINUX_AMD64],
            # build_on_preview=False keeps a preview from building, and so from pushing or needing
            # credentials (docker-build #252). push stays True in both: an input that flips between preview
            # and up makes every preview show both images, and the DaemonSet running one, as changing.
            push=True,
            build_on_preview=False,
            registries=[
                docker_build.RegistryArgs(
                    address=args.host, username=self.credentials.username, password=self.credentials.password
                )
            ],
            opts=child_options(
                self, defaults.IMAGE_BUILD_TIMEOUTS, depends_on=[*repositories, *self.push_access]
            ),
        )
        return image.ref.apply(args.pull_ref)
