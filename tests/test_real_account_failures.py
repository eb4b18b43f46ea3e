"""One regression test per failure a real account showed where `make preview` said nothing (issue #11).

Each case is a stack file that reproduces it; the offline plan (``python -m offline_engine.plan``, what
``make preview`` runs) must stop with exit 2 and one short paragraph naming the key and the fix. On the code
before issue #11 every one of these planned with exit 0.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from offline_engine import plan
from offline_engine.stack_files import PROJECT_DIR

DEV = (PROJECT_DIR / "stacks" / "Pulumi.dev.yaml").read_text()
MAX_MESSAGE = 2000


def dev_with(*lines: str, drop: tuple[str, ...] = ()) -> str:
    """The dev stack file with the lines starting with ``drop`` removed and ``lines`` added to config."""
    kept = [line for line in DEV.splitlines() if not line.strip().startswith(drop)]
    return "\n".join(kept) + "\n" + "".join(f"  {line}\n" for line in lines)


def planned(
    tmp_path: Path, stack_text: str, capsys: pytest.CaptureFixture[str], **flags: Path
) -> tuple[int, str]:
    stack_file = tmp_path / "Pulumi.t.yaml"
    stack_file.write_text(stack_text)
    argv = ["--stack", "t", "--stack-file", str(stack_file), "--out", str(tmp_path / "build")]
    for flag, value in flags.items():
        argv += [f"--{flag.replace('_', '-')}", str(value)]
    code = plan.main(argv)
    err = capsys.readouterr().err
    return code, err


CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "kubernetesVersion banana": (
        dev_with("ack-rdma:kubernetesVersion: banana"),
        ("ack-rdma:kubernetesVersion 'banana' is not an ACK Kubernetes version", "1.33.3-aliyun.1"),
    ),
    "misspelt key nodeCont": (
        dev_with("ack-rdma:nodeCont: 4"),
        ("ack-rdma:nodeCont is not a config key of this program; did you mean 'desiredSize'?",),
    ),
    "misspelt key desiredSzie": (
        dev_with("ack-rdma:desiredSzie: 4"),
        ("ack-rdma:desiredSzie is not a config key of this program; did you mean 'desiredSize'?",),
    ),
    "misspelt namespace ack-rmda": (
        dev_with("ack-rmda:desiredSize: 4"),
        ("ack-rmda:desiredSize is in namespace 'ack-rmda'", "did you mean ack-rdma:desiredSize?"),
    ),
    "plaintext nodePassword": (
        dev_with("ack-rdma:nodePassword: hunter2", drop=("ack-rdma:keyName",)),
        (
            "ack-rdma:nodePassword is stored in plaintext but must be secret",
            "pulumi config set --secret ack-rdma:nodePassword",
        ),
    ),
    "plaintext registryPassword": (
        dev_with(
            "ack-rdma:registryPassword: hunter2",
            "ack-rdma:registryUsername: me",
            "ack-rdma:registryEdition: personal",
            drop=("ack-rdma:registryEdition", "ack-rdma:registryInstanceId", "ack-rdma:registryHost"),
        ),
        ("ack-rdma:registryPassword is stored in plaintext but must be secret",),
    ),
    "duplicate key": (
        dev_with("ack-rdma:desiredSize: 3"),
        ('mapping key "ack-rdma:desiredSize" already defined at line',),
    ),
    "null value": (
        dev_with("ack-rdma:nodeTaint:"),
        ("ack-rdma:nodeTaint has no value (null",),
    ),
    "null value of a structured key": (
        dev_with("ack-rdma:sshIngressCidrs: ~"),
        ("ack-rdma:sshIngressCidrs has no value (null",),
    ),
    "testPods: yes": (
        dev_with("ack-rdma:testPods: yes", drop=("ack-rdma:testPods",)),
        ("Stack 't' with configuration key 'testPods' must be of type 'boolean'",),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_real_account_failure_stops_the_plan_with_exit_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_text, expected = CASES[case]
    code, err = planned(tmp_path, stack_text, capsys)
    assert code == plan.EXIT_BAD_INPUT, err
    assert err.count("\n") == 1 and len(err) < MAX_MESSAGE
    assert "hunter2" not in err
    for text in expected:
        assert text in err, f"{case}: {text!r} not in {err!r}"


def test_keys_without_a_default_stop_the_plan_as_the_cli_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pulumi.yaml as it was: 13 declared keys without a default; dev sets 3 of them, so the CLI stops."""
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    for declaration in project["config"].values():
        if declaration.get("default") == "":
            del declaration["default"]
    for name in ("nodePassword", "registryPassword"):
        project["config"][name] = {"type": "string", "description": name, "secret": True}
    project_dir = tmp_path / "project"
    (project_dir / "stacks").mkdir(parents=True)
    (project_dir / "Pulumi.yaml").write_text(yaml.safe_dump(project))
    code, err = planned(tmp_path, DEV, capsys, project_dir=project_dir)
    assert code == plan.EXIT_BAD_INPUT
    assert (
        "Stack 't' is missing configuration values 'imageRevision', 'imageSource', 'kubernetesVersion', "
        in err
    )


def test_make_preview_exits_2_with_the_message_on_stderr(tmp_path: Path) -> None:
    """The same path through a real process, as `make preview` runs it."""
    stack_file = tmp_path / "Pulumi.t.yaml"
    stack_file.write_text(dev_with("ack-rdma:desiredSzie: 4"))
    done = subprocess.run(
        [sys.executable, "-m", "offline_engine.plan", "--stack", "t", "--stack-file", str(stack_file)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "did you mean 'desiredSize'?" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
