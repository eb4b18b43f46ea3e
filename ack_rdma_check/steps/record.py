"""Steps as the user sees them: a name, an outcome and one line of detail, reported as they run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from ack_rdma_check.errors import SetupError


class Outcome(Enum):
    OK = "ok"
    FAILED = "failed"


@dataclass(frozen=True)
class StepResult:
    name: str
    outcome: Outcome
    detail: str
    seconds: float


class StepObserver(Protocol):
    def begin(self, name: str) -> None: ...

    def end(self, result: StepResult) -> None: ...


class Note:
    """What a running step has to say when it ends well."""

    def __init__(self) -> None:
        self.detail = ""


class StepLog:
    def __init__(self, observer: StepObserver) -> None:
        self._observer = observer
        self.results: list[StepResult] = []

    @contextmanager
    def step(self, name: str) -> Iterator[Note]:
        """Runs one step; a SetupError inside it fails the step with its reason and propagates."""
        self._observer.begin(name)
        started = time.monotonic()
        note = Note()
        try:
            yield note
        except SetupError as error:
            self._record(StepResult(name, Outcome.FAILED, error.reason, time.monotonic() - started))
            raise
        self._record(StepResult(name, Outcome.OK, note.detail, time.monotonic() - started))

    def _record(self, result: StepResult) -> None:
        self.results.append(result)
        self._observer.end(result)
