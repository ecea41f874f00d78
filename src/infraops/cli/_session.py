"""Starting one workflow from the CLI and following it to its result."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel

from infraops.cli._errors import EXIT_OK, EXIT_WORKFLOW_FAILED
from infraops.worker.roles import Role, Workflow

QUERY_TIMEOUT = 2.0
POLL_INTERVAL = 0.5


class View(Protocol):
    """How one workflow's progress and result are shown."""

    @property
    def query(self) -> str: ...
    @property
    def progress_type(self) -> type[BaseModel]: ...
    @property
    def result_type(self) -> type[BaseModel]: ...

    def progress(self, progress: Any) -> Any: ...
    def progress_lines(self, before: Any, now: Any) -> list[str]: ...
    def result(self, result: Any) -> Any: ...
    def exit_code(self, result: Any) -> int: ...


@dataclass(frozen=True)
class Launch:
    role: Role
    workflow: Workflow
    config: BaseModel
    id_prefix: str
    local_worker: bool
    wait: bool
    as_json: bool
    # A fixed id refuses a second concurrent run (conflict policy FAIL).
    workflow_id: str | None = None
    # Ctrl-C cancels the workflow even on the shared queue, then keeps following.
    cancel_on_interrupt: bool = False


def run_by_hand(
    role: Role,
    workflow_name: str,
    view: View,
    source: str | None,
    overrides: dict[str, Any],
    *,
    as_json: bool,
    local_worker: bool,
    wait: bool,
    workflow_id: str | None = None,
    cancel_on_interrupt: bool = False,
) -> int:
    """Build the config from --input and options, start, follow: the exit code.

    Every `infraops run WORKFLOW` command is this, with its own view.
    """
    from infraops.cli._input import build_config

    workflow = next(w for w in role.workflows if w.name == workflow_name)
    request = Launch(
        role=role,
        workflow=workflow,
        config=build_config(workflow.config, source, overrides),
        id_prefix=workflow_id or workflow_name.lower(),
        local_worker=local_worker,
        wait=wait,
        as_json=as_json,
        workflow_id=workflow_id,
        cancel_on_interrupt=cancel_on_interrupt,
    )
    return asyncio.run(launch(request, view))


def manual_id(prefix: str) -> str:
    """A readable workflow id, e.g. cleanup-manual-20261203T173000Z."""
    return f"{prefix}-manual-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"


async def launch(request: Launch, view: View) -> int:
    from temporalio.client import WorkflowFailureError
    from temporalio.common import WorkflowIDConflictPolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from infraops.config import TelemetrySettings, TemporalSettings, load
    from infraops.telemetry.runtime import build_runtime
    from infraops.telemetry.tracing import configure_tracing
    from infraops.temporal import connect
    from infraops.worker.run import hosted

    telemetry = load(TelemetrySettings)
    temporal = load(TemporalSettings)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # A local worker's retried activities are reported in the result; their
    # tracebacks would only bury it.
    logging.getLogger("temporalio").setLevel(logging.ERROR)
    # From a laptop, traces go out only to a collector named explicitly.
    configure_tracing(
        telemetry, "infraops-cli", export="OTEL_EXPORTER_OTLP_ENDPOINT" in os.environ
    )
    client = await connect(temporal, build_runtime(telemetry, serve_metrics=False))
    queue = request.role.task_queue
    async with AsyncExitStack() as stack:
        if request.local_worker:
            queue = f"{request.role.name}-local-{uuid.uuid4().hex[:8]}"
            await stack.enter_async_context(
                hosted(client, [request.role], task_queue=queue)
            )
        try:
            handle = await client.start_workflow(
                request.workflow.name,
                request.config,
                id=request.workflow_id or manual_id(request.id_prefix),
                task_queue=queue,
                result_type=view.result_type,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
        except WorkflowAlreadyStartedError as error:
            _say(
                f"{request.workflow.name} is already running as workflow "
                f"{error.workflow_id}; not starting a second one. Follow or cancel "
                f"that run instead (temporal workflow describe -w {error.workflow_id})"
            )
            return EXIT_WORKFLOW_FAILED
        _say(f"started {request.workflow.name} as {handle.id} on {queue}")
        if not request.wait:
            typer_echo(handle.id)
            return EXIT_OK
        try:
            result = await _follow(
                handle,
                view,
                cancel_on_interrupt=request.local_worker or request.cancel_on_interrupt,
            )
        except WorkflowFailureError as error:
            _say(f"workflow {handle.id} failed: {_cause(error)}")
            partial = getattr(view, "failed_result", lambda _: None)(error)
            if partial is not None:
                _show(partial, view, as_json=request.as_json)
            elif request.as_json:
                # A script reading stdout still gets a document saying why.
                failure = {"workflow_id": handle.id, "status": "failed"}
                typer_echo(json.dumps(failure | {"error": _cause(error)}, indent=2))
            return EXIT_WORKFLOW_FAILED
    _show(result, view, as_json=request.as_json)

    return view.exit_code(result)


def _show(result: Any, view: View, *, as_json: bool) -> None:
    if as_json:
        typer_echo(result.model_dump_json(indent=2))
    else:
        _console(stderr=False).print(view.result(result))


async def _follow(handle: Any, view: View, *, cancel_on_interrupt: bool) -> Any:
    outcome = asyncio.ensure_future(handle.result())
    interrupted = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, interrupted.set)
    console = _console(stderr=True)
    live = None
    if console.is_terminal:
        from rich.live import Live

        live = Live(console=console, auto_refresh=False)
        live.start()
    last = None
    try:
        while not outcome.done():
            progress = await _query(handle, view)
            if progress is not None:
                if live is not None:
                    live.update(view.progress(progress), refresh=True)
                else:
                    for line in view.progress_lines(last, progress):
                        _say(line)
                last = progress
            waiter = asyncio.ensure_future(interrupted.wait())
            await asyncio.wait(
                [outcome, waiter],
                timeout=POLL_INTERVAL,
                return_when=asyncio.FIRST_COMPLETED,
            )
            waiter.cancel()
            if interrupted.is_set() and not outcome.done():
                interrupted.clear()
                if not cancel_on_interrupt:
                    _say(f"stopped following; {handle.id} goes on running")
                    raise KeyboardInterrupt
                _say(f"cancelling {handle.id}; following until it has stopped")
                await handle.cancel()
    finally:
        if live is not None:
            live.stop()

    return await outcome


async def _query(handle: Any, view: View) -> Any:
    from temporalio.client import WorkflowQueryFailedError
    from temporalio.service import RPCError

    try:
        return await asyncio.wait_for(
            handle.query(view.query, result_type=view.progress_type), QUERY_TIMEOUT
        )
    except (TimeoutError, RPCError, WorkflowQueryFailedError):
        return None


def _cause(error: BaseException) -> str:
    # The innermost cause says what actually went wrong.
    while error.__cause__ is not None:
        error = error.__cause__
    return getattr(error, "message", None) or str(error) or type(error).__name__


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def typer_echo(message: str) -> None:
    print(message, flush=True)


def _console(*, stderr: bool) -> Any:
    from rich.console import Console

    return Console(stderr=stderr)
