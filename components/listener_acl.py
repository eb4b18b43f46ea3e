"""ListenerAcl: an SLB access control list bound as a whitelist to a TCP listener that ACK owns.

ACK creates the API server's CLB and its 6443 listener itself, and its doc ("Configure access control policies
for the API server") controls access with an ACL on that listener, set in the console. The provider offers no
resource for it: ``alicloud_slb_listener`` creates a listener of its own (and fails on a port that exists),
and its only listener-ACL attachment is ALB's. So this dynamic resource does what the console does, through
the SLB API: ``SetLoadBalancerTCPListenerAttribute`` with ``AclStatus``/``AclType``/``AclId`` on create and
update, ``AclStatus=off`` on delete, ``DescribeLoadBalancerTCPListenerAttribute`` on refresh (so a change made
in the console shows as drift).

Limits: it needs ``ALICLOUD_ACCESS_KEY``/``ALICLOUD_SECRET_KEY`` in the environment of ``pulumi up`` (the
alicloud provider's ``profile`` setting does not reach it) with ``slb:SetLoadBalancerTCPListenerAttribute``
and ``slb:DescribeLoadBalancerTCPListenerAttribute``; it replaces whatever ACL the listener had; and if ACK
ever recreates the CLB, the binding is gone until the next ``pulumi up``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
import pulumi.dynamic

CREDENTIAL_VARIABLES = ("ALICLOUD_ACCESS_KEY", "ALICLOUD_SECRET_KEY")


@dataclass(frozen=True)
class ListenerAclState:
    """What the SLB API reports for a listener's access control."""

    status: str
    """``on`` or ``off``."""
    type: str
    """``white`` or ``black`` (empty when off)."""
    acl_id: str


class ListenerApi(Protocol):
    """The two SLB calls the binding needs."""

    def set_acl(self, load_balancer_id: str, port: int, acl_id: str | None) -> None:
        """Whitelist ``acl_id`` on the listener, or turn its access control off (``None``)."""

    def get_acl(self, load_balancer_id: str, port: int) -> ListenerAclState:
        """The listener's access control as the API reports it."""


class SdkListenerApi:
    """ListenerApi over Alibaba's SLB SDK (``alibabacloud_slb20140515``), imported only when used."""

    def __init__(self, region: str) -> None:
        from alibabacloud_slb20140515.client import Client  # noqa: PLC0415 (only `pulumi up` needs it)
        from alibabacloud_tea_openapi import models as api_models  # noqa: PLC0415

        missing = [name for name in CREDENTIAL_VARIABLES if not os.environ.get(name)]
        if missing:
            raise RuntimeError(
                f"{' and '.join(missing)} not set: the API server's listener ACL is set through the SLB API "
                "with the credentials from the environment; export them before `pulumi up`."
            )
        self.region = region
        self.client = Client(
            api_models.Config(
                access_key_id=os.environ[CREDENTIAL_VARIABLES[0]],
                access_key_secret=os.environ[CREDENTIAL_VARIABLES[1]],
                region_id=region,
                endpoint=f"slb.{region}.aliyuncs.com",
            )
        )

    def set_acl(self, load_balancer_id: str, port: int, acl_id: str | None) -> None:
        from alibabacloud_slb20140515 import models  # noqa: PLC0415

        self.client.set_load_balancer_tcplistener_attribute(
            models.SetLoadBalancerTCPListenerAttributeRequest(
                region_id=self.region,
                load_balancer_id=load_balancer_id,
                listener_port=port,
                acl_status="on" if acl_id else "off",
                acl_type="white" if acl_id else None,
                acl_id=acl_id,
            )
        )

    def get_acl(self, load_balancer_id: str, port: int) -> ListenerAclState:
        from alibabacloud_slb20140515 import models  # noqa: PLC0415

        body = self.client.describe_load_balancer_tcplistener_attribute(
            models.DescribeLoadBalancerTCPListenerAttributeRequest(
                region_id=self.region, load_balancer_id=load_balancer_id, listener_port=port
            )
        ).body
        return ListenerAclState(body.acl_status or "off", body.acl_type or "", body.acl_id or "")


def sdk_api(region: str) -> ListenerApi:
    return SdkListenerApi(region)


def _target(props: dict[str, Any]) -> tuple[str, int]:
    return str(props["load_balancer_id"]), int(props["listener_port"])


class ListenerAclProvider(pulumi.dynamic.ResourceProvider):
    """CRUD of the binding; ``api`` makes the SLB client for a region (the SDK unless a test passes one)."""

    # Nothing secret is captured: the credentials are read from the environment when the provider runs.
    serialize_as_secret_always = False

    def __init__(self, api: Callable[[str], ListenerApi] = sdk_api) -> None:
        self.api = api

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        load_balancer_id, port = _target(props)
        self.api(props["region"]).set_acl(load_balancer_id, port, props["acl_id"])
        return pulumi.dynamic.CreateResult(id_=f"{load_balancer_id}:{port}", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        keys = ("region", "load_balancer_id", "listener_port", "acl_id")
        changes = [key for key in keys if olds.get(key) != news.get(key)]
        # Another listener (or region) is another binding: create the new one, then turn the old one off.
        replaces = [key for key in changes if key != "acl_id"]
        return pulumi.dynamic.DiffResult(
            changes=bool(changes), replaces=replaces, delete_before_replace=False
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        load_balancer_id, port = _target(news)
        self.api(news["region"]).set_acl(load_balancer_id, port, news["acl_id"])
        return pulumi.dynamic.UpdateResult(outs=news)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        load_balancer_id, port = _target(props)
        self.api(props["region"]).set_acl(load_balancer_id, port, None)

    def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
        load_balancer_id, port = _target(props)
        state = self.api(props["region"]).get_acl(load_balancer_id, port)
        whitelisted = state.status == "on" and state.type == "white"
        return pulumi.dynamic.ReadResult(
            id_=id_, outs={**props, "acl_id": state.acl_id if whitelisted else ""}
        )


class ListenerAcl(pulumi.dynamic.Resource, module="slb", name="ListenerAcl"):
    """Whitelists ``acl_id`` on the TCP listener ``listener_port`` of the CLB ``load_balancer_id``."""

    def __init__(
        self,
        name: str,
        *,
        region: str,
        load_balancer_id: pulumi.Input[str],
        listener_port: int,
        acl_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
        provider: ListenerAclProvider | None = None,
    ) -> None:
        props = {
            "region": region,
            "load_balancer_id": load_balancer_id,
            "listener_port": listener_port,
            "acl_id": acl_id,
        }
        super().__init__(provider or ListenerAclProvider(), name, props, opts)
