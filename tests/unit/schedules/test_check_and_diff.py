"""Declarations against the role registry, and the field-by-field diff."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from infraops.cleanup.models import CleanupConfig
from infraops.cleanup.workflows import CleanupWorkflow
from infraops.schedules import check, cron
from infraops.schedules.diff import Status, build, compare
from infraops.schedules.live import LiveSchedule
from infraops.schedules.load import load_directory
from infraops.schedules.model import Declaration
from infraops.worker.roles import Role, Workflow

REPOSITORY = Path(__file__).resolve().parents[3]
REAL_WORKFLOWS = ("Backup", "Scan", "Cleanup", "RegistryGC")


class ReportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window_days: int = 1


def role(name: str, queue: str, *workflows: Workflow) -> Role:
    return Role(name, queue, list(workflows), activities=lambda _: [], settings=[])


ROLES = {
    "cleanup": role(
        "cleanup",
        "cleanup-task-queue",
        Workflow("Cleanup", CleanupWorkflow, CleanupConfig),
    ),
    # A made-up role, to show nothing here is specific to one workflow.
    "reports": role("reports", "reports-q", Workflow("Report", object, ReportConfig)),
}


def declared(**changes: Any) -> Declaration:
    document = {
        "id": "cleanup-daily",
        "workflow": "Cleanup",
        "task_queue": "cleanup-task-queue",
        "cron": "0 5 * * *",
        "input": {"dry_run": False},
        "note": "declared",
    }
    return Declaration.model_validate(document | changes)


def live_of(declaration: Declaration, **changes: Any) -> LiveSchedule:
    """What the server shows right after infraops applied `declaration`."""
    view = LiveSchedule(
        id=declaration.id,
        workflow=declaration.workflow,
        task_queue=declaration.task_queue,
        calendars=declaration.calendars,
        other_times=(),
        time_zone="UTC",
        input=dict(declaration.input),
        overlap_policy="skip",
        catchup_window=declaration.catchup_window,
        pause_on_failure=False,
        paused=False,
        note=declaration.note,
        applied_cron=declaration.cron,
        source=None,
    )
    return replace(view, **changes)


class TestRegistry:
    def test_a_valid_declaration_has_no_problems(self) -> None:
        assert check.problems([declared()], ROLES) == []

    def test_a_made_up_role_is_checked_the_same_way(self) -> None:
        report = declared(id="r", workflow="Report", task_queue="reports-q", input={})
        wrong = declared(
            id="r", workflow="Report", task_queue="reports-q", input={"window": 2}
        )

        assert check.problems([report], ROLES) == []
        assert (
            "window: Extra inputs are not permitted"
            in check.problems([wrong], ROLES)[0]
        )

    @pytest.mark.parametrize(
        ("changes", "says"),
        [
            (
                {"input": {"dry_rn": False}},
                "input: invalid CleanupConfig: dry_rn: Extra inputs are not permitted",
            ),
            (
                {"input": {"grace_days": -1}},
                "grace_days: Input should be greater than or equal to 0",
            ),
            (
                {"workflow": "Clenaup"},
                "workflow 'Clenaup' is not registered in any role (registered: Cleanup, Report)",
            ),
            (
                {"task_queue": "backup-task-queue"},
                "it is served on cleanup-task-queue (role cleanup)",
            ),
        ],
    )
    def test_problems_name_the_field(self, changes: dict[str, Any], says: str) -> None:
        problems = check.problems(
            [declared(**changes)], ROLES, {"cleanup-daily": "x.json"}
        )

        assert problems == [f"x.json: {says}"] or says in problems[0]
        assert problems[0].startswith("x.json: ")

    def test_the_repository_declarations_validate(self) -> None:
        roles = check.registry()
        registered = {w.name for r in roles.values() for w in r.workflows}
        missing = [name for name in REAL_WORKFLOWS if name not in registered]
        if missing:
            pytest.skip(f"workflow not registered yet: {', '.join(missing)}")
        found = load_directory(REPOSITORY / "schedules")

        assert check.problems(found, roles, found.sources) == []


class TestCompare:
    def test_just_applied_is_in_sync(self) -> None:
        declaration = declared()

        assert compare(declaration, live_of(declaration), CleanupConfig) == []

    def test_same_meaning_is_in_sync(self) -> None:
        """Defaults filled in, and another way to write the same cron."""
        declaration = declared(cron="0 5 * * 0-6")
        live = live_of(
            declaration,
            input=CleanupConfig(dry_run=False).model_dump(mode="json"),
            applied_cron=("0 5 * * *",),
        )

        assert compare(declaration, live, CleanupConfig) == []

    def test_cron_edited_on_the_server(self) -> None:
        """The memo still says what was applied; the calendars say otherwise."""
        declaration = declared()
        live = live_of(declaration, calendars=frozenset({cron.parse("30 5 * * *")}))

        (change,) = compare(declaration, live, CleanupConfig)

        assert (change.field, change.declared, change.live) == (
            "cron",
            "0 5 * * *",
            "30 5 * * *",
        )
        assert "changed on the server" in change.detail

    def test_out_of_band_pause_shows_its_note(self) -> None:
        declaration = declared()
        live = live_of(declaration, paused=True, note="disk full on web-3, bob")

        (change,) = compare(declaration, live, CleanupConfig)

        assert (change.field, change.declared, change.live) == (
            "paused",
            "false",
            "true",
        )
        assert change.detail == "note on the server: disk full on web-3, bob"

    def test_every_field_is_compared(self) -> None:
        declaration = declared()
        live = live_of(
            declaration,
            workflow="Other",
            task_queue="other-q",
            time_zone="Europe/Paris",
            input={"dry_run": True, "nodes": ["web-1"]},
            overlap_policy="allow_all",
            catchup_window=timedelta(days=365),
            pause_on_failure=True,
            other_times=("every 0:15:00",),
        )

        fields = [c.field for c in compare(declaration, live, CleanupConfig)]

        assert fields == [
            "workflow",
            "task_queue",
            "cron",
            "time_zone",
            "input.dry_run",
            "input.nodes",
            "overlap_policy",
            "catchup_window",
            "pause_on_failure",
        ]

    def test_an_input_the_model_refuses_is_compared_as_written(self) -> None:
        declaration = declared()
        live = live_of(declaration, input={"dry_run": False, "bogus": 1})

        (change,) = compare(declaration, live, CleanupConfig)

        assert (change.field, change.declared, change.live) == (
            "input.bogus",
            "(absent)",
            "1",
        )


def test_plan_lists_missing_changed_in_sync_and_extra() -> None:
    a, b, c = declared(id="a"), declared(id="b"), declared(id="c")
    extra = live_of(declared(id="z"))

    plan = build(
        [a, b, c],
        {"a": None, "b": live_of(b, paused=True), "c": live_of(c)},
        [extra],
        ROLES,
    )

    assert [(s.id, s.status) for s in plan.schedules] == [
        ("a", Status.MISSING),
        ("b", Status.CHANGED),
        ("c", Status.IN_SYNC),
        ("z", Status.EXTRA),
    ]
    assert not plan.in_sync
    assert plan.as_json()["schedules"][1]["changes"][0]["field"] == "paused"
