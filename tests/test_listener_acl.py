"""The API server listener's ACL binding (a dynamic provider) against a recording stand-in of the SLB API."""

from __future__ import annotations

import pytest

from components.listener_acl import ListenerAclProvider, ListenerAclState, SdkListenerApi

PROPS = {"region": "cn-shanghai", "load_balancer_id": "lb-uf6abc", "listener_port": 6443, "acl_id": "acl-1"}


class RecordingApi:
    """Answers like SetLoadBalancerTCPListenerAttribute / DescribeLoadBalancerTCPListenerAttribute."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int, str | None]] = []
        self.state = ListenerAclState("off", "", "")

    def set_acl(self, load_balancer_id: str, port: int, acl_id: str | None) -> None:
        self.calls.append(("set", load_balancer_id, port, acl_id))
        self.state = ListenerAclState("on", "white", acl_id) if acl_id else ListenerAclState("off", "", "")

    def get_acl(self, load_balancer_id: str, port: int) -> ListenerAclState:
        self.calls.append(("get", load_balancer_id, port, None))
        return self.state


@pytest.fixture
def api() -> RecordingApi:
    return RecordingApi()


@pytest.fixture
def provider(api: RecordingApi) -> ListenerAclProvider:
    regions: list[str] = []

    def make(region: str) -> RecordingApi:
        regions.append(region)
        assert region == "cn-shanghai"
        return api

    return ListenerAclProvider(api=make)


def test_create_whitelists_the_acl_on_the_listener(provider: ListenerAclProvider, api: RecordingApi) -> None:
    created = provider.create(dict(PROPS))
    assert created.id == "lb-uf6abc:6443"
    assert api.calls == [("set", "lb-uf6abc", 6443, "acl-1")]
    assert api.state == ListenerAclState("on", "white", "acl-1")


def test_a_new_acl_updates_in_place_and_another_listener_replaces(provider: ListenerAclProvider) -> None:
    changed_acl = provider.diff("lb-uf6abc:6443", dict(PROPS), {**PROPS, "acl_id": "acl-2"})
    assert changed_acl.changes and changed_acl.replaces == []
    moved = provider.diff("lb-uf6abc:6443", dict(PROPS), {**PROPS, "load_balancer_id": "lb-other"})
    assert moved.changes and moved.replaces == ["load_balancer_id"]
    assert not provider.diff("lb-uf6abc:6443", dict(PROPS), dict(PROPS)).changes


def test_update_and_delete(provider: ListenerAclProvider, api: RecordingApi) -> None:
    provider.update("lb-uf6abc:6443", dict(PROPS), {**PROPS, "acl_id": "acl-2"})
    provider.delete("lb-uf6abc:6443", {**PROPS, "acl_id": "acl-2"})
    assert api.calls == [("set", "lb-uf6abc", 6443, "acl-2"), ("set", "lb-uf6abc", 6443, None)]
    assert api.state.status == "off"


def test_refresh_shows_a_console_change_as_drift(provider: ListenerAclProvider, api: RecordingApi) -> None:
    def refreshed_acl() -> object:
        outs = provider.read("lb-uf6abc:6443", dict(PROPS)).outs
        assert outs is not None
        return outs["acl_id"]

    provider.create(dict(PROPS))
    assert refreshed_acl() == "acl-1"
    api.state = ListenerAclState("on", "black", "acl-1")  # turned into a blacklist by hand
    assert refreshed_acl() == ""
    api.state = ListenerAclState("off", "", "")
    assert refreshed_acl() == ""


def test_the_sdk_client_needs_credentials_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALICLOUD_ACCESS_KEY", raising=False)
    monkeypatch.setenv("ALICLOUD_SECRET_KEY", "s")
    with pytest.raises(RuntimeError, match=r"^ALICLOUD_ACCESS_KEY not set: the API server's listener ACL"):
        SdkListenerApi("cn-shanghai")
    monkeypatch.setenv("ALICLOUD_ACCESS_KEY", "k")
    client = SdkListenerApi("cn-shanghai")
    assert client.client._endpoint == "slb.cn-shanghai.aliyuncs.com"
