"""Run the real Pulumi program under Pulumi's mock engine and record everything it declares.

No CLI, no credentials, no network: the tests, the benchmark and the offline plan all go through
``run_program``. Runs are independent, so several stacks (and failing programs) can run one after another in
one process: each run gets a thread with a fresh ``contextvars.Context``, Pulumi's runtime settings reset
(the settings that a new context does not set fall back to objects shared by every context, such as the set
of pending outputs), and an event loop and executor of its own, torn down when it ends, even when the
program fails half-way and leaves tasks behind.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import runpy
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_in_stack

from offline_engine.mock_cloud import MockCloud
from offline_engine.stack_files import StackSettings

STACK_TYPE = "pulumi:pulumi:Stack"


def is_secret(value: object) -> bool:
    """True for a value the engine received marked secret."""
    return bool(rpc.is_rpc_secret(value))


def reveal(value: Any) -> Any:
    """``value`` with every secret marker removed, for assertions on the plain data."""
    if is_secret(value):
        return reveal(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {key: reveal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [reveal(item) for item in value]
    return value


@dataclass(frozen=True)
class DeclaredResource:
    """One resource registration as the engine saw it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    """URN of the parent ("" for the stack itself)."""
    id: str | None
    inputs: Mapping[str, Any]
    """Inputs in wire (camelCase) form; secrets keep their markers (see ``is_secret`` and ``reveal``)."""
    outputs: Mapping[str, Any]
    """State the mock returned for the resource."""
    provider: str
    """Provider reference (``<urn>::<id>``); "" means the default provider."""
    dependencies: tuple[str, ...]
    delete_before_replace: bool
    protect: bool
    ignore_changes: tuple[str, ...]
    custom_timeouts: Mapping[str, str]
    additional_secret_outputs: tuple[str, ...]

    @property
    def computed(self) -> dict[str, Any]:
        """Outputs that are not inputs: what only the provider knows after deployment (ids, digests...)."""
        return {key: value for key, value in self.outputs.items() if key not in self.inputs}


@dataclass(frozen=True)
class Invocation:
    token: str
    args: Mapping[str, Any]


@dataclass(frozen=True)
class Diagnostic:
    """A message the program logged (``pulumi.log``), as ``pulumi preview`` lists it under Diagnostics."""

    severity: str
    """``info``, ``warning`` or ``error``."""
    message: str


class _DiagnosticRecorder(logging.Handler):
    """The mock engine hands each ``pulumi.log`` message to a logger; this keeps them for the run."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.diagnostics: list[Diagnostic] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.diagnostics.append(Diagnostic(record.levelname.lower(), record.getMessage()))


@dataclass(frozen=True)
class ProgramRun:
    """What one run of the program declared: resources in registration order, invokes, stack outputs."""

    settings: StackSettings
    resources: tuple[DeclaredResource, ...]
    invocations: tuple[Invocation, ...]
    outputs: Mapping[str, Any]
    """Stack outputs in wire form; secrets keep their markers."""
    stack_urn: str
    diagnostics: tuple[Diagnostic, ...] = ()

    def of_type(self, type_: str) -> list[DeclaredResource]:
        return [resource for resource in self.resources if resource.type == type_]

    def one(self, type_: str) -> DeclaredResource:
        found = self.of_type(type_)
        if len(found) != 1:
            raise LookupError(f"expected one {type_}, found {len(found)}")
        return found[0]

    def by_urn(self, urn: str) -> DeclaredResource:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise LookupError(urn)

    def children(self, parent_urn: str) -> list[DeclaredResource]:
        return [resource for resource in self.resources if resource.parent == parent_urn]

    def kubernetes_objects(self) -> list[dict[str, Any]]:
        """Every Kubernetes object as ``kubectl apply`` would take it (secret values revealed)."""
        return [
            {key: reveal(value) for key, value in resource.inputs.items()}
            for resource in self.resources
            if resource.type.startswith("kubernetes:") and resource.custom
        ]


class RecordingMonitor(MockMonitor):
    """Pulumi's mock monitor, keeping what each registration carried (parent, options, inputs) and the
    stack outputs, which the plain mock monitor drops."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self._lock = threading.Lock()
        self.declared: list[DeclaredResource] = []
        self.invocations: list[Invocation] = []
        self.stack_outputs: dict[str, Any] = {}
        self.stack_urn = ""

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == STACK_TYPE:
            self.stack_urn = response.urn
            return response
        timeouts = request.customTimeouts
        declared = DeclaredResource(
            urn=response.urn,
            type=request.type,
            name=request.name,
            custom=bool(request.custom),
            parent=request.parent,
            id=response.id or None,
            inputs=rpc.deserialize_properties(request.object),
            outputs=self.resources[response.urn].state,
            provider=request.provider,
            dependencies=tuple(request.dependencies),
            delete_before_replace=bool(request.deleteBeforeReplace),
            protect=bool(request.protect),
            ignore_changes=tuple(request.ignoreChanges),
            custom_timeouts={
                kind: value
                for kind, value in (
                    ("create", timeouts.create),
                    ("update", timeouts.update),
                    ("delete", timeouts.delete),
                )
                if value
            },
            additional_secret_outputs=tuple(request.additionalSecretOutputs),
        )
        with self._lock:
            self.declared.append(declared)
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        if request.urn == self.stack_urn:
            outputs = rpc.deserialize_properties(request.outputs)
            with self._lock:
                self.stack_outputs = dict(outputs)
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]

    def Invoke(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        with self._lock:
            self.invocations.append(Invocation(request.tok, rpc.deserialize_properties(request.args)))
        response = super().Invoke(request)  # type: ignore[no-untyped-call]
        answer = getattr(response, "return")
        if any(value.string_value == rpc.UNKNOWN for value in answer.fields.values()):
            # A lookup the mock cannot answer before deployment: the whole result is unknown, as the engine
            # marks an invoke it cannot serve yet, and the program's applies on it wait like in a preview.
            return resource_pb2.ResourceInvokeResponse(unknown=True)
        return response


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    """Pulumi runs a program from its project directory; relative paths in it (image context) rely on it."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """A program that fails inside an ``apply`` leaves the rest of its tasks waiting; they would run, and
    fail with its error, in whatever next uses the loop. Cancelling may let tasks start others: repeat."""
    while leftovers := asyncio.all_tasks(loop):
        for task in leftovers:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))


def _silent_about(error: BaseException) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """An exception handler for a failed run's loop. The error reaches the caller of ``run_program``; the
    futures of the program's outputs that carry it are never awaited, and would each report it again (as
    "Future exception was never retrieved") whenever they are garbage-collected. Anything else is reported."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("exception") is not error:
            loop.default_exception_handler(context)

    return handle


