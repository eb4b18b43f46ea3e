"""The program run as ``pulumi preview`` sees a new stack: what the cloud assigns is not known yet.

MockCloud answers every resource with the ids and attributes it would have after ``pulumi up``, which the
tests need. A plan must instead tell a reviewer which values exist before deployment and which only after, so
here every resource to create reports back just its inputs and no id, as providers do in a real preview. The
Pulumi runtime then carries the unknowns through every ``apply`` and into the inputs of the resources and the
stack outputs derived from them, exactly as the CLI's engine would.
"""

from __future__ import annotations

from typing import Any

from pulumi.output import Unknown
from pulumi.runtime import MockResourceArgs

from offline_engine.mock_cloud import MockCloud
from offline_engine.offline_run import ProgramRun, run_program
from offline_engine.provider_constraints import ProviderConstraintError, check_resource
from offline_engine.stack_files import StackSettings

IMAGE_TYPE = "docker-build:index:Image"


def is_unknown(value: object) -> bool:
    """True for a value the engine will only know after deployment."""
    return isinstance(value, Unknown)


class PreviewCloud(MockCloud):
    """Resources to create: inputs echoed back, no id, every computed attribute unknown.

    An image is the exception: with ``build_on_preview`` off docker-build neither builds nor pushes in a
    preview and reports the image with one of its tags as ``ref`` (no digest), so the objects running it
    show that tag. Lookups whose answer depends on stock or on what ACK offers that day (the zone that sells
    the instance type, the newest Kubernetes version) are unknown too.
    """

    lookups_known = False

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if not args.custom:
            return None, {}
        check_resource(args.typ, args.name, args.inputs)
        if args.typ == IMAGE_TYPE and not args.inputs.get("buildOnPreview"):
            tags = list(args.inputs.get("tags", []))
            return "", {**args.inputs, "ref": tags[0] if tags else ""}
        return "", dict(args.inputs)


def preview_run(settings: StackSettings) -> ProgramRun:
    """The whole program for ``settings`` under the mock engine in preview mode, unknowns and all.

    Raises ``pulumi.RunError`` (``StackConfigError`` for bad config) as the program does.
    """
    cloud = PreviewCloud(settings.region) if settings.region else PreviewCloud()
    return run_program(settings, mocks=cloud, preview=True)


def check_as_up(settings: StackSettings) -> None:
    """Run the program once more as ``pulumi up`` runs it, every id known, for the provider's checks alone.

    The provider skips a check whose value is not known yet (a preview's ids), so a preview can pass where
    ``up`` fails: ``is_enterprise_security_group`` next to a security group created in the same run is
    refused only once the group's id exists. Raises ``ProviderConstraintError`` for such a row.
    """
    try:
        run_program(settings)
    except ProviderConstraintError as error:
        raise ProviderConstraintError(
            f"`pulumi up` would fail once the values a preview cannot know are known: {error}",
            error.violations,
        ) from None
