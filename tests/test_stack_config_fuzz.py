"""Fuzzing the stack config readers (issue #14): whatever a stack file holds, reading it and validating its
config ends in a valid config or one short error (StackFileError, StackConfigError) - never another
exception, a hang or a message that grows with the input. Derandomized: the same examples every run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.config import StackConfigError, stack_config_from
from components.config_keys import KEYS
from offline_engine.stack_files import PROJECT_DIR, StackFileError, load_stack_settings

MAX_MESSAGE = 4000
# Per example: milliseconds normally; the bound is for a parser gone quadratic, not a clock to beat.
MAX_SECONDS = 30
DEV = yaml.safe_load((PROJECT_DIR / "stacks" / "Pulumi.dev.yaml").read_text())["config"]
FUZZ = settings(
    derandomize=True,
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

names = (
    st.sampled_from([key.name for key in KEYS])
    | st.sampled_from(["desiredSzie", "nodeCont", "confg", "x" * 5000])
    | st.text(min_size=1, max_size=30)
)
keys = st.builds(
    lambda namespace, name: f"{namespace}:{name}" if namespace else name,
    st.sampled_from(["ack-rdma", "ack-rmda", "alicloud", "", "pulumi"]),
    names,
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=50)
    | st.sampled_from(["yes", "no", "on", "0x1F", "1e9", "2026-01-01", "~", "true", "20000" * 4000])
    | st.builds(lambda: {"secure": "v1:abc"})
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
configs = st.dictionaries(keys, values, max_size=8)


def check(stack_file: Path) -> None:
    """Read and validate ``stack_file`` as `make preview` would, up to the program's first resource."""
    started = time.perf_counter()
    try:
        stack = load_stack_settings("fuzz", stack_file=stack_file)
        stack_config_from(stack.config, stack.secret_keys.__contains__, "fuzz")
    except (StackFileError, StackConfigError) as error:
        assert len(str(error)) < MAX_MESSAGE, str(error)[:200]
        assert "\n" not in str(error)
    assert time.perf_counter() - started < MAX_SECONDS


@FUZZ
@given(config=configs, base=st.booleans())
def test_any_config_mapping_gives_a_config_or_a_short_error(
    tmp_path: Path, config: dict[str, Any], base: bool
) -> None:
    stack_file = tmp_path / "Pulumi.fuzz.yaml"
    stack_file.write_text(yaml.safe_dump({"config": {**(DEV if base else {}), **config}}))
    check(stack_file)


@FUZZ
@given(data=st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_bytes_give_a_config_or_a_short_error(tmp_path: Path, data: bytes) -> None:
    stack_file = tmp_path / "Pulumi.fuzz.yaml"
    stack_file.write_bytes(b"config:\n  alicloud:region: cn-shanghai\n" + data)
    check(stack_file)


@FUZZ
@given(cut=st.integers(min_value=0, max_value=2000), insert=st.text(max_size=20))
def test_a_damaged_real_stack_file_gives_a_config_or_a_short_error(
    tmp_path: Path, cut: int, insert: str
) -> None:
    text = (PROJECT_DIR / "stacks" / "Pulumi.prod.yaml").read_text()
    cut %= len(text)
    stack_file = tmp_path / "Pulumi.fuzz.yaml"
    stack_file.write_text(text[:cut] + insert + text[cut + 1 :])
    check(stack_file)


def test_the_fuzz_reaches_valid_configs(tmp_path: Path) -> None:
    """The checks above are not vacuous: the untouched dev file gives a config."""
    stack_file = tmp_path / "Pulumi.fuzz.yaml"
    stack_file.write_text(yaml.safe_dump({"config": DEV}))
    stack = load_stack_settings("fuzz", stack_file=stack_file)
    assert stack_config_from(stack.config, stack.secret_keys.__contains__, "fuzz").node_count == 2
