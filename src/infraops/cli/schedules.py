"""`infraops schedules`: the declarations in `schedules/` against the code and
the live Temporal server.

Exit codes: 0 in sync (or done), 1 drift (or an action failed), 2 invalid
declarations, unknown schedule or unreachable Temporal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from infraops.cli._errors import EXIT_OK, EXIT_WORKFLOW_FAILED, fail, reports_errors

if TYPE_CHECKING:
    from temporalio.client import Client

    from infraops.schedules.diff import Plan
    from infraops.schedules.live import LiveSchedule
    from infraops.schedules.load import Declarations

T = TypeVar("T")
EXIT_DRIFT = EXIT_WORKFLOW_FAILED
TRIGGER_WAIT = 10.0

app = typer.Typer(
    help="Temporal Schedules as code: validate, diff, sync and operate them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

DirOption = Annotated[
    Path,
    typer.Option(
        "--dir",
        envvar="INFRAOPS_SCHEDULES_DIR",
        help="Directory of <id>.json declarations.",
    ),
]
TerraformOption = Annotated[
    Path | None,
    typer.Option(
        "--terraform",
        metavar="PATH",
        help="Read the declarations from Terraform/Terragrunt HCL (file or "
        "directory) instead of --dir.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
NoteOption = Annotated[
    str, typer.Option("--note", help="Why, and who: kept on the schedule.")
]
DEFAULT_DIR = Path("schedules")


@app.command()
@reports_errors
def validate(
    directory: DirOption = DEFAULT_DIR, terraform: TerraformOption = None
) -> None:
    """Check every declaration: syntax, cron, workflow, task queue, input."""
    declarations = _declarations(directory, terraform)
    typer.echo(
        f"{len(declarations)} schedules valid: {', '.join(sorted(declarations.by_id))}"
    )


@app.command()
@reports_errors
def diff(
    directory: DirOption = DEFAULT_DIR,
    terraform: TerraformOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show how the live schedules differ from the declarations (exit 1 if so)."""
    raise typer.Exit(
        _sync(directory, terraform, apply=False, prune=False, as_json=as_json)
    )


