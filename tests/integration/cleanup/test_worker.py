"""The worker process: its queue, /metrics, traces and shutdown."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleSpec,
)

from infraops.cleanup.models import CleanupConfig, CleanupResult
from tests.integration.cleanup.conftest import Lab
from tests.lab.fleet import EXCLUDE

pytestmark = pytest.mark.lab


async def test_worker_polls_the_cleanup_task_queue(
    lab: Lab, temporal_client: Client
) -> None:
    """The worker registers on cleanup-task-queue for workflows and activities."""
    for kind in (
        TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    ):
        answer = await temporal_client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace="default",
                task_queue=TaskQueue(name="cleanup-task-queue"),
                task_queue_type=kind,
            )
        )
        assert answer.pollers, kind


def scrape(lab: Lab) -> dict[str, float]:
    url = f"http://127.0.0.1:{lab.fleet.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name
            if "reason" in sample.labels:
                key += f"{{reason={sample.labels['reason']}}}"
            totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def test_metrics_endpoint_serves_sdk_and_domain_metrics(lab: Lab) -> None:
    """One /metrics has temporal_* series and the cleanup counters after a run."""
    before = scrape(lab)
    done = lab.run("--json", "--node", "node-1")
    assert done.returncode == 0, done.stderr

    after = scrape(lab)

    assert any(name.startswith("temporal_") for name in after)
    scanned = "infraops_cleanup_nodes_scanned_total"
    assert after[scanned] - before.get(scanned, 0) == 1
    recent = "infraops_cleanup_directories_skipped_total{reason=recent}"
    assert after[recent] - before.get(recent, 0) == 1


async def test_scheduled_run_gives_one_coherent_trace(
    lab: Lab, temporal_client: Client
) -> None:
    """A schedule-started run's workflow, activity, Nomad and SSH spans share a trace."""
    schedule_id = f"trace-test-{time.time_ns()}"
    config = CleanupConfig(
        data_dir=lab.fleet.data_dir, exclude=EXCLUDE, nodes=["node-1"]
    )
    handle = await temporal_client.create_schedule(
        schedule_id,
        Schedule(
            action=ScheduleActionStartWorkflow(
                "Cleanup",
                config,
                id=f"{schedule_id}-wf",
                task_queue="cleanup-task-queue",
            ),
            spec=ScheduleSpec(cron_expressions=["0 5 * * *"]),
        ),
        trigger_immediately=True,
    )
    try:
        workflow_id = await _first_started(handle)
        result = await temporal_client.get_workflow_handle(workflow_id).result()
        assert CleanupResult.model_validate(result).nodes[0].status == "done"
    finally:
        await handle.delete()

    spans = await _spans_for(lab, "RunWorkflow:Cleanup", workflow_id)
    traces = {span.trace_id for span in spans}
    assert len(traces) == 1, "the run is split across traces"
    names = {span.name for span in spans}
    assert "RunActivity:ScanNode" in names
    peers = {span.attributes.get("peer.service") for span in spans}
    assert {"nomad", "node-1"} <= peers


async def _first_started(handle: object) -> str:
    for _ in range(100):
        description = await handle.describe()  # type: ignore[attr-defined]
        if description.info.recent_actions:
            return str(description.info.recent_actions[0].action.workflow_id)
        await asyncio.sleep(0.1)
    raise AssertionError("the schedule never started the workflow")


async def _spans_for(lab: Lab, root_name: str, workflow_id: str) -> list:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        spans = lab.collector.snapshot()
        roots = [
            s
            for s in spans
            if s.name == root_name
            and s.attributes.get("temporalWorkflowID") == workflow_id
        ]
        if roots:
            trace = roots[0].trace_id
            mine = [s for s in spans if s.trace_id == trace]
            if any(s.attributes.get("peer.service") == "node-1" for s in mine):
                return mine
        await asyncio.sleep(0.2)
    names = sorted({s.name for s in lab.collector.snapshot()})
    raise AssertionError(f"no complete trace for {workflow_id}; spans seen: {names}")


def test_logs_are_json_lines_with_workflow_context(lab: Lab) -> None:
    """Every worker log line is a JSON object; activity lines carry their context."""
    lines = [line for line in lab.worker_log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]

    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    scans = [r for r in records if r["message"].startswith("scanned ")]
    assert scans
    assert scans[0]["activity_type"] == "ScanNode"
    assert scans[0]["workflow_id"]
    assert lab.env["NOMAD_TOKEN"] not in lab.worker_log.read_text()


def test_quick_activities_use_the_original_timeouts() -> None:
    """Quick activities use the original system's 5/15 minute timeouts."""
    from infraops.policies import (
        QUICK_SCHEDULE_TO_CLOSE,
        QUICK_START_TO_CLOSE,
        STANDARD_RETRY,
    )

    assert timedelta(minutes=5) == QUICK_START_TO_CLOSE
    assert timedelta(minutes=15) == QUICK_SCHEDULE_TO_CLOSE
    assert STANDARD_RETRY.maximum_attempts == 3
    assert STANDARD_RETRY.maximum_interval == timedelta(minutes=1)
