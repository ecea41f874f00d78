"""Schedules as code against a real Temporal dev server, through the library."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from temporalio.client import ScheduleUpdate, ScheduleUpdateInput
from temporalio.worker import Worker

from infraops.schedules.apply import apply, to_schedule
from infraops.schedules.diff import Status, survey
from infraops.schedules.load import Declarations, load_directory, load_terraform
from tests.integration.schedules.conftest import (
    Space,
    cleanup_declaration,
    stand_in_roles,
    write_declarations,
)
from tests.integration.schedules.standin import EchoCleanup


def declarations(tmp_path: Path, queue: str, *ids: str) -> Declarations:
    documents = [cleanup_declaration(i, task_queue=queue) for i in ids]
    return load_directory(write_declarations(tmp_path / "schedules", *documents))


async def test_create_then_in_sync_then_drift_then_repair(
    space: Space, tmp_path: Path
) -> None:
    """From nothing to created; unchanged; each out-of-band edit is seen and undone."""
    queue = f"q-{uuid.uuid4().hex[:8]}"
    roles = stand_in_roles(queue)
    declared = declarations(tmp_path, queue, "daily", "weekly")

    first = await survey(space.client, declared, roles)
    created = await apply(space.client, first, prune=False)
    second = await survey(space.client, declared, roles)

    assert [s.status for s in first.schedules] == [Status.MISSING, Status.MISSING]
    assert [(o.id, o.action) for o in created] == [
        ("daily", "created"),
        ("weekly", "created"),
    ]
    assert second.in_sync
    assert await apply(space.client, second, prune=False) == []

    # Out of band: a pause, a cron edited in the UI, an input changed by hand.
    daily = space.client.get_schedule_handle("daily")
    await daily.pause(note="disk full on web-3, bob")

    def edited(update: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = update.description.schedule
        schedule.spec.calendars = []
        schedule.spec.cron_expressions = ["30 6 * * *"]  # the memo stays as it was
        return ScheduleUpdate(schedule=schedule)

    await space.client.get_schedule_handle("weekly").update(edited)
    drift = await survey(space.client, declared, roles)

    changes = {s.id: {c.field: c for c in s.changes} for s in drift.schedules}
    assert changes["daily"]["paused"].live == "true"
    assert "disk full on web-3, bob" in changes["daily"]["paused"].detail
    cron = changes["weekly"]["cron"]
    assert (cron.declared, cron.live) == ("0 5 * * *", "30 6 * * *")
    assert "changed on the server" in cron.detail

    repaired = await apply(space.client, drift, prune=False)
    after = await survey(space.client, declared, roles)

    assert sorted((o.id, o.action, o.detail) for o in repaired) == [
        ("daily", "updated", "paused"),
        ("weekly", "updated", "cron"),
    ]
    assert after.in_sync
    assert not (await daily.describe()).schedule.state.paused


async def test_a_changed_declaration_is_drift_field_by_field(
    space: Space, tmp_path: Path
) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    roles = stand_in_roles(queue)
    before = declarations(tmp_path / "a", queue, "daily")
    await apply(space.client, await survey(space.client, before, roles), prune=False)
    after = load_directory(
        write_declarations(
            tmp_path / "b",
            cleanup_declaration(
                "daily",
                task_queue=queue,
                input={"dry_run": True, "grace_days": 7, "nodes": ["web-1"]},
                overlap_policy="buffer_one",
                time_zone="Europe/Paris",
            ),
        )
    )

    plan = await survey(space.client, after, roles)

    (item,) = plan.schedules
    assert [(c.field, c.declared, c.live) for c in item.changes] == [
        ("time_zone", "Europe/Paris", "UTC"),
        ("input.dry_run", "true", "false"),
        ("input.nodes", '["web-1"]', "[]"),
        ("overlap_policy", "buffer_one", "skip"),
    ]


async def test_prune_deletes_only_infraops_schedules(
    space: Space, tmp_path: Path
) -> None:
    """Extras on an infraops queue are pruned; another team's schedule is not."""
    queue = f"q-{uuid.uuid4().hex[:8]}"
    roles = stand_in_roles(queue)
    declared = declarations(tmp_path, queue, "daily")
    stray = declarations(tmp_path / "stray", queue, "stray").by_id["stray"]
    foreign = stray.model_copy(update={"id": "other-team", "task_queue": "theirs"})
    await space.client.create_schedule("stray", to_schedule(stray))
    foreign_schedule = to_schedule(foreign)
    foreign_schedule.action.memo = None  # type: ignore[union-attr]
    await space.client.create_schedule("other-team", foreign_schedule)

    plan = await survey(space.client, declared, roles)
    for _ in range(50):  # listing goes through visibility, which lags
        if len(plan.schedules) == 2:
            break
        await asyncio.sleep(0.1)
        plan = await survey(space.client, declared, roles)
    kept = await apply(space.client, plan, prune=False)
    pruned = await apply(space.client, plan, prune=True)

    assert [(s.id, s.status) for s in plan.schedules] == [
        ("daily", Status.MISSING),
        ("stray", Status.EXTRA),
    ]
    assert ("stray", "kept") in [(o.id, o.action) for o in kept]
    assert ("stray", "deleted") in [(o.id, o.action) for o in pruned]
    assert (await space.client.get_schedule_handle("other-team").describe()).id


async def test_terraform_declaring_the_same_schedules_is_in_sync(
    space: Space, tmp_path: Path
) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    roles = stand_in_roles(queue)
    declared = declarations(tmp_path, queue, "daily", "weekly")
    await apply(space.client, await survey(space.client, declared, roles), prune=False)
    hcl = tmp_path / "terragrunt" / "temporal-config"
    hcl.mkdir(parents=True)
    (hcl / "terragrunt.hcl").write_text(
        f"""
inputs = {{
  schedules = {{
    "daily" = {{
      workflow       = "Cleanup"
      task_queue     = "{queue}"
      cron           = "0 5 * * *"
      input          = {{ grace_days = 7, dry_run = false }}
      catchup_window = "2h"
      note           = "stale per-job data directories"
    }}
  }}
}}
"""
    )
    (hcl / "weekly.tf").write_text(
        f"""
resource "temporal_schedule" "weekly" {{
  schedule_id    = "weekly"
  workflow       = "Cleanup"
  task_queue     = "{queue}"
  cron           = ["0 5 * * 0-6"]
  input          = jsonencode({{ dry_run = false, grace_days = 7 }})
  catchup_window = "120m"
}}
"""
    )

    from_terraform = load_terraform(hcl.parent)
    plan = await survey(space.client, from_terraform, roles)

    assert sorted(from_terraform.by_id) == ["daily", "weekly"]
    assert plan.in_sync, plan.as_json()


async def test_a_triggered_schedule_starts_the_workflow_with_its_input(
    space: Space, tmp_path: Path
) -> None:
    """The right workflow, the declared input, on the declared task queue."""
    queue = f"q-{uuid.uuid4().hex[:8]}"
    roles = stand_in_roles(queue)
    declared = declarations(tmp_path, queue, "daily")
    await apply(space.client, await survey(space.client, declared, roles), prune=False)

    async with Worker(space.client, task_queue=queue, workflows=[EchoCleanup]):
        done = await space.cli("schedules", "trigger", "daily")
        assert done.returncode == 0, done.stderr
        workflow_id = done.stdout.strip()
        result = await space.client.get_workflow_handle(workflow_id).result()

    assert workflow_id.startswith("daily-")
    assert result["workflow_type"] == "Cleanup"
    assert result["task_queue"] == queue
    assert result["input"]["dry_run"] is False
    assert result["input"]["grace_days"] == 7
