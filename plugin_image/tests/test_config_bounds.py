"""What the config reader bounds before and while decoding: file type and size, encoding, nesting depth,
number literals, intervals, IDs per pool and in all; echoed values are shortened. The fuzz test at the end
holds the parser to its contract for arbitrary JSON-ish text and bytes."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdma_device_plugin.api import api_pb2
from rdma_device_plugin.config import (
    MAX_CONFIG_BYTES,
    MAX_DEPTH,
    MAX_IDS_PER_POOL,
    MAX_IDS_TOTAL,
    ConfigError,
    PluginConfig,
    load_config,
    parse_config,
)

# The longest one-paragraph error the parser may give for any input, whatever its size.
MAX_MESSAGE = 600
KUBELET_RECV_LIMIT = 4 * 1024 * 1024


def error_of(data: str | dict[str, object]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return str(caught.value)


@pytest.mark.parametrize("opener", ["[", '{"a":'])
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 10_000])
def test_deep_nesting_is_refused_before_decoding(opener: str, depth: int) -> None:
    closer = "]" if opener == "[" else "}"
    message = error_of(opener * depth + "1" + closer * depth)
    assert message == (
        f"config.json: arrays and objects are nested more than {MAX_DEPTH} levels deep; a valid config nests "
        '5 (e.g. configList[0].selectors.vendors); fix the structure, e.g. {"mode": "hca"}'
    )


def test_deep_nesting_inside_selectors_is_refused_too() -> None:
    deep = "[" * 1000 + "]" * 1000
    text = '{"configList": [{"resourceName": "a", "rdmaHcaMax": 1, "selectors": {"vendors": ' + deep + "}}]}"
    assert "nested more than" in error_of(text)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"mode": "hca", "x": "[" * 5000})
    assert error_of(text).startswith("config.json: x: unknown key; allowed here: mode, ")


def test_the_deepest_valid_config_is_accepted() -> None:
    config = parse_config(
        '{"configList": [{"resourceName": "a", "rdmaHcaMax": 1, "selectors": {"vendors": ["15b3"]}}]}'
    )
    assert config.resources[0].selectors.vendors == ("15b3",)


@pytest.mark.parametrize(
    ("literal", "shown"),
    [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity"), ("1e999", "Infinity")],
)
def test_a_non_finite_interval_is_refused_naming_the_key(literal: str, shown: str) -> None:
    assert error_of('{"mode": "hca", "periodicUpdateInterval": ' + literal + "}") == (
        f"config.json: periodicUpdateInterval: {shown} is not a finite number; use 0 (off) or a number of "
        "seconds"
    )


@pytest.mark.parametrize("value", [1e-9, 0.01, 86_401, 1e300])
def test_an_interval_out_of_range_is_refused(value: float) -> None:
    assert error_of({"mode": "hca", "periodicUpdateInterval": value}) == (
        f"config.json: periodicUpdateInterval: {json.dumps(value)} is out of range; use 0 (off) or 0.05 to "
        "86400 seconds (one day), e.g. 60"
    )


@pytest.mark.parametrize("value", [0, 0.05, 60, 86_400])
def test_intervals_in_range_are_accepted(value: float) -> None:
    assert parse_config({"mode": "hca", "periodicUpdateInterval": value}).periodic_update_interval == value


def test_a_number_literal_of_thousands_of_digits_is_refused_without_a_traceback() -> None:
    message = error_of('{"mode": "hca", "periodicUpdateInterval": 1' + "0" * 5000 + "}")
    assert message == (
        "config.json: holds a number 5001 characters long (1000000000000000000000000000000000000000... (5001 "
        "characters)); no setting needs more than 32"
    )


def pools(*sizes: float) -> dict[str, object]:
    return {
        "configList": [
            {"resourceName": f"p{index}", "rdmaHcaMax": size, "selectors": {}}
            for index, size in enumerate(sizes)
        ]
    }


@pytest.mark.parametrize("value", [MAX_IDS_PER_POOL + 1, 200_000, 10**9, 1e20])
def test_rdma_hca_max_over_the_bound_is_refused(value: float) -> None:
    assert error_of(pools(value)).startswith(
        f"config.json: configList[0].rdmaHcaMax: {int(value)} is more IDs than one pool may advertise "
        f"({MAX_IDS_PER_POOL}: their ListAndWatch updates must fit kubelet's 4 MiB message limit"
    )


def test_the_ids_of_all_pools_together_are_bounded_too() -> None:
    assert parse_config(pools(MAX_IDS_TOTAL - 1, 1)).resources[1].ids_max == 1
    assert error_of(pools(MAX_IDS_TOTAL - 1, 1, 1)).startswith(
        f"config.json: configList[2].rdmaHcaMax: brings the IDs of all pools to {MAX_IDS_TOTAL + 1}, over "
        f"the {MAX_IDS_TOTAL} this plugin serves"
    )


def test_the_largest_pool_fits_kubelets_message_limit_in_the_worst_case() -> None:
    # The longest IDs, "Unhealthy" and a NUMA node id of two bytes: the largest update kubelet can get.
    update = api_pb2.ListAndWatchResponse(
        devices=[
            api_pb2.Device(
                ID=str(index),
                health="Unhealthy",
                topology=api_pb2.TopologyInfo(nodes=[api_pb2.NUMANode(ID=16383)]),
            )
            for index in range(MAX_IDS_PER_POOL)
        ]
    )
    assert update.ByteSize() <= KUBELET_RECV_LIMIT


@pytest.mark.parametrize("key", ["pfNetdevices", "devices"])
def test_a_netdev_listed_twice_is_refused(key: str) -> None:
    data: dict[str, object] = (
        {"mode": "sriov", "pfNetdevices": ["eth0", "eth1", "eth0"]}
        if key == "pfNetdevices"
        else {"configList": [{"resourceName": "a", "rdmaHcaMax": 1, "devices": ["eth0", "eth1", "eth0"]}]}
    )
    path = "pfNetdevices" if key == "pfNetdevices" else "configList[0].devices"
    assert error_of(data) == (
        f'config.json: {path}[2]: "eth0" is already listed at {path}[0]; list each netdev once'
    )


def test_long_values_and_keys_are_echoed_shortened() -> None:
    long = "x" * 1_000_000
    cases: list[dict[str, object]] = [
        {"mode": long},
        {"mode": "hca", long: 1},
        {"configList": [{"resourceName": long, "rdmaHcaMax": 1, "selectors": {}}]},
        {"mode": "sriov", "pfNetdevices": [long]},
    ]
    for data in cases:
        message = error_of(data)
        assert len(message) < MAX_MESSAGE, message[:MAX_MESSAGE]
        assert "x" * 40 + "..." in message
        assert "x" * 41 not in message
        assert "(1000000 characters)" in message


def test_a_config_nested_100000_levels_is_refused_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="the file is larger than 64 KiB"):
        load_config(path)


def test_a_config_file_over_the_size_bound_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"mode": "hca", "x": "' + "y" * MAX_CONFIG_BYTES + '"}')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: the file is larger than 64 KiB, far more than any config needs (a pool is about 150 "
        "bytes); point --config at the plugin's JSON config"
    )


def test_a_fifo_is_refused_at_once_instead_of_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    outcome: list[BaseException | PluginConfig] = []
    reader = threading.Thread(target=lambda: outcome.append(_load(fifo)), daemon=True)
    reader.start()
    reader.join(5)
    if reader.is_alive():
        # Unblock the stuck open() so the thread can end, then fail.
        with open(fifo, "w"):
            pass
        pytest.fail("load_config blocked on a FIFO")
    (error,) = outcome
    assert str(error) == (
        f"{fifo}: cannot read the config file (a FIFO, not a regular file); mount the ConfigMap there or "
        "point --config (env RDMA_DP_CONFIG) at a readable JSON file"
    )


def _load(path: Path) -> BaseException | PluginConfig:
    try:
        return load_config(path)
    except ConfigError as error:
        return error


def test_bytes_that_are_not_utf8_are_named_with_their_offset(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b'{"mode": "h\xe9ca"}')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: cannot read the config file: it is not UTF-8 (byte 0xe9 at offset 11 cannot start or "
        "continue a UTF-8 character); save it as UTF-8 JSON"
    )
    assert "ConfigMap" not in str(caught.value)


# -- fuzz ------------------------------------------------------------------------------------------------

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_KEYS = st.sampled_from(
    [
        "mode", "pfNetdevices", "periodicUpdateInterval", "configList", "resourceName", "resourcePrefix",
        "rdmaHcaMax", "selectors", "devices", "allocation", "vendors", "deviceIDs", "drivers", "ifNames",
        "linkTypes", "hca", "sriov",
    ]
) | st.text(max_size=10)  # fmt: skip
_JSONISH = st.recursive(
    _SCALARS | st.sampled_from(["hca", "sriov", "15b3", "eth0", "shared", "exclusive", "ether", "a"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=5),
    max_leaves=30,
)
_TEXT_NOISE = st.sampled_from(["[" * 2000, "{" * 50, "1" * 400, "NaN", "\ud800", '"', "\\", "-Infinity", ","])


def _assert_contract(outcome: BaseException | PluginConfig, input_size: int) -> None:
    if isinstance(outcome, PluginConfig):
        return
    assert isinstance(outcome, ConfigError), repr(outcome)
    message = str(outcome)
    assert "\n" not in message
    assert len(message) <= MAX_MESSAGE + 200, (input_size, message[:1000])


def _parse(data: str | dict[str, object]) -> BaseException | PluginConfig:
    try:
        return parse_config(data)
    except ConfigError as error:
        return error


FUZZ = settings(
    derandomize=True, database=None, deadline=None, max_examples=300, suppress_health_check=list(HealthCheck)
)


@FUZZ
@given(st.dictionaries(_KEYS, _JSONISH, max_size=6))
def test_fuzz_decoded_mappings(data: dict[str, object]) -> None:
    _assert_contract(_parse(data), len(repr(data)))


@FUZZ
@given(st.lists(_JSONISH.map(lambda v: json.dumps(v, allow_nan=True)) | _TEXT_NOISE, min_size=1, max_size=6))
def test_fuzz_json_text(pieces: list[str]) -> None:
    text = "".join(pieces)
    _assert_contract(_parse(text), len(text))


@FUZZ
@given(st.binary(max_size=300) | st.builds(lambda v: json.dumps(v).encode(), _JSONISH))
def test_fuzz_file_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz.json"
    path.write_bytes(data)
    try:
        outcome: BaseException | PluginConfig = load_config(path)
    except ConfigError as error:
        outcome = error
    _assert_contract(outcome, len(data))
