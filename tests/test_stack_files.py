"""Stack files read as the Pulumi CLI reads them, checked as it checks them, and bounded against bad input.

Each test here failed on the reader before offline_engine.stack_yaml / cli_config_rules (a traceback, a hang,
silent acceptance or an unclear message: issues #11 and #14).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from offline_engine.stack_files import PROJECT_DIR, StackFileError, load_stack_settings, stack_names

DEV = (PROJECT_DIR / "stacks" / "Pulumi.dev.yaml").read_text()
# The 13 keys Pulumi.yaml declared without a default before issue #11 (two of them secret).
UNDEFAULTED = (
    "zoneId",
    "kubernetesVersion",
    "nodeTaint",
    "keyName",
    "pluginImage",
    "imageRevision",
    "imageSource",
    "registryInstanceId",
    "registryHost",
    "registryUsername",
    "testPodImage",
)


def project(tmp_path: Path, stack_text: str, *, pulumi_yaml: str | None = None) -> Path:
    (tmp_path / "stacks").mkdir(exist_ok=True)
    (tmp_path / "Pulumi.yaml").write_text(pulumi_yaml or (PROJECT_DIR / "Pulumi.yaml").read_text())
    (tmp_path / "stacks" / "Pulumi.t.yaml").write_text(stack_text)
    return tmp_path


def error_of(tmp_path: Path, stack_text: str | bytes, **kwargs: str) -> str:
    if isinstance(stack_text, bytes):
        project(tmp_path, "", **kwargs)
        (tmp_path / "stacks" / "Pulumi.t.yaml").write_bytes(stack_text)
    else:
        project(tmp_path, stack_text, **kwargs)
    with pytest.raises(StackFileError) as caught:
        load_stack_settings("t", project_dir=tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("stack", stack_names())
def test_the_committed_stacks_pass_the_cli_rules(stack: str) -> None:
    settings = load_stack_settings(stack)
    assert settings.config["alicloud:region"] == "cn-shanghai"


def test_keys_declared_without_a_default_stop_the_stack_as_the_cli_does(tmp_path: Path) -> None:
    old = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    for name in UNDEFAULTED:
        del old["config"][name]["default"]
    for name in ("nodePassword", "registryPassword"):
        old["config"][name] = {"type": "string", "description": "a password", "secret": True}
    message = error_of(tmp_path, DEV, pulumi_yaml=yaml.safe_dump(old))
    missing = sorted(
        {*UNDEFAULTED, "nodePassword", "registryPassword"} - {"keyName", "registryInstanceId", "registryHost"}
    )
    assert len(missing) == 10
    listed = ", ".join(f"'{name}'" for name in missing[:-1]) + f" and '{missing[-1]}'"
    assert f"Stack 't' is missing configuration values {listed}" in message.replace(", and", " and")


def test_a_secret_key_stored_in_plaintext_is_refused_as_the_cli_does(tmp_path: Path) -> None:
    declared = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    declared["config"]["nodePassword"] = {"type": "string", "secret": True, "default": ""}
    message = error_of(
        tmp_path, DEV + "  ack-rdma:nodePassword: hunter2\n", pulumi_yaml=yaml.safe_dump(declared)
    )
    assert "Stack 't' with configuration key 'nodePassword' must be encrypted as it's secret" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("line", "type_name"),
    [
        ("ack-rdma:testPods: yes", "boolean"),
        ("ack-rdma:desiredSize: 2.5", "integer"),
        ("ack-rdma:desiredSize: two", "integer"),
        ("ack-rdma:instanceTypes: ecs.g8i.8xlarge", "array<string>"),
        ("ack-rdma:sshIngressCidrs: [1]", "array<string>"),
        ("ack-rdma:nodeLabels: [a]", "object"),
        ("ack-rdma:namePrefix: [a]", "string"),
    ],
)
def test_values_of_another_type_than_declared_are_refused_as_the_cli_does(
    tmp_path: Path, line: str, type_name: str
) -> None:
    key = line.split(":")[1]
    message = error_of(tmp_path, f"config:\n  alicloud:region: cn-shanghai\n  {line}\n")
    assert f"Stack 't' with configuration key '{key}' must be of type '{type_name}'" in message


def test_yaml_1_1_booleans_stay_strings_as_go_yaml_reads_them(tmp_path: Path) -> None:
    project(tmp_path, DEV + "  ack-rdma:namePrefix: yes\n".replace("ack-rdma:namePrefix: ack-rdma-dev\n", ""))
    text = (
        (tmp_path / "stacks" / "Pulumi.t.yaml")
        .read_text()
        .replace("  ack-rdma:namePrefix: ack-rdma-dev\n", "")
    )
    (tmp_path / "stacks" / "Pulumi.t.yaml").write_text(text)
    assert load_stack_settings("t", project_dir=tmp_path).config["ack-rdma:namePrefix"] == "yes"


def test_a_misspelt_config_section_is_named_once(tmp_path: Path) -> None:
    message = error_of(tmp_path, DEV.replace("\nconfig:", "\nconfg:"))
    assert "1 problem: (1) no config: section; did you mean confg:?" in message


def test_other_unknown_top_level_keys_are_named(tmp_path: Path) -> None:
    message = error_of(tmp_path, DEV + "enviroment: dev\n")
    assert (
        "enviroment: is not a stack file field (the Pulumi CLI ignores it); did you mean environment:?"
        in message
    )


def test_a_duplicate_key_is_refused_with_go_yamls_words(tmp_path: Path) -> None:
    message = error_of(tmp_path, DEV + "  ack-rdma:desiredSize: 3\n")
    lines = DEV.splitlines()
    first = next(n for n, text in enumerate(lines, 1) if text.startswith("  ack-rdma:desiredSize:"))
    assert f'mapping key "ack-rdma:desiredSize" already defined at line {first}' in message


def test_a_null_value_is_refused(tmp_path: Path) -> None:
    message = error_of(tmp_path, DEV.replace("ack-rdma:desiredSize: 2", "ack-rdma:desiredSize:"))
    assert "ack-rdma:desiredSize has no value (null; the Pulumi CLI would pass an empty string)" in message


def test_a_malformed_key_is_refused_with_the_clis_words(tmp_path: Path) -> None:
    message = error_of(tmp_path, DEV + "  ack-rdma:a:b: 1\n")
    assert "could not parse ack-rdma:a:b as a configuration key" in message


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    message = error_of(tmp_path, DEV.encode() + b"  ack-rdma:namePrefix: caf\xe9\n")
    assert "is not UTF-8 text (byte 0xe9 at offset" in message


def test_an_alias_bomb_is_refused_quickly_with_a_short_message(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(9)]
    started = time.perf_counter()
    message = error_of(tmp_path, "\n".join(lines) + "\nconfig:\n  ack-rdma:nodeLabels: *j\n")
    # Milliseconds when refused, 70 s when expanded: a bound far from both, so a busy machine cannot flip it.
    assert time.perf_counter() - started < 20
    assert "document contains excessive aliasing" in message
    assert len(message) < 300


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    message = error_of(tmp_path, "config:\n  ack-rdma:pluginConfig: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert "nests deeper than" in message


def test_long_keys_are_shortened_in_the_error(tmp_path: Path) -> None:
    message = error_of(tmp_path, DEV + "? " + "x" * 20_000 + "\n: 1\n")
    assert "(20000 characters)" in message
    assert len(message) < 600


def test_only_regular_files_of_bounded_size_are_read(tmp_path: Path) -> None:
    project(tmp_path, DEV)
    stack_file = tmp_path / "stacks" / "Pulumi.t.yaml"
    stack_file.unlink()
    os.mkfifo(stack_file)
    # A FIFO with no writer blocks an open for reading for good; pytest-timeout ends such a run.
    with pytest.raises(StackFileError, match="is a FIFO, not a regular file"):
        load_stack_settings("t", project_dir=tmp_path, stack_file=stack_file)
    stack_file.unlink()
    stack_file.write_text(DEV + "#" * (5 * 2**20))
    with pytest.raises(StackFileError, match="is larger than 4 MiB"):
        load_stack_settings("t", project_dir=tmp_path)


def test_the_project_file_is_checked_as_the_cli_checks_it(tmp_path: Path) -> None:
    broken = (
        "name: ack-rdma\nruntime: python\nstackConfigDir: stacks\nconfig:\n"
        "  a:\n    type: array\n"
        "  b:\n    type: integer\n    default: two\n"
        "  aws:region:\n    type: string\n"
    )
    message = error_of(tmp_path, "config: {}\n", pulumi_yaml=broken)
    assert "The configuration key 'a' declares an array but does not specify the underlying type" in message
    assert (
        "The default value specified for configuration key 'b' is not of the expected type 'integer'"
        in message
    )
    assert (
        "Configuration key 'aws:region' is not namespaced by the project and should not define a type"
        in message
    )


def test_a_fifo_or_directory_in_the_stack_directory_is_named_as_such(tmp_path: Path) -> None:
    project(tmp_path, DEV)
    stack_file = tmp_path / "stacks" / "Pulumi.t.yaml"
    stack_file.unlink()
    os.mkfifo(stack_file)
    with pytest.raises(StackFileError, match="is a FIFO, not a regular file"):
        load_stack_settings("t", project_dir=tmp_path)
    stack_file.unlink()
    stack_file.mkdir()
    with pytest.raises(StackFileError, match="is a directory, not a regular file"):
        load_stack_settings("t", project_dir=tmp_path)


def test_a_number_too_long_for_python_is_named_without_python_advice(tmp_path: Path) -> None:
    message = error_of(tmp_path, "config:\n  ack-rdma:desiredSize: " + "9" * 5000 + "\n")
    assert "line 2: a number of 5000 digits, too long for any config value" in message
    assert "sys.set_int_max_str_digits" not in message


def test_control_characters_in_keys_are_escaped_so_the_error_stays_one_line(tmp_path: Path) -> None:
    """Found by the fuzz test: a key name with a newline split the message."""
    message = error_of(tmp_path, 'config:\n  "ack-rdma:\\n\\x1b[31mred": ~\n')
    assert "ack-rdma:\\n\\x1b[31mred has no value" in message
