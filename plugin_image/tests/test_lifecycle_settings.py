"""Serve options of the lifecycle: --health-poll-interval and --metrics-address (flag > env > default)."""

from __future__ import annotations

import pytest
from rdma_device_plugin import cli
from rdma_device_plugin.settings import MetricsAddress, SettingsError, serve_options


def test_defaults_poll_every_second_and_serve_no_metrics() -> None:
    opts = serve_options({}, {})
    assert (opts.health_poll_interval, opts.metrics_address) == (1.0, None)


def test_environment_sets_them_as_the_daemonset_does_and_flags_win() -> None:
    env = {"RDMA_DP_HEALTH_POLL_INTERVAL": "0.5", "RDMA_DP_METRICS_ADDRESS": "10.0.0.5:9530"}
    opts = serve_options({}, env)
    assert (opts.health_poll_interval, opts.metrics_address) == (0.5, MetricsAddress("10.0.0.5", 9530))
    opts = serve_options({"health_poll_interval": "2", "metrics_address": ""}, env)
    assert (opts.health_poll_interval, opts.metrics_address) == (2.0, None)


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("10.0.0.5:9530", MetricsAddress("10.0.0.5", 9530)),
        ("[fd00::5]:9530", MetricsAddress("fd00::5", 9530)),
        ("127.0.0.1:1", MetricsAddress("127.0.0.1", 1)),
    ],
)
def test_metrics_addresses_accepted(value: str, address: MetricsAddress) -> None:
    parsed = serve_options({"metrics_address": value}, {}).metrics_address
    assert parsed == address
    assert str(parsed) == value


def test_an_unbracketed_ipv6_host_ip_as_the_daemonset_gives_it_on_an_ipv6_node() -> None:
    parsed = serve_options({}, {"RDMA_DP_METRICS_ADDRESS": "fd00::5:9530"}).metrics_address
    assert parsed == MetricsAddress("fd00::5", 9530)
    assert str(parsed) == "[fd00::5]:9530"


@pytest.mark.parametrize(
    "value",
    [
        "$(HOST_IP):9530",
        ":9530",
        "10.0.0.5",
        "10.0.0.5:",
        "10.0.0.5:0",
        "10.0.0.5:65536",
        "[10.0.0.5]:9530",
        "fd00::5",
        # Names are not resolved (that would send a DNS query at start): literal addresses only.
        "node-1.example.com:9530",
        "no-such-host.invalid:9530",
        "localhost:9530",
        "999.1.1.1:9530",
        "10.0.0.5:000009530",
    ],
)
def test_metrics_addresses_refused_with_one_paragraph_naming_flag_and_variable(value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        serve_options({"metrics_address": value}, {})
    assert str(caught.value) == (
        f"--metrics-address (env RDMA_DP_METRICS_ADDRESS): {value!r} is not IP:PORT; give this node's IP "
        "address (a literal, not a host name) and a port, e.g. 10.0.0.5:9530 or [fd00::5]:9530 (the "
        "DaemonSet passes $(HOST_IP):9530), or an empty value to disable /metrics"
    )


def test_a_long_bad_value_is_echoed_shortened() -> None:
    with pytest.raises(SettingsError) as caught:
        serve_options({"metrics_address": "x" * 100_000}, {})
    assert len(str(caught.value)) < 600
    assert "(100000 characters)" in str(caught.value)


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf", "3601", "", "1e-9", "0.01", "-inf"])
def test_health_poll_intervals_refused(value: str) -> None:
    with pytest.raises(
        SettingsError, match=r"^--health-poll-interval \(env RDMA_DP_HEALTH_POLL_INTERVAL\): "
    ):
        serve_options({"health_poll_interval": value}, {})


def test_the_cli_exits_2_with_the_paragraph_on_a_bad_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--metrics-address", "nowhere"], {}) == 2
    err = capsys.readouterr().err
    assert err.startswith("rdma-device-plugin: --metrics-address (env RDMA_DP_METRICS_ADDRESS): 'nowhere'")
    assert err.count("\n") == 1
