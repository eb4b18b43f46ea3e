"""The images' OCI labels: the Dockerfile's build args (VERSION, REVISION, SOURCE) under the mock engine."""

from __future__ import annotations

import importlib.metadata
import subprocess
from collections.abc import Callable
from pathlib import Path

import pulumi
import pytest

from components import images
from offline_engine.offline_run import ProgramRun
from offline_engine.stack_files import PROJECT_DIR

RunStack = Callable[..., ProgramRun]
IMAGE = "docker-build:index:Image"
PLUGIN_VERSION = importlib.metadata.version("rdma-device-plugin")


def build_args(run: ProgramRun) -> list[dict[str, str]]:
    built = run.of_type(IMAGE)
    assert sorted(image.inputs["target"] for image in built) == ["plugin", "tools"]
    return [dict(image.inputs.get("buildArgs", {})) for image in built]


def git(directory: Path, *arguments: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=ack-rdma", "-c", "user.email=ack-rdma@example.com", *arguments],
        cwd=directory,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout.strip()


def test_builds_carry_the_plugin_version_and_the_last_revision_of_the_build_context(
    program_runs: dict[str, ProgramRun],
) -> None:
    # Any commit that changed plugin_image/: another may land while the suite runs.
    context_commits = git(PROJECT_DIR, "log", "--format=%H", "--", images.BUILD_CONTEXT).split()
    for stack, run in program_runs.items():
        for args in build_args(run):
            assert set(args) == {"VERSION", "REVISION"}, stack
            assert args["VERSION"] == PLUGIN_VERSION
            assert args["REVISION"] in context_commits
        assert [item for item in run.diagnostics if "OCI" in item.message] == [], stack


def test_configured_revision_and_source_label_the_images(run_stack: RunStack) -> None:
    run = run_stack("dev", imageRevision="v1.2.3", imageSource="https://github.com/example/ack-rdma")
    expected = {
        "VERSION": PLUGIN_VERSION,
        "REVISION": "v1.2.3",
        "SOURCE": "https://github.com/example/ack-rdma",
    }
    assert build_args(run) == [expected, expected]


def test_without_a_known_revision_the_label_is_left_out_with_a_warning(
    run_stack: RunStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "source_revision", lambda directory: None)
    run = run_stack("dev")
    assert build_args(run) == [{"VERSION": PLUGIN_VERSION}] * 2
    (warning,) = [item for item in run.diagnostics if "OCI" in item.message]
    assert warning.severity == "warning"
    assert "OCI revision label stays empty" in warning.message
    assert "Set ack-rdma:imageRevision" in warning.message


def test_source_revision_is_the_last_commit_that_changed_the_directory(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    repository = tmp_path_factory.mktemp("checkout")
    context = repository / "plugin_image"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\n")
    git(repository, "init", "--quiet")
    git(repository, "add", ".")
    git(repository, "commit", "--quiet", "-m", "context")
    changed_context = git(repository, "rev-parse", "HEAD")
    (repository / "README.md").write_text("elsewhere\n")
    git(repository, "add", ".")
    git(repository, "commit", "--quiet", "-m", "elsewhere")
    assert git(repository, "rev-parse", "HEAD") != changed_context
    assert images.source_revision(context) == changed_context
    never_committed = repository / "new"
    never_committed.mkdir()
    assert images.source_revision(never_committed) is None
    assert images.source_revision(tmp_path_factory.mktemp("not-a-checkout")) is None


def test_the_version_comes_from_the_plugins_pyproject(tmp_path: Path) -> None:
    assert images.plugin_version(PROJECT_DIR / images.PLUGIN_PYPROJECT) == PLUGIN_VERSION
    unversioned = tmp_path / "pyproject.toml"
    unversioned.write_text('[project]\nname = "rdma-device-plugin"\n')
    with pytest.raises(pulumi.RunError, match=r"pyproject.toml: \[project\] version is missing"):
        images.plugin_version(unversioned)
    with pytest.raises(pulumi.RunError, match=r"missing.toml: cannot read the plugin's version"):
        images.plugin_version(tmp_path / "missing.toml")


def test_labels_pass_only_what_is_known() -> None:
    assert images.ImageLabels("1.0", None, None).build_args() == {"VERSION": "1.0"}
    assert images.ImageLabels("1.0", "abc", "https://x").build_args() == {
        "VERSION": "1.0",
        "REVISION": "abc",
        "SOURCE": "https://x",
    }
