"""Making the server match the declarations, and the operator's verbs.

`update()` replaces the whole schedule and has no conflict check (the SDK
does not retry on a conflict token), so the last writer wins: run one
`sync --apply` at a time, from CI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infraops.schedules.diff import Plan, ScheduleDiff, Status
from infraops.schedules.live import MEMO_CRON, MEMO_SOURCE
from infraops.schedules.model import Declaration

if TYPE_CHECKING:
    from temporalio.client import Client, Schedule


@dataclass(frozen=True)
class Outcome:
    """What was done to one schedule, or why it failed."""

    id: str
    action: str  # created, updated, deleted, kept, failed
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.action == "failed"


def to_schedule(declaration: Declaration, source: str | None = None) -> Schedule:
    """The Temporal schedule `declaration` describes, cron text kept in the memo.

    The memo goes on the action (the schedule-level memo cannot be updated
    from Python); it lets a diff tell a cron edited on the server from one
    changed in the declaration.
    """
    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
        ScheduleState,
    )

    memo: dict[str, object] = {MEMO_CRON: list(declaration.cron)}
    if source:
        memo[MEMO_SOURCE] = source
    return Schedule(
        action=ScheduleActionStartWorkflow(
            declaration.workflow,
            declaration.input,
            id=declaration.id,
            task_queue=declaration.task_queue,
            memo=memo,
        ),
        spec=ScheduleSpec(
            cron_expressions=list(declaration.cron),
            time_zone_name=declaration.time_zone,
        ),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy[declaration.overlap_policy.value.upper()],
            catchup_window=declaration.catchup_window,
            pause_on_failure=declaration.pause_on_failure,
        ),
        state=ScheduleState(paused=declaration.paused, note=declaration.note or None),
    )


async def apply(
    client: Client,
    plan: Plan,
    *,
    prune: bool,
    sources: dict[str, str] | None = None,
) -> list[Outcome]:
    """Create the missing, update the changed and, with `prune`, delete extras.

    Every schedule is tried; one failing does not stop the others.
    """
    outcomes = []
    for item in plan.schedules:
        if item.status is Status.IN_SYNC:
            continue
        try:
            outcomes.append(await _apply_one(client, item, prune, sources or {}))
        except Exception as error:  # an RPC failure on one schedule
            outcomes.append(Outcome(item.id, "failed", _reason(error)))
    return outcomes


async def _apply_one(
    client: Client, item: ScheduleDiff, prune: bool, sources: dict[str, str]
) -> Outcome:
    from temporalio.client import ScheduleAlreadyRunningError, ScheduleUpdate

    if item.status is Status.EXTRA:
        if not prune:
            return Outcome(item.id, "kept", "not declared; --prune deletes it")
        await client.get_schedule_handle(item.id).delete()
        return Outcome(item.id, "deleted", "not declared")
    assert item.declaration is not None  # missing or changed
    desired = to_schedule(item.declaration, sources.get(item.id))
    if item.status is Status.MISSING:
        try:
            await client.create_schedule(item.id, desired)
            return Outcome(item.id, "created", _summary(item.declaration))
        except ScheduleAlreadyRunningError:
            pass  # created since the diff was read: update it instead
    await client.get_schedule_handle(item.id).update(
        lambda _: ScheduleUpdate(schedule=desired)
    )
    fields = sorted({change.field.split(".")[0] for change in item.changes})
    return Outcome(item.id, "updated", ", ".join(fields) or "replaced")


def _summary(declaration: Declaration) -> str:
    state = "paused" if declaration.paused else "active"
    return (
        f"{declaration.workflow} on {declaration.task_queue} at "
        f"{', '.join(declaration.cron)} {declaration.time_zone}, {state}"
    )


def _reason(error: BaseException) -> str:
    return getattr(error, "message", None) or str(error) or type(error).__name__
