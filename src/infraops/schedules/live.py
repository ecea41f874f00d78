"""What the server runs, read with describe() and normalised for the diff.

`list_schedules` goes through visibility (eventually consistent, and without
task queue or input), so it only finds ids; every schedule is then read with
`describe()`, which is consistent and complete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from infraops.schedules import cron as cron_syntax
from infraops.schedules.model import UTC_NAMES

if TYPE_CHECKING:
    from temporalio.client import Client, ScheduleDescription

MEMO_CRON = "infraops.cron"
MEMO_SOURCE = "infraops.source"
DESCRIBE_CONCURRENCY = 8
# What the server uses when a schedule sets no catch-up window.
DEFAULT_CATCHUP = timedelta(days=365)


@dataclass(frozen=True)
class LiveSchedule:
    """One schedule on the server, in the declaration's terms."""

    id: str
    workflow: str
    task_queue: str
    calendars: frozenset[cron_syntax.Calendar]
    # Parts of the spec a declaration cannot express (intervals, skips, ...).
    other_times: tuple[str, ...]
    time_zone: str
    input: Any
    overlap_policy: str
    catchup_window: timedelta
    pause_on_failure: bool
    paused: bool
    note: str
    # The cron text infraops last applied (the server keeps only calendars).
    applied_cron: tuple[str, ...] | None
    source: str | None
    next_runs: tuple[datetime, ...] = ()
    recent_runs: tuple[datetime, ...] = ()
    running: tuple[str, ...] = field(default=())

    @property
    def cron_text(self) -> str:
        """The schedule's times, as its cron if infraops applied them."""
        declared = self.applied_cron or ()
        if declared and self.calendars == frozenset(
            cron_syntax.parse(text) for text in declared
        ):
            return ", ".join(declared)
        parts = sorted(cron_syntax.render(c) for c in self.calendars)
        return ", ".join([*parts, *self.other_times]) or "(no times)"


async def read(client: Client, schedule_id: str) -> LiveSchedule | None:
    """The live schedule `schedule_id`, or None if the server has none."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        description = await client.get_schedule_handle(schedule_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return await _view(client, description)


async def read_many(
    client: Client, ids: Iterable[str]
) -> dict[str, LiveSchedule | None]:
    """`read` for each id, a few at a time."""
    gate = asyncio.Semaphore(DESCRIBE_CONCURRENCY)

    async def one(schedule_id: str) -> LiveSchedule | None:
        async with gate:
            return await read(client, schedule_id)

    ordered = sorted(set(ids))
    found = await asyncio.gather(*(one(schedule_id) for schedule_id in ordered))
    return dict(zip(ordered, found, strict=True))


async def list_ids(client: Client) -> list[str]:
    """Every schedule id visibility knows of (may lag a fresh change)."""
    return sorted({entry.id async for entry in await client.list_schedules()})


async def _view(client: Client, description: ScheduleDescription) -> LiveSchedule:
    from temporalio.client import (
        ScheduleActionExecutionStartWorkflow,
        ScheduleActionStartWorkflow,
    )

    schedule = description.schedule
    action = schedule.action
    spec = schedule.spec
    workflow, task_queue, arguments, memo = "(not a start-workflow action)", "", [], {}
    if isinstance(action, ScheduleActionStartWorkflow):
        workflow, task_queue = action.workflow, action.task_queue or ""
        arguments = await _decode(client, list(action.args))
        memo = {
            key: (await _decode(client, [value]))[0]
            for key, value in (action.memo or {}).items()
        }
    calendars = {cron_syntax.from_spec(calendar) for calendar in spec.calendars}
    other: list[str] = []
    for text in spec.cron_expressions:  # should the server ever keep them
        try:
            calendars.add(cron_syntax.parse(text))
        except cron_syntax.CronError:
            other.append(f"cron {text!r}")
    other += [f"every {interval.every}" for interval in spec.intervals]
    if spec.skip:
        other.append(f"{len(spec.skip)} skip rule(s)")
    if spec.start_at or spec.end_at:
        other.append(f"only between {spec.start_at} and {spec.end_at}")
    if spec.jitter:
        other.append(f"jitter {spec.jitter}")
    applied = memo.get(MEMO_CRON)
    info = description.info
    return LiveSchedule(
        id=description.id,
        workflow=workflow,
        task_queue=task_queue,
        calendars=frozenset(calendars),
        other_times=tuple(other),
        time_zone=_zone(spec.time_zone_name),
        input=arguments[0] if len(arguments) == 1 else (arguments or None),
        overlap_policy=schedule.policy.overlap.name.lower(),
        catchup_window=schedule.policy.catchup_window or DEFAULT_CATCHUP,
        pause_on_failure=schedule.policy.pause_on_failure,
        paused=schedule.state.paused,
        note=schedule.state.note or "",
        applied_cron=tuple(applied) if isinstance(applied, list) else None,
        source=str(memo[MEMO_SOURCE]) if MEMO_SOURCE in memo else None,
        next_runs=tuple(info.next_action_times),
        recent_runs=tuple(
            result.started_at for result in info.recent_actions if result.started_at
        ),
        running=tuple(
            run.workflow_id
            for run in info.running_actions
            if isinstance(run, ScheduleActionExecutionStartWorkflow)
        ),
    )


async def _decode(client: Client, payloads: Sequence[Any]) -> list[Any]:
    from temporalio.api.common.v1 import Payload

    if not payloads or not all(isinstance(p, Payload) for p in payloads):
        return list(payloads)
    return await client.data_converter.decode(payloads)


def _zone(name: str | None) -> str:
    return "UTC" if (name or "") in UTC_NAMES else str(name)
