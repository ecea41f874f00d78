"""Job-side JSON in Nomad's shapes: the full `Job`, job summary, scale status
and deployments (fixtures job-read.json, job-summary.json, job-scale-status.json,
job-deployment-latest.json, job-deployments.json)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from .model import (
    CLIENT_COMPLETE,
    CLIENT_FAILED,
    CLIENT_LOST,
    CLIENT_PENDING,
    CLIENT_RUNNING,
    CLIENT_UNKNOWN,
    DEPLOYMENT_DESCRIPTIONS,
    Alloc,
    Deployment,
    GroupSpec,
    Job,
    ScalingEvent,
    TaskSpec,
)

SECOND = 1_000_000_000


def _task(task: TaskSpec) -> dict[str, Any]:
    return {
        "Actions": None,
        "Affinities": None,
        "Artifacts": None,
        "Config": copy.deepcopy(task.config),
        "Constraints": None,
        "DispatchPayload": None,
        "Driver": task.driver,
        "Env": None,
        "KillSignal": "",
        "KillTimeout": 5 * SECOND,
        "Leader": False,
        "Lifecycle": None,
        "LogConfig": {"Disabled": False, "MaxFileSizeMB": 10, "MaxFiles": 10},
        "Meta": None,
        "Name": task.name,
        "Resources": {"CPU": 100, "Cores": 0, "DiskMB": 0, "MemoryMB": 300},
        "Services": None,
        "ShutdownDelay": 0,
        "Spreads": None,
        "Templates": None,
        "User": "",
        "Vault": None,
    }


def _update_block(*, enabled: bool = True) -> dict[str, Any]:
    """An UpdateStrategy; disabled ones are all zero but Stagger, as Nomad
    renders a job-level `Update` for jobs without an update block."""
    return {
        "AutoPromote": False,
        "AutoRevert": False,
        "Canary": 0,
        "HealthCheck": "checks" if enabled else "",
        "HealthyDeadline": 300 * SECOND if enabled else 0,
        "MaxParallel": 1 if enabled else 0,
        "MinHealthyTime": 10 * SECOND if enabled else 0,
        "ProgressDeadline": 600 * SECOND if enabled else 0,
        "Stagger": 30 * SECOND,
    }


def _scaling(group: GroupSpec, job: Job) -> dict[str, Any] | None:
    if group.scaling is None:
        return None
    return {
        "CreateIndex": job.create_index,
        "Enabled": True,
        "ID": f"{job.namespace}/{job.id}/{group.name}",
        "Max": group.scaling.max,
        "Min": group.scaling.min,
        "ModifyIndex": job.job_modify_index,
        "Policy": {},
        "Target": {"Group": group.name, "Job": job.id, "Namespace": job.namespace},
        "Type": "horizontal",
    }


def _group(group: GroupSpec, job: Job) -> dict[str, Any]:
    return {
        "Affinities": None,
        "Constraints": None,
        "Count": group.count,
        "EphemeralDisk": {"Migrate": False, "SizeMB": 300, "Sticky": False},
        "Meta": None,
        "Migrate": {
            "HealthCheck": "checks",
            "HealthyDeadline": 300 * SECOND,
            "MaxParallel": 1,
            "MinHealthyTime": 10 * SECOND,
        },
        "Name": group.name,
        "Networks": None,
        "ReschedulePolicy": {
            "Attempts": 0,
            "Delay": 30 * SECOND,
            "DelayFunction": "exponential",
            "Interval": 0,
            "MaxDelay": 3600 * SECOND,
            "Unlimited": True,
        },
        "RestartPolicy": {
            "Attempts": 2,
            "Delay": 15 * SECOND,
            "Interval": 1800 * SECOND,
            "Mode": "fail",
            "RenderTemplates": False,
        },
        "Scaling": _scaling(group, job),
        "Services": None,
        "ShutdownDelay": None,
        "Spreads": None,
        "Tasks": [_task(t) for t in group.tasks],
        "Update": _update_block() if group.update else None,
        "Volumes": None,
    }


def job_json(job: Job, *, region: str) -> dict[str, Any]:
    has_update = any(g.update for g in job.groups)
    return {
        "Affinities": None,
        "AllAtOnce": False,
        "Constraints": None,
        "ConsulNamespace": "",
        "CreateIndex": job.create_index,
        "Datacenters": list(job.datacenters),
        "DispatchIdempotencyToken": "",
        "Dispatched": False,
        "ID": job.id,
        "JobModifyIndex": job.job_modify_index,
        "Meta": copy.deepcopy(job.meta),
        "ModifyIndex": job.modify_index,
        "Multiregion": None,
        "Name": job.id,
        "Namespace": job.namespace,
        "NodePool": job.node_pool,
        "NomadTokenID": "",
        "ParameterizedJob": None,
        "ParentID": "",
        "Payload": None,
        "Periodic": None,
        "Priority": job.priority,
        "Region": region,
        "Spreads": None,
        "Stable": job.stable,
        "Status": job.status,
        "StatusDescription": "",
        "Stop": job.stop,
        "SubmitTime": job.submit_time,
        "TaskGroups": [_group(g, job) for g in job.groups],
        "Type": job.type,
        "UI": None,
        "Update": _update_block(enabled=has_update),
        "VaultNamespace": "",
        "Version": job.version,
        "VersionTag": None,
    }


_SUMMARY_FIELDS = {
    CLIENT_PENDING: "Starting",
    CLIENT_RUNNING: "Running",
    CLIENT_COMPLETE: "Complete",
    CLIENT_FAILED: "Failed",
    CLIENT_LOST: "Lost",
    CLIENT_UNKNOWN: "Unknown",
}


def _group_summary(group: GroupSpec, allocs: list[Alloc]) -> dict[str, int]:
    counts = dict.fromkeys(
        ("Queued", "Complete", "Failed", "Running", "Starting", "Lost", "Unknown"), 0
    )
    for alloc in allocs:
        counts[_SUMMARY_FIELDS[alloc.client_status]] += 1
    live = sum(1 for a in allocs if not a.terminal())
    counts["Queued"] = max(0, group.count - live)
    return counts


def job_summary(job: Job, allocs: Iterable[Alloc]) -> dict[str, Any]:
    by_group: dict[str, list[Alloc]] = {g.name: [] for g in job.groups}
    for alloc in allocs:
        by_group.setdefault(alloc.group, []).append(alloc)
    return {
        "Children": {"Dead": 0, "Pending": 0, "Running": 0},
        "CreateIndex": job.create_index,
        "JobID": job.id,
        "ModifyIndex": max(job.summary_index, job.create_index),
        "Namespace": job.namespace,
        "Summary": {g.name: _group_summary(g, by_group[g.name]) for g in job.groups},
    }


def scaling_event(event: ScalingEvent) -> dict[str, Any]:
    return {
        "Count": event.count,
        "CreateIndex": event.create_index,
        "Error": event.error,
        "EvalID": event.eval_id,
        "Message": event.message,
        "Meta": copy.deepcopy(event.meta),
        "PreviousCount": event.previous_count,
        "Time": event.time,
    }


def _group_scale(
    group: GroupSpec, allocs: list[Alloc], events: list[ScalingEvent]
) -> dict[str, Any]:
    live = [a for a in allocs if a.group == group.name and not a.terminal()]
    return {
        "Desired": group.count,
        "Events": [scaling_event(e) for e in reversed(events)] or None,
        "Healthy": sum(1 for a in live if a.healthy is True),
        "Placed": len(live),
        "Running": sum(1 for a in live if a.client_status == CLIENT_RUNNING),
        "Unhealthy": sum(1 for a in live if a.healthy is False),
    }


def scale_status(
    job: Job, allocs: list[Alloc], events: dict[str, list[ScalingEvent]]
) -> dict[str, Any]:
    return {
        "JobCreateIndex": job.create_index,
        "JobID": job.id,
        "JobModifyIndex": job.modify_index,
        "JobStopped": job.stop,
        "Namespace": job.namespace,
        "TaskGroups": {
            g.name: _group_scale(g, allocs, events.get(g.name, [])) for g in job.groups
        },
    }


def deployment_json(dep: Deployment) -> dict[str, Any]:
    groups = {
        name: {
            "AutoPromote": False,
            "AutoRevert": False,
            "DesiredCanaries": 0,
            "DesiredTotal": g.desired_total,
            "HealthyAllocs": g.healthy,
            "PlacedAllocs": g.placed,
            "PlacedCanaries": None,
            "ProgressDeadline": 600 * SECOND,
            "Promoted": False,
            "RequireProgressBy": "0001-01-01T00:00:00Z",
            "UnhealthyAllocs": g.unhealthy,
        }
        for name, g in dep.groups.items()
    }
    return {
        "CreateIndex": dep.create_index,
        "CreateTime": dep.create_time,
        "EvalPriority": 50,
        "ID": dep.id,
        "IsMultiregion": False,
        "JobCreateIndex": dep.job_create_index,
        "JobID": dep.job_id,
        "JobModifyIndex": dep.job_modify_index,
        "JobSpecModifyIndex": dep.job_modify_index,
        "JobVersion": dep.job_version,
        "ModifyIndex": dep.modify_index,
        "ModifyTime": dep.modify_time,
        "Namespace": dep.namespace,
        "Status": dep.status,
        "StatusDescription": dep.description
        or DEPLOYMENT_DESCRIPTIONS.get(dep.status, ""),
        "TaskGroups": groups,
    }
