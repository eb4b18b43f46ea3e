"""Resource options every child of an ack-rdma component carries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi


def child_options(
    parent: pulumi.Resource,
    timeouts: Mapping[str, str],
    *,
    provider: pulumi.ProviderResource | None = None,
    depends_on: Sequence[pulumi.Resource] = (),
    delete_before_replace: bool = False,
) -> pulumi.ResourceOptions:
    """Options for a child: parented to its component, with explicit timeouts (never the provider's)."""
    return pulumi.ResourceOptions(
        parent=parent,
        custom_timeouts=pulumi.CustomTimeouts(
            create=timeouts["create"], update=timeouts["update"], delete=timeouts["delete"]
        ),
        provider=provider,
        depends_on=list(depends_on),
        delete_before_replace=delete_before_replace,
    )
