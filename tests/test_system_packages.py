"""scripts/system-packages.sh: the one list of Debian packages, checked with dpkg-query and installed by
`make test`/`make image` as root; a non-root user gets the exact apt-get line and exit 2.

The real dpkg-query answers for this machine; installing is shown with stand-ins for dpkg-query, apt-get and
id on PATH (a test cannot install packages on the machine it runs on)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts/system-packages.sh"
LIST = REPO / "scripts/system-packages.txt"


def packages(group: str) -> list[str]:
    rows = [line.split("#")[0].split() for line in LIST.read_text(encoding="utf-8").splitlines()]
    return [row[0] for row in rows if len(row) == 2 and row[1] == group]


def script(*groups: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    return subprocess.run(
        ["bash", str(SCRIPT), *groups], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def stand_ins(tmp_path: Path, installed: list[str], uid: int) -> str:
    """dpkg-query that knows only `installed` (as dpkg does: exit 1 and a message for the rest), an apt-get
    that records its arguments, and id -u."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tools = {
        "dpkg-query": f"""
for package in "${{@:3}}"; do
  case " {" ".join(installed)} " in
    *" $package "*) printf '%s:ii \\n' "$package" ;;
    *) echo "dpkg-query: no packages found matching $package" >&2; missing=1 ;;
  esac
done
exit ${{missing:-0}}
""",
        "apt-get": f'echo "$*" >>{tmp_path}/apt-get.calls',
        "id": f"echo {uid}",
    }
    for name, body in tools.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}", encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    return f"{bin_dir}:/usr/bin:/bin"


def test_every_group_lists_packages_and_ci_installs_none_itself() -> None:
    for group in ("make", "setup", "test", "image"):
        assert packages(group), group
    assert {"python3-pyverbs", "perftest", "ibverbs-utils", "util-linux", "git"} <= set(packages("test"))
    ci = (REPO / ".ci/run").read_text(encoding="utf-8")
    assert "apt-get" not in ci and "scripts/system-packages.sh make" in ci
    assert re.search(r"^make test$", ci, re.MULTILINE)


def test_this_machine_has_what_the_tests_use() -> None:
    """The real dpkg: a run of the suite here is a run with every package of the list present."""
    result = script("setup", "test")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_all_present_means_no_apt_get(tmp_path: Path) -> None:
    path = stand_ins(tmp_path, packages("setup") + packages("test"), uid=0)
    result = script("setup", "test", path=path)
    assert (result.returncode, result.stderr) == (0, "")
    assert not (tmp_path / "apt-get.calls").exists()


def test_root_installs_only_what_is_missing(tmp_path: Path) -> None:
    path = stand_ins(
        tmp_path, [p for p in packages("test") if p not in ("perftest", "python3-pyverbs")], uid=0
    )
    result = script("test", path=path)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "apt-get.calls").read_text(encoding="utf-8").splitlines()
    assert calls == ["update -qq", "install -y -qq --no-install-recommends python3-pyverbs perftest"]


def test_non_root_gets_the_exact_command_and_exit_2(tmp_path: Path) -> None:
    path = stand_ins(tmp_path, packages("test")[1:], uid=1000)
    result = script("test", path=path)
    assert result.returncode == 2
    missing = packages("test")[0]
    assert result.stderr.splitlines() == [
        f"system-packages: make test needs Debian packages that are not installed: {missing}.",
        "Install them (as root, or with sudo), then run make again:",
        f"  sudo apt-get update && sudo apt-get install -y --no-install-recommends {missing}",
    ]
    assert not (tmp_path / "apt-get.calls").exists()


@pytest.mark.parametrize("groups", [(), ("tests",)])
def test_unknown_or_no_group_is_refused(groups: tuple[str, ...]) -> None:
    result = script(*groups)
    assert result.returncode == 2
    assert "make setup test image" in result.stderr
