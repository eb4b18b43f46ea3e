"""Runs of the program in one process are independent, also after a run that fails half-way."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pulumi
import pytest

from offline_engine.offline_run import ProgramRun

RunStack = Callable[..., ProgramRun]

MISSING_INSTANCE = "ACR Enterprise Edition instance not-an-instance was not found"


def _unfinished_tasks() -> set[int]:
    gc.collect()
    return {id(item) for item in gc.get_objects() if isinstance(item, asyncio.Task) and not item.done()}


def _fail_inside_an_apply(run_stack: RunStack) -> None:
    """The ACR lookup answers without the instance: the program fails in an ``apply``, with the images'
    registration waiting on it and the rest of the program half declared."""
    with pytest.raises(pulumi.RunError, match=MISSING_INSTANCE):
        run_stack("dev", registryInstanceId="not-an-instance")


def test_a_run_after_one_that_failed_inside_an_apply_is_unaffected(
    run_stack: RunStack, program_runs: dict[str, ProgramRun]
) -> None:
    _fail_inside_an_apply(run_stack)
    after = run_stack("dev")
    clean = program_runs["dev"]
    assert sorted(resource.urn for resource in after.resources) == sorted(
        resource.urn for resource in clean.resources
    )
    assert set(after.outputs) == set(clean.outputs)


def test_a_failed_run_leaves_no_task_thread_or_error_report_behind(
    run_stack: RunStack, caplog: pytest.LogCaptureFixture
) -> None:
    tasks_before = _unfinished_tasks()
    threads_before = set(threading.enumerate())
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        _fail_inside_an_apply(run_stack)
        assert _unfinished_tasks() - tasks_before == set()
    assert set(threading.enumerate()) - threads_before == set()
    # The error reached the caller once; its futures, garbage now, must not report it again.
    assert [record.getMessage() for record in caplog.records] == []


def test_a_run_leaves_the_callers_event_loop_as_it_was(run_stack: RunStack) -> None:
    def caller() -> None:
        # On a thread of the test's own, so the main thread's loop stays as other tests expect it.
        own = asyncio.new_event_loop()
        asyncio.set_event_loop(own)
        try:
            _fail_inside_an_apply(run_stack)
            run_stack("dev")
            assert asyncio.get_event_loop() is own and not own.is_closed()
        finally:
            own.close()

    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(caller).result()
