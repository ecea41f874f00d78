"""Scheduled RegistryGC runs take the fixed id, so they never overlap another."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleHandle,
    ScheduleSpec,
    WorkflowFailureError,
)
from temporalio.exceptions import ApplicationError

from infraops.registry_gc.models import REGISTRY_GC_WORKFLOW_ID, RegistryGCResult
from infraops.registry_gc.workflows import RegistryGCWorkflow
from tests.integration.registry_gc.conftest import GCLab

pytestmark = pytest.mark.lab


async def _schedule(lab: GCLab, config: Any) -> tuple[ScheduleHandle, str]:
    schedule_id = f"registry-gc-weekly-{uuid.uuid4().hex[:6]}"
    handle = await lab.client.create_schedule(
        schedule_id,
        Schedule(
            action=ScheduleActionStartWorkflow(
                RegistryGCWorkflow.run, config, id=schedule_id, task_queue=lab.queue
            ),
            spec=ScheduleSpec(cron_expressions=["0 2 * * 0"]),
        ),
        trigger_immediately=True,
    )
    for _ in range(100):
        description = await handle.describe()
        if description.info.recent_actions:
            return handle, description.info.recent_actions[0].action.workflow_id
        await asyncio.sleep(0.1)
    raise AssertionError("the schedule never started its workflow")


async def test_a_scheduled_run_garbage_collects_under_the_fixed_id(
    gc_lab: GCLab, temporal_client: Client
) -> None:
    """The scheduled run hands the saga to a child named registry-gc."""
    schedule, run_id = await _schedule(gc_lab, gc_lab.config())
    try:
        result = await temporal_client.get_workflow_handle(
            run_id, result_type=RegistryGCResult
        ).result()
        child = await temporal_client.get_workflow_handle(
            REGISTRY_GC_WORKFLOW_ID
        ).describe()
    finally:
        await schedule.delete()

    assert run_id != REGISTRY_GC_WORKFLOW_ID
    assert child.parent_id == run_id
    assert result.blobs_marked > 0
    assert gc_lab.job.count() == 1


async def test_a_scheduled_run_refuses_while_registry_gc_runs(
    gc_lab: GCLab, temporal_client: Client
) -> None:
    """With registry-gc already running, the scheduled run fails, touching nothing."""
    holder = await temporal_client.start_workflow(
        RegistryGCWorkflow.run,
        gc_lab.config(),
        id=REGISTRY_GC_WORKFLOW_ID,
        task_queue="nobody-polls-this-queue",
    )
    schedule, run_id = await _schedule(gc_lab, gc_lab.config())
    try:
        with pytest.raises(WorkflowFailureError) as caught:
            await temporal_client.get_workflow_handle(run_id).result()
    finally:
        await schedule.delete()
        await holder.terminate("test cleanup")

    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "RegistryGCAlreadyRunning"
    assert gc_lab.job.count() == 1
    assert gc_lab.sim.requests == [] or all(
        r.method == "GET" for r in gc_lab.sim.requests
    )