@app.command()
@reports_errors
def sync(
    directory: DirOption = DEFAULT_DIR,
    terraform: TerraformOption = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Create and update schedules to match.")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option("--prune", help="With --apply, also delete undeclared ones."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Like diff; with --apply, make the server match and say what was done."""
    if prune and not apply:
        typer.echo("infraops: --prune does nothing without --apply", err=True)
    raise typer.Exit(
        _sync(directory, terraform, apply=apply, prune=prune, as_json=as_json)
    )


@app.command("list")
@reports_errors
def list_(
    everything: Annotated[
        bool,
        typer.Option("--all", help="Also schedules that are not infraops's."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """The live schedules: workflow, queue, cron, state, next and last run."""
    import asyncio

    schedules = asyncio.run(_with_client(_list, everything))
    if as_json:
        import json

        typer.echo(json.dumps([_live_json(item) for item in schedules], indent=2))
        return
    _print_list(schedules)


@app.command()
@reports_errors
def trigger(schedule_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Start the schedule's action now (its overlap policy still applies)."""
    import asyncio

    _not_blank("ID", schedule_id)
    raise typer.Exit(asyncio.run(_with_client(_trigger, schedule_id)))


@app.command()
@reports_errors
def pause(
    schedule_id: Annotated[str, typer.Argument(metavar="ID")], note: NoteOption
) -> None:
    """Pause a schedule, with a note saying why."""
    import asyncio

    _not_blank("ID", schedule_id)
    _not_blank("--note", note)
    asyncio.run(_with_client(_set_paused, schedule_id, True, note))


@app.command()
@reports_errors
def unpause(
    schedule_id: Annotated[str, typer.Argument(metavar="ID")], note: NoteOption
) -> None:
    """Resume a paused schedule, with a note."""
    import asyncio

    _not_blank("ID", schedule_id)
    _not_blank("--note", note)
    asyncio.run(_with_client(_set_paused, schedule_id, False, note))


def _not_blank(name: str, value: str) -> None:
    if not value.strip():
        raise fail(f"{name} is empty; say which schedule and, for a note, why and who")


def _declarations(directory: Path, terraform: Path | None) -> Declarations:
    """The declarations, checked against the role registry; exit 2 if invalid."""
    from infraops.schedules.check import problems, registry
    from infraops.schedules.load import load_directory, load_terraform
    from infraops.schedules.model import DeclarationError

    try:
        found = load_terraform(terraform) if terraform else load_directory(directory)
    except DeclarationError as error:
        readable = error.readable
        also = problems(readable, registry(), readable.sources) if readable else []
        raise _invalid(error.problems + also) from None
    wrong = problems(found, registry(), found.sources)
    if wrong:
        raise _invalid(wrong)
    return found


def _invalid(lines: list[str]) -> typer.Exit:
    for line in lines[:-1]:
        typer.echo(f"infraops: error: {line}", err=True)
    return fail(lines[-1])


def _sync(
    directory: Path, terraform: Path | None, *, apply: bool, prune: bool, as_json: bool
) -> int:
    import asyncio

    declarations = _declarations(directory, terraform)
    return asyncio.run(
        _with_client(_survey_and_apply, declarations, apply, prune, as_json)
    )


async def _with_client(action: Callable[..., Awaitable[T]], *args: Any) -> T:
    from infraops.config import TelemetrySettings, TemporalSettings, load
    from infraops.telemetry.runtime import build_runtime
    from infraops.telemetry.tracing import configure_tracing
    from infraops.temporal import connect

    telemetry = load(TelemetrySettings)
    configure_tracing(telemetry, "infraops-cli")
    client = await connect(
        load(TemporalSettings), build_runtime(telemetry, serve_metrics=False)
    )
    return await action(client, *args)


async def _survey_and_apply(
    client: Client, declarations: Declarations, apply: bool, prune: bool, as_json: bool
) -> int:
    import json

    from infraops.schedules.apply import apply as apply_plan
    from infraops.schedules.check import registry
    from infraops.schedules.diff import Status, survey

    plan = await survey(client, declarations, registry())
    if not apply:
        if as_json:
            typer.echo(json.dumps(plan.as_json(), indent=2))
        else:
            _print_plan(plan, hint_prune=True)
        return EXIT_OK if plan.in_sync else EXIT_DRIFT
    outcomes = await apply_plan(client, plan, prune=prune, sources=declarations.sources)
    failed = any(outcome.failed for outcome in outcomes)
    kept = [outcome for outcome in outcomes if outcome.action == "kept"]
    if as_json:
        document = plan.as_json() | {
            "actions": [
                {"id": o.id, "action": o.action, "detail": o.detail} for o in outcomes
            ],
            "in_sync_after": not failed and not kept,
        }
        typer.echo(json.dumps(document, indent=2))
    else:
        _print_plan(plan, hint_prune=False)
        for outcome in outcomes:
            typer.echo(f"{outcome.action} {outcome.id}: {outcome.detail}")
        if not outcomes:
            typer.echo("nothing to do")
        unchanged = len(plan.having(Status.IN_SYNC))
        typer.echo(
            f"{_count(outcomes, 'created')} created, {_count(outcomes, 'updated')} "
            f"updated, {_count(outcomes, 'deleted')} deleted, {len(kept)} extra "
            f"kept, {_count(outcomes, 'failed')} failed, {unchanged} unchanged"
        )
    return EXIT_DRIFT if failed or kept else EXIT_OK


def _count(outcomes: list[Any], action: str) -> int:
    return sum(1 for outcome in outcomes if outcome.action == action)


def _print_plan(plan: Plan, *, hint_prune: bool) -> None:
    from infraops.schedules.diff import Status

    for item in plan.schedules:
        if item.status is Status.IN_SYNC:
            typer.echo(f"{item.id}: in sync")
        elif item.status is Status.MISSING:
            typer.echo(f"{item.id}: missing on the server (sync --apply creates it)")
        elif item.status is Status.EXTRA:
            live = item.live
            what = f"{live.workflow} on {live.task_queue}" if live else ""
            hint = "; sync --apply --prune deletes it" if hint_prune else ""
            typer.echo(f"{item.id}: extra, not declared ({what}){hint}")
        else:
            typer.echo(f"{item.id}: changed")
            for change in item.changes:
                line = (
                    f"  {change.field}: declared {change.declared}, live {change.live}"
                )
                if change.detail:
                    line += f" ({change.detail})"
                typer.echo(line)
    drifted = len(plan.schedules) - len(plan.having(Status.IN_SYNC))
    if drifted:
        typer.echo(f"{drifted} of {len(plan.schedules)} schedules differ")
    else:
        typer.echo(f"all {len(plan.schedules)} schedules in sync")


async def _list(client: Client, everything: bool) -> list[LiveSchedule]:
    from infraops.schedules.check import registry, task_queues
    from infraops.schedules.diff import owned
    from infraops.schedules.live import list_ids, read_many

    queues = task_queues(registry())
    found = await read_many(client, await list_ids(client))
    return [
        item
        for item in found.values()
        if item is not None and (everything or owned(item, queues))
    ]


def _live_json(item: LiveSchedule) -> dict[str, Any]:
    from infraops.schedules.model import format_duration

    return {
        "id": item.id,
        "workflow": item.workflow,
        "task_queue": item.task_queue,
        "cron": item.cron_text,
        "time_zone": item.time_zone,
        "input": item.input,
        "overlap_policy": item.overlap_policy,
        "catchup_window": format_duration(item.catchup_window),
        "paused": item.paused,
        "note": item.note,
        "next_runs": [when.isoformat() for when in item.next_runs[:3]],
        "last_run": item.recent_runs[-1].isoformat() if item.recent_runs else None,
        "running": list(item.running),
    }


def _print_list(schedules: list[LiveSchedule]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("id", "workflow", "task queue", "cron", "state", "next", "last"):
        table.add_column(column)
    for item in schedules:
        state = "paused" if item.paused else "active"
        if item.note:
            state += f": {item.note}"
        table.add_row(
            item.id,
            item.workflow,
            item.task_queue,
            f"{item.cron_text} {item.time_zone}",
            state,
            _when(item.next_runs[0] if item.next_runs else None),
            _when(item.recent_runs[-1] if item.recent_runs else None),
        )
    if not schedules:
        typer.echo("no schedules")
        return
    Console(width=200).print(table)


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "-"


async def _described(client: Client, schedule_id: str) -> Any:
    from temporalio.service import RPCError, RPCStatusCode

    try:
        return await client.get_schedule_handle(schedule_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise fail(f"no schedule {schedule_id!r} on the server") from None
        raise


async def _trigger(client: Client, schedule_id: str) -> int:
    import asyncio
    import time

    before = (await _described(client, schedule_id)).info
    handle = client.get_schedule_handle(schedule_id)
    await handle.trigger()
    deadline = time.monotonic() + TRIGGER_WAIT
    while time.monotonic() < deadline:
        info = (await handle.describe()).info
        if info.num_actions > before.num_actions and info.recent_actions:
            started = info.recent_actions[-1].action
            workflow_id = getattr(started, "workflow_id", "?")
            typer.echo(f"triggered {schedule_id}: started {workflow_id}", err=True)
            typer.echo(workflow_id)
            return EXIT_OK
        if info.num_actions_skipped_overlap > before.num_actions_skipped_overlap:
            typer.echo(
                f"triggered {schedule_id}: skipped, the previous run is still "
                "running (overlap policy)",
                err=True,
            )
            return EXIT_WORKFLOW_FAILED
        await asyncio.sleep(0.2)
    typer.echo(
        f"triggered {schedule_id}; no run seen within {TRIGGER_WAIT:.0f}s "
        f"(temporal schedule describe -s {schedule_id})",
        err=True,
    )
    return EXIT_OK


async def _set_paused(
    client: Client, schedule_id: str, paused: bool, note: str
) -> None:
    await _described(client, schedule_id)
    handle = client.get_schedule_handle(schedule_id)
    if paused:
        await handle.pause(note=note)
        typer.echo(
            f"paused {schedule_id}: {note} (a later sync --apply resumes it "
            "unless its declaration says paused)"
        )
    else:
        await handle.unpause(note=note)
        typer.echo(f"unpaused {schedule_id}: {note}")
