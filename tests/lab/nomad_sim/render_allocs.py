"""Allocation JSON in Nomad's shapes: `AllocListStub` (no Job) and the full
`Allocation` carrying the Job at the version it runs (fixtures
allocations-list.json, job-allocations.json, allocation-read.json,
node-allocations.json)."""

from __future__ import annotations

from typing import Any

from .model import CLIENT_PENDING, CLIENT_RUNNING, Alloc, Job
from .render_nodes import rfc3339

_EVENT_DEFAULTS: dict[str, Any] = {
    "Details": {},
    "DiskLimit": 0,
    "DisplayMessage": "",
    "DownloadError": "",
    "DriverError": "",
    "DriverMessage": "",
    "ExitCode": 0,
    "FailedSibling": "",
    "FailsTask": False,
    "GenericSource": "",
    "KillError": "",
    "KillReason": "",
    "KillTimeout": 0,
    "Message": "",
    "RestartReason": "",
    "SetupError": "",
    "Signal": 0,
    "StartDelay": 0,
    "TaskSignal": "",
    "TaskSignalReason": "",
    "ValidationError": "",
    "VaultError": "",
}


def _event(kind: str, at: int, display: str) -> dict[str, Any]:
    return {**_EVENT_DEFAULTS, "DisplayMessage": display, "Time": at, "Type": kind}


def _task_events(alloc: Alloc) -> list[dict[str, Any]]:
    events = [_event("Received", alloc.create_time, "Task received by client")]
    if alloc.started_at is not None:
        events.append(_event("Started", alloc.started_at, "Task started by client"))
    if alloc.finished_at is not None:
        events.append(_event("Killed", alloc.finished_at, "Task successfully killed"))
    return events


def _task_state(alloc: Alloc) -> dict[str, Any]:
    if alloc.finished_at is not None:
        state = "dead"
    elif alloc.client_status == CLIENT_RUNNING:
        state = "running"
    else:
        state = "pending"
    return {
        "Events": _task_events(alloc),
        "Failed": alloc.client_status == "failed",
        "FinishedAt": rfc3339(alloc.finished_at) if alloc.finished_at else None,
        "LastRestart": None,
        "Restarts": 0,
        "StartedAt": rfc3339(alloc.started_at) if alloc.started_at else None,
        "State": state,
        "TaskHandle": None,
    }


def task_states(alloc: Alloc, job: Job) -> dict[str, Any]:
    group = job.group(alloc.group)
    tasks = group.tasks if group else []
    return {t.name: _task_state(alloc) for t in tasks}


def deployment_status(alloc: Alloc) -> dict[str, Any] | None:
    if alloc.healthy is None:
        return None
    return {
        "Canary": False,
        "Healthy": alloc.healthy,
        "ModifyIndex": alloc.health_index,
        "Timestamp": rfc3339(alloc.modify_time),
    }


def _desired_transition() -> dict[str, Any]:
    return {"ForceReschedule": None, "Migrate": None, "Reschedule": None}


def alloc_stub(
    alloc: Alloc, job: Job, *, with_task_states: bool = True
) -> dict[str, Any]:
    """`job` is the job at the version the allocation runs."""
    return {
        "ClientDescription": alloc.client_description,
        "ClientStatus": alloc.client_status,
        "CreateIndex": alloc.create_index,
        "CreateTime": alloc.create_time,
        "DeploymentStatus": deployment_status(alloc),
        "DesiredDescription": alloc.desired_description,
        "DesiredStatus": alloc.desired_status,
        "DesiredTransition": _desired_transition(),
        "EvalID": alloc.eval_id,
        "FollowupEvalID": "",
        "ID": alloc.id,
        "JobID": alloc.job_id,
        "JobType": job.type,
        "JobVersion": alloc.job_version,
        "ModifyIndex": alloc.modify_index,
        "ModifyTime": alloc.modify_time,
        "Name": alloc.name,
        "Namespace": alloc.namespace,
        "NextAllocation": alloc.next_allocation,
        "NodeID": alloc.node_id,
        "NodeName": alloc.node_name,
        "PreemptedAllocations": None,
        "PreemptedByAllocation": "",
        "PreviousAllocation": alloc.previous_allocation,
        "RescheduleTracker": None,
        "TaskGroup": alloc.group,
        "TaskStates": task_states(alloc, job) if with_task_states else None,
    }


def _task_resources(alloc: Alloc, job: Job) -> dict[str, Any]:
    group = job.group(alloc.group)
    tasks = group.tasks if group else []
    return {
        t.name: {"CPU": 100, "DiskMB": 0, "MemoryMB": 300, "Networks": None}
        for t in tasks
    }


def _allocated_resources(alloc: Alloc, job: Job) -> dict[str, Any]:
    tasks = {
        name: {
            "Cpu": {"CpuShares": 100, "ReservedCores": None},
            "Devices": None,
            "Memory": {"MemoryMB": 300, "MemoryMaxMB": 0},
            "Networks": None,
        }
        for name in _task_resources(alloc, job)
    }
    return {
        "Shared": {"DiskMB": 300, "Networks": None, "Ports": None},
        "TaskLifecycles": dict.fromkeys(tasks),
        "Tasks": tasks,
    }


def alloc_full(alloc: Alloc, job: Job, job_json: dict[str, Any]) -> dict[str, Any]:
    """The full allocation; `job_json` is the rendered job at `alloc.job_version`."""
    full = alloc_stub(alloc, job)
    full.pop("JobType")
    full.pop("JobVersion")
    pending = alloc.client_status == CLIENT_PENDING
    full.update(
        {
            "AllocModifyIndex": alloc.alloc_modify_index,
            "AllocatedResources": _allocated_resources(alloc, job),
            "DeploymentID": alloc.deployment_id,
            "Job": job_json,
            "Metrics": {
                "AllocationTime": 63337,
                "ClassExhausted": None,
                "ClassFiltered": None,
                "CoalescedFailures": 0,
                "ConstraintFiltered": None,
                "DimensionExhausted": None,
                "NodesAvailable": {},
                "NodesEvaluated": 1,
                "NodesExhausted": 0,
                "NodesFiltered": 0,
                "NodesInPool": 1,
                "QuotaExhausted": None,
                "ScoreMetaData": None,
            },
            "NetworkStatus": None if pending else {"Address": "", "DNS": None},
            "Resources": {"CPU": 100, "DiskMB": 300, "MemoryMB": 300, "Networks": None},
            "SharedResources": {
                "CPU": 0,
                "DiskMB": 300,
                "MemoryMB": 0,
                "Networks": None,
            },
            "SigningKeyID": "",
            "TaskResources": _task_resources(alloc, job),
        }
    )
    return full
