"""Declared against live, by meaning and field by field.

A live schedule is infraops's, and so can be "extra", when it starts work on
a task queue of a registered role or carries infraops's memo; schedules of
other teams in the namespace are left out of the diff.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from infraops.schedules.check import (
    canonical_input,
    find_workflow,
    input_error,
    task_queues,
)
from infraops.schedules.live import LiveSchedule, list_ids, read_many
from infraops.schedules.model import Declaration, format_duration

if TYPE_CHECKING:
    from temporalio.client import Client

    from infraops.worker.roles import Role


class Status(StrEnum):
    IN_SYNC = "in_sync"
    MISSING = "missing"
    CHANGED = "changed"
    EXTRA = "extra"


@dataclass(frozen=True)
class Change:
    """One field that differs; values as a person reads them."""

    field: str
    declared: str
    live: str
    detail: str = ""


@dataclass(frozen=True)
class ScheduleDiff:
    id: str
    status: Status
    changes: tuple[Change, ...] = ()
    declaration: Declaration | None = None
    live: LiveSchedule | None = None


@dataclass(frozen=True)
class Plan:
    """Every declared or infraops-owned schedule and how it differs."""

    schedules: tuple[ScheduleDiff, ...]

    @property
    def in_sync(self) -> bool:
        return all(item.status is Status.IN_SYNC for item in self.schedules)

    def having(self, status: Status) -> list[ScheduleDiff]:
        return [item for item in self.schedules if item.status is status]

    def as_json(self) -> dict[str, Any]:
        return {
            "in_sync": self.in_sync,
            "schedules": [
                {
                    "id": item.id,
                    "status": item.status.value,
                    "changes": [
                        {
                            "field": change.field,
                            "declared": change.declared,
                            "live": change.live,
                            **({"detail": change.detail} if change.detail else {}),
                        }
                        for change in item.changes
                    ],
                }
                for item in self.schedules
            ],
        }


def owned(live: LiveSchedule, queues: frozenset[str]) -> bool:
    """True for a schedule infraops answers for (see the module docstring)."""
    return live.task_queue in queues or live.applied_cron is not None


def compare(
    declaration: Declaration, live: LiveSchedule, config: type[Any] | None
) -> list[Change]:
    """The fields of `live` that do not mean what `declaration` says."""
    changes: list[Change] = []

    def differs(name: str, declared: Any, actual: Any, detail: str = "") -> None:
        if declared != actual:
            changes.append(Change(name, _show(declared), _show(actual), detail))

    differs("workflow", declaration.workflow, live.workflow)
    differs("task_queue", declaration.task_queue, live.task_queue)
    if declaration.calendars != live.calendars or live.other_times:
        detail = ""
        applied = live.applied_cron
        if applied is not None and list(applied) == list(declaration.cron):
            detail = (
                f"changed on the server: infraops applied {', '.join(applied)} "
                "and the server now runs something else"
            )
        changes.append(
            Change("cron", ", ".join(declaration.cron), live.cron_text, detail)
        )
    differs("time_zone", declaration.time_zone, live.time_zone)
    changes += _input_changes(declaration.input, live.input, config)
    differs("overlap_policy", declaration.overlap_policy.value, live.overlap_policy)
    differs(
        "catchup_window",
        format_duration(declaration.catchup_window),
        format_duration(live.catchup_window),
    )
    differs("pause_on_failure", declaration.pause_on_failure, live.pause_on_failure)
    differs(
        "paused",
        declaration.paused,
        live.paused,
        f"note on the server: {live.note}" if live.note else "",
    )
    return changes


def _input_changes(declared: Any, live: Any, config: type[Any] | None) -> list[Change]:
    """Inputs with defaults filled in; as written if the model refuses one."""
    refused = input_error(config, live) if config is not None else None
    if config is not None and refused is None:
        want, have = canonical_input(config, declared), canonical_input(config, live)
    else:
        want, have = declared, live
    if want == have:
        return []
    detail = f"the live input is refused: {refused}" if refused else ""
    if not (isinstance(want, dict) and isinstance(have, dict)):
        return [Change("input", _show(want), _show(have), detail)]
    missing = object()
    return [
        Change(
            f"input.{key}",
            _show(want.get(key, missing), missing),
            _show(have.get(key, missing), missing),
            detail,
        )
        for key in sorted(set(want) | set(have))
        if want.get(key, missing) != have.get(key, missing)
    ]


def _show(value: Any, absent: object | None = None) -> str:
    if absent is not None and value is absent:
        return "(absent)"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def build(
    declarations: Iterable[Declaration],
    live: Mapping[str, LiveSchedule | None],
    extras: Iterable[LiveSchedule],
    roles: Mapping[str, Role],
) -> Plan:
    """The plan from declarations and what was read from the server."""
    items: list[ScheduleDiff] = []
    declared_ids = set()
    for declaration in declarations:
        declared_ids.add(declaration.id)
        current = live.get(declaration.id)
        if current is None:
            items.append(ScheduleDiff(declaration.id, Status.MISSING, (), declaration))
            continue
        workflow = find_workflow(declaration.workflow, declaration.task_queue, roles)
        changes = compare(declaration, current, workflow.config if workflow else None)
        status = Status.CHANGED if changes else Status.IN_SYNC
        items.append(
            ScheduleDiff(declaration.id, status, tuple(changes), declaration, current)
        )
    items += [
        ScheduleDiff(extra.id, Status.EXTRA, (), None, extra)
        for extra in extras
        if extra.id not in declared_ids
    ]
    return Plan(tuple(sorted(items, key=lambda item: item.id)))


async def survey(
    client: Client, declarations: Iterable[Declaration], roles: Mapping[str, Role]
) -> Plan:
    """Read the server and compare it with `declarations`."""
    declared = list(declarations)
    wanted = {declaration.id for declaration in declared}
    live = await read_many(client, wanted)
    others = [i for i in await list_ids(client) if i not in wanted]
    queues = task_queues(roles)
    extras = [
        schedule
        for schedule in (await read_many(client, others)).values()
        if schedule is not None and owned(schedule, queues)
    ]
    return build(declared, live, extras, roles)
