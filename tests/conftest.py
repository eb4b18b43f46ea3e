"""Fixtures running the real Pulumi program under the mock engine (offline_engine.offline_run)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from offline_engine.offline_run import ProgramRun, run_program
from offline_engine.stack_files import load_stack_settings, stack_names

STACKS = stack_names()
RunStack = Callable[..., ProgramRun]


@pytest.fixture(scope="session")
def program_runs() -> dict[str, ProgramRun]:
    """The program run once per stack file in stacks/, with that file's config."""
    return {stack: run_program(load_stack_settings(stack)) for stack in STACKS}


@pytest.fixture(params=STACKS)
def stack_run(request: pytest.FixtureRequest, program_runs: dict[str, ProgramRun]) -> ProgramRun:
    return program_runs[request.param]


def _run_stack(
    stack: str = "dev",
    *,
    preview: bool = False,
    secrets: Mapping[str, str] | None = None,
    **overrides: object,
) -> ProgramRun:
    """A stack file with some keys changed (``vpcCidr=...`` means ``ack-rdma:vpcCidr``)."""
    settings = load_stack_settings(
        stack,
        overrides={key if ":" in key else f"ack-rdma:{key}": value for key, value in overrides.items()},
        secret_overrides={f"ack-rdma:{key}": value for key, value in (secrets or {}).items()},
    )
    return run_program(settings, preview=preview)


@pytest.fixture
def run_stack() -> RunStack:
    return _run_stack
