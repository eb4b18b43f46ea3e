"""ack-rdma-check's readers of outside input (the --outputs file, kubeconfig files, KUBECONFIG, the YAML in
the outputs) against bad input: exit 2 with one short paragraph naming the input and the fix, whatever the
size or shape of the input; never a traceback, a hang, or an error that grows with the input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ack_rdma_check import cli
from ack_rdma_check.transport import Cluster, Kubeconfig
from tests.check_fixtures import stack

ENTRY_POINT = Path(sys.executable).parent / "ack-rdma-check"
MAX_MESSAGE = 700
"""The longest refusal: fixed text, a path of up to 200 characters and a value shortened to 60."""


class ReachedError(Exception):
    """The inputs were all accepted and the check went on to contact the cluster."""


def reach(kubeconfig: Kubeconfig) -> Cluster:
    raise ReachedError(kubeconfig.origin)


def check(argv: list[str], environ: dict[str, str] | None = None) -> tuple[int, str]:
    """The CLI in process up to the cluster contact: (2, message) for refused input, (0, "") if accepted."""
    out, err = io.StringIO(), io.StringIO()
    try:
        rc = cli.run(argv, environ or {}, connect=reach, stdout=out, stderr=err)
    except ReachedError:
        return 0, ""
    assert out.getvalue() == ""
    return rc, err.getvalue()


def assert_refused(result: tuple[int, str], *fragments: str) -> None:
    rc, message = result
    assert rc == 2, message
    assert message.startswith("ack-rdma-check: ") and message.count("\n") == 1, message
    assert len(message) < MAX_MESSAGE, f"{len(message)} characters"
    for fragment in fragments:
        assert fragment in message


def entry_point(argv: list[str], environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed command, for inputs that used to hang the process (a timeout fails the test)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", **environ}
    return subprocess.run(
        [str(ENTRY_POINT), *argv], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_outputs_file_in_latin_1(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_bytes(json.dumps(stack.outputs(checkMinGbits="café"), ensure_ascii=False).encode("latin-1"))
    offset = path.read_bytes().index(b"\xe9")
    assert_refused(
        check(["--outputs", str(path)]),
        f"--outputs {path} is not UTF-8 text (byte 0xe9 at offset {offset})",
        "pulumi stack output --json --show-secrets > outputs.json",
    )


@pytest.mark.parametrize("brackets", ["[]", "{}"])
def test_outputs_file_nested_100000_levels(tmp_path: Path, brackets: str) -> None:
    path = tmp_path / "outputs.json"
    opening = brackets[0] if brackets == "[]" else '{"a":'
    path.write_text(opening * 100_000 + "1" + brackets[1] * 100_000, encoding="utf-8")
    assert_refused(check(["--outputs", str(path)]), f"--outputs {path} nests deeper than 64 levels")


def test_nesting_within_the_bound_is_read(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(stack.outputs(extra=[[[["ok", "[{not a bracket"]]]])), encoding="utf-8")
    assert check(["--outputs", str(path)]) == (0, "")


def test_outputs_file_over_4_mib(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(stack.outputs(padding="x" * (4 * 1024 * 1024))), encoding="utf-8")
    assert_refused(check(["--outputs", str(path)]), "is larger than 4 MiB")


def test_integer_beyond_the_conversion_limit(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text('{"checkMinGbits": ' + "9" * 5000 + "}", encoding="utf-8")
    assert_refused(check(["--outputs", str(path)]), "holds a number of more than 4300 digits")


def test_fifo_as_outputs_file(tmp_path: Path) -> None:
    fifo = tmp_path / "outputs.json"
    os.mkfifo(fifo)
    done = entry_point(["--outputs", str(fifo)], {})
    assert done.returncode == 2
    assert done.stderr == (
        f"ack-rdma-check: --outputs {fifo} is a FIFO, not a regular file. Save the stack outputs with "
        "`pulumi stack output --json --show-secrets > outputs.json` and pass that file.\n"
    )


@pytest.mark.parametrize("how", ["flag", "KUBECONFIG"])
def test_fifo_as_kubeconfig(tmp_path: Path, how: str) -> None:
    fifo = tmp_path / "kubeconfig"
    os.mkfifo(fifo)
    argv, environ = (["--kubeconfig", str(fifo)], {}) if how == "flag" else ([], {"KUBECONFIG": str(fifo)})
    done = entry_point([*argv, "--selector", "app=rdma-test"], environ)
    assert done.returncode == 2
    assert "is a FIFO, not a regular file. Pass the path of a kubeconfig" in done.stderr
    assert done.stderr.count("\n") == 1


def test_kubeconfig_environment_naming_no_file() -> None:
    assert_refused(
        check(["--selector", "app=rdma-test"], {"KUBECONFIG": "/nonexistent"}),
        "KUBECONFIG=/nonexistent names no file that exists. Set KUBECONFIG to the path of a kubeconfig",
    )
    assert_refused(
        check(["--selector", "app=rdma-test"], {"KUBECONFIG": "/nonexistent:/also/missing"}),
        "KUBECONFIG=/nonexistent:/also/missing names no file that exists",
    )


def test_kubeconfig_file_in_latin_1(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_bytes(stack.KUBECONFIG_YAML.replace("kubernetes-admin", "admin-é").encode("latin-1"))
    assert_refused(
        check(["--selector", "app=x"], {"KUBECONFIG": f"{tmp_path}/absent:{path}"}),
        f"{path} (in KUBECONFIG) is not UTF-8 text (byte 0xe9",
    )


BILLION_LAUGHS = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
)


def test_yaml_alias_bomb_as_kubeconfig_output(tmp_path: Path) -> None:
    path = stack.write_outputs(tmp_path / "outputs.json", kubeconfig=BILLION_LAUGHS)
    assert_refused(
        check(["--outputs", str(path)]),
        "the kubeconfig output of --outputs",
        "is not usable YAML (expands to more than 100000 nodes through its aliases)",
    )


def test_yaml_alias_into_itself_and_deep_yaml(tmp_path: Path) -> None:
    recursive = stack.write_outputs(tmp_path / "recursive.json", kubeconfig="&a [*a]")
    assert_refused(check(["--outputs", str(recursive)]), "expands to more than 100000 nodes")
    deep = stack.write_outputs(tmp_path / "deep.json", kubeconfig="[" * 100_000)
    assert_refused(check(["--outputs", str(deep)]), "is not usable YAML (nests deeper than 64 levels)")


def test_long_values_are_echoed_shortened(tmp_path: Path) -> None:
    path = stack.write_outputs(tmp_path / "outputs.json", checkMinGbits="9" * 20_000)
    rc, message = check(["--outputs", str(path)])
    assert_refused((rc, message), "The checkMinGbits output", "…(20002 characters)")


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("oops", "the Pod's spec is 'oops'; it must be a mapping"),
        ({"containers": "tools"}, "the Pod's spec.containers is 'tools'; it must be a list of mappings"),
        ({"containers": [{"image": 7}]}, "spec.containers[0].image is 7; it must be a string"),
        (
            {"containers": [{"image": "t"}], "tolerations": [1]},
            "spec.tolerations is [1]; it must be a list of mappings",
        ),
        (
            {"containers": [{"image": "t"}], "imagePullSecrets": [{}]},
            "spec.imagePullSecrets[].name is None; it must be a secret name",
        ),
        (
            {"containers": [{"image": "t"}], "nodeSelector": {"a": 1}},
            "spec.nodeSelector is {'a': 1}; it must be a mapping of strings",
        ),
    ],
)
def test_test_pod_manifest_of_the_wrong_shape(tmp_path: Path, spec: Any, problem: str) -> None:
    manifest = yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
    path = stack.write_outputs(tmp_path / "outputs.json", testPodManifest=manifest)
    assert_refused(check(["--outputs", str(path), "--create"]), "the testPodManifest output of", problem)


# The fuzz test: JSON of the outputs' shape with values of any shape, YAML strings for the two outputs that
# hold YAML, and arbitrary bytes. Derandomized: the same examples every run.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
YAML_TEXT = st.sampled_from(
    [
        stack.KUBECONFIG_YAML,
        stack.outputs()["testPodManifest"],
        BILLION_LAUGHS,
        "&a [*a]",
        "[" * 200,
        "kind: List\nitems: 5\n",
        "kind: Pod\nspec: {containers: [5]}\n",
        "kind: Pod\nspec: {containers: [{image: [x]}], tolerations: {a: b}}\n",
        "--- 1\n--- [2]\n",
        ": : :",
        "\t\x00",
    ]
) | st.text(max_size=80).map(lambda text: f"kind: Pod\nspec: {text}")
KEYS = ["kubeconfig", "testPods", "checkMinGbits", "rdmaResourceName", "testPodManifest"]
OUTPUTS = st.fixed_dictionaries(
    {},
    optional={
        key: (YAML_TEXT if key in ("kubeconfig", "testPodManifest") else st.nothing()) | JSON_VALUES
        for key in KEYS
    },
).map(lambda values: {**stack.outputs(), **values})
CONTENT = (
    OUTPUTS.map(lambda values: json.dumps(values).encode())
    | JSON_VALUES.map(lambda value: json.dumps(value).encode())
    | st.binary(max_size=200)
    | st.text(alphabet='[]{}"\\:,1 ', max_size=300).map(str.encode)
)


@settings(
    derandomize=True,
    database=None,
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(content=CONTENT, create=st.booleans())
def test_fuzz_outputs_file(content: bytes, create: bool) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "outputs.json"
        path.write_bytes(content)
        rc, message = check(["--outputs", str(path), *(["--create"] if create else [])])
    if rc != 0:
        assert_refused((rc, message))


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (
            ["--min-gbits", "9" * 20_000],
            "Argument --min-gbits: expected a positive number of Gbit/s such as 44",
        ),
        (["--min-gbits", "1e9"], "Argument --min-gbits: '1e9' Gbit/s is more than 800"),
        (["--pod-timeout", "1e300"], "Argument --pod-timeout: '1e300' seconds is more than 86400 (a day)"),
        (["--connect-timeout", "7200"], "Argument --connect-timeout: '7200' seconds is more than 3600"),
        (["--namespace", "RDMA_test"], "Argument --namespace: 'RDMA_test' is not a namespace name"),
        (
            ["--namespace", "a" * 64],
            "is not a namespace name (lower-case letters, digits and '-', at most 63)",
        ),
        (["--netdev", "eth0" * 4], "Argument --netdev: 'eth0eth0eth0eth0' is not a network interface name"),
        (["--device", "mlx5 0"], "Argument --device: 'mlx5 0' is not an RDMA device name (one word"),
        (["--selector", "app=\x1b[2J"], "Argument --selector: 'app=\\x1b[2J' is not a label selector"),
        (["--image", "x" * 5000], "is not an image reference (one word of printable ASCII, at most 1024"),
        (["--bogus"] * 5000, "Unrecognized arguments: --bogus --bogus"),
    ],
)
def test_flags_out_of_range_or_shape(argv: list[str], fragment: str) -> None:
    assert_refused(check(argv), fragment)


def test_set_based_selector_with_spaces_is_accepted(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(stack.KUBECONFIG_YAML, encoding="utf-8")
    assert check(["--kubeconfig", str(kubeconfig), "--selector", "app in (rdma-test), tier!=web"]) == (0, "")