@contextmanager
def _event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The run's own event loop, its executor and the loops of the executor's threads, all closed at the end.

    Pulumi's mock monitor answers each RPC on an executor thread and makes an event loop there when it finds
    none; left open, those loops are finalized whenever the interpreter gets to them, even mid-shutdown.
    """
    thread_loops: list[asyncio.AbstractEventLoop] = []

    def give_the_thread_a_loop() -> None:
        thread_loop = asyncio.new_event_loop()
        asyncio.set_event_loop(thread_loop)
        thread_loops.append(thread_loop)

    loop = asyncio.new_event_loop()
    loop.set_default_executor(
        ThreadPoolExecutor(thread_name_prefix="pulumi-mock-rpc", initializer=give_the_thread_a_loop)
    )
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        try:
            _cancel_leftovers(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
            for thread_loop in thread_loops:
                thread_loop.close()


@dataclass
class _Run:
    settings: StackSettings
    mocks: pulumi.runtime.Mocks
    preview: bool
    program: Path
    monitor: RecordingMonitor = field(init=False)
    recorder: _DiagnosticRecorder = field(init=False)

    def _run_module(self) -> None:
        runpy.run_path(str(self.program), run_name="__main__")

    def __call__(self) -> ProgramRun:
        self.monitor = RecordingMonitor(self.mocks)
        self.recorder = _DiagnosticRecorder()
        # A logger of the run's own, outside logging's registry: nothing propagates to the caller's handlers.
        engine_log = logging.Logger("pulumi-program", logging.INFO)
        engine_log.addHandler(self.recorder)
        with _event_loop() as loop, _working_directory(self.settings.project_dir):
            # What the new context does not set falls back to objects every context shares, among them the
            # set of pending outputs that Pulumi awaits at the end of a run: this run gets its own.
            runtime_settings.reset_options(
                project=self.settings.project,
                stack=self.settings.stack,
                root_directory=str(self.settings.project_dir),
                preview=self.preview,
            )
            pulumi.runtime.set_all_config(dict(self.settings.config), sorted(self.settings.secret_keys))
            pulumi.runtime.set_mocks(
                self.mocks,
                project=self.settings.project,
                stack=self.settings.stack,
                preview=self.preview,
                logger=engine_log,
                monitor=self.monitor,
            )
            # set_mocks installs a root stack that has already registered its (empty) outputs; the program
            # gets a new one, as under the CLI, so that its exports reach the monitor.
            runtime_settings.ROOT.set(None)
            try:
                loop.run_until_complete(run_in_stack(self._run_module))
            except BaseException as error:
                loop.set_exception_handler(_silent_about(error))
                raise
        return ProgramRun(
            settings=self.settings,
            resources=tuple(self.monitor.declared),
            invocations=tuple(self.monitor.invocations),
            outputs=self.monitor.stack_outputs,
            stack_urn=self.monitor.stack_urn,
            diagnostics=tuple(self.recorder.diagnostics),
        )


def run_program(
    settings: StackSettings,
    *,
    mocks: pulumi.runtime.Mocks | None = None,
    preview: bool = False,
    program: Path | None = None,
) -> ProgramRun:
    """Run ``__main__.py`` for ``settings`` under the mock engine.

    ``preview=True`` runs it as ``pulumi preview`` would (no image push; the mock still answers with values).
    Errors of the program propagate unchanged: a bad config raises ``components.config.StackConfigError``.
    """
    run = _Run(
        settings=settings,
        mocks=mocks
        if mocks is not None
        else MockCloud(region=settings.region or "cn-shanghai", preview=preview),
        preview=preview,
        program=program if program is not None else settings.project_dir / "__main__.py",
    )
    # A thread of its own: the run's event loop is that thread's current loop, and the caller's asyncio state
    # (its current loop, or the loop it runs in) is left as it was.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pulumi-program") as program_thread:
        return program_thread.submit(contextvars.Context().run, run).result()
