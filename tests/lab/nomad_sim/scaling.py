"""POST/PUT /v1/job/:id/scale: Go-style body decoding and Nomad's `Job.Scale`
(note 2.4): checks in the server's order, never idempotent."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import scheduler
from .errors import ApiError
from .model import Job, ScalingEvent, new_id, now_ns

if TYPE_CHECKING:
    from .cluster import Cluster

JOB_MUTATIONS_DISABLED = (
    "Job registration, dispatch, and scale are disabled by the scheduler configuration"
)
_STRUCT = "ScalingRequest"


@dataclass
class ScalingRequest:
    """api.ScalingRequest after Go's case-insensitive field matching."""

    count: int | None = None
    target: dict[str, str] = field(default_factory=dict)
    message: str = ""
    error: bool = False
    meta: dict[str, Any] | None = None
    policy_override: bool = False
    job_modify_index: int = 0


# -- decoding ---------------------------------------------------------------


def _type_error(value: Any, fld: str, go_type: str) -> ApiError:
    kinds = {bool: "bool", str: "string", list: "array", dict: "object"}
    kind = kinds.get(type(value), "number")
    if kind == "number" and go_type in ("int64", "uint64"):
        kind = f"number {value}"
    return ApiError(
        400,
        f"json: cannot unmarshal {kind} into Go struct field "
        f"{_STRUCT}.{fld} of type {go_type}",
    )


def _int(value: Any, fld: str, go_type: str) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or (go_type == "uint64" and value < 0):
        raise _type_error(value, fld, go_type)
    return int(value)


def _target(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _type_error(value, "Target", "map[string]string")
    for item in value.values():
        if not isinstance(item, str):
            raise _type_error(item, "Target", "string")
    return dict(value)  # map keys stay case-sensitive, as in Go


def _apply_field(req: ScalingRequest, name: str, value: Any) -> None:
    key = name.lower()
    if key == "count":
        req.count = None if value is None else _int(value, "Count", "int64")
    elif key == "target":
        req.target = _target(value)
    elif key == "message":
        if not isinstance(value, str | None):
            raise _type_error(value, "Message", "string")
        req.message = value or ""
    elif key in ("error", "policyoverride"):
        if not isinstance(value, bool | None):
            raise _type_error(
                value, "Error" if key == "error" else "PolicyOverride", "bool"
            )
        setattr(req, "error" if key == "error" else "policy_override", bool(value))
    elif key == "meta":
        if not isinstance(value, dict | None):
            raise _type_error(value, "Meta", "map[string]interface {}")
        req.meta = value
    elif key == "jobmodifyindex":
        req.job_modify_index = (
            0 if value is None else _int(value, "JobModifyIndex", "uint64")
        )


def _parse_json(body: bytes) -> Any:
    text = body.decode("utf-8", errors="replace").lstrip()
    if not text:
        raise ApiError(400, "EOF")
    try:
        value, _ = json.JSONDecoder().raw_decode(text)  # Go ignores trailing data
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text):
            raise ApiError(400, "unexpected EOF") from None
        raise ApiError(
            400, f"invalid character {text[exc.pos]!r} looking for beginning of value"
        ) from None
    return value


def decode_scaling_request(body: bytes) -> ScalingRequest:
    """Go's decodeBody into api.ScalingRequest: empty body, syntax and type errors."""
    if not body:
        raise ApiError(400, "Request body is empty")
    value = _parse_json(body)
    req = ScalingRequest()
    if value is None:
        return req
    if not isinstance(value, dict):
        kind = "array" if isinstance(value, list) else type(value).__name__
        raise ApiError(
            400, f"json: cannot unmarshal {kind} into Go value of type api.{_STRUCT}"
        )
    for name, item in value.items():
        _apply_field(req, name, item)
    return req


# -- Job.Scale --------------------------------------------------------------


def _validate_request(req: ScalingRequest, namespace: str) -> str:
    target_ns = req.target.get("Namespace", "")
    if target_ns and target_ns != namespace:
        raise ApiError(400, "namespace in payload did not match header")
    group = req.target.get("Group", "")
    if not group:
        raise ApiError(400, "missing task group name for scaling action")
    if req.error and req.count is not None:
        raise ApiError(400, "scaling action should not contain count if error is true")
    if req.count is not None and req.count < 0:
        raise ApiError(400, "scaling action count can't be negative")
    return group


def _validate_count(cluster: Cluster, job: Job, group_name: str, count: int) -> None:
    group = job.group(group_name)
    assert group is not None
    if group.scaling is not None:
        if count < group.scaling.min:
            raise ApiError(
                400,
                "group count was less than scaling policy minimum: "
                f"{count} < {group.scaling.min}",
            )
        if count > group.scaling.max:
            raise ApiError(
                400,
                "group count was greater than scaling policy maximum: "
                f"{count} > {group.scaling.max}",
            )
    if job.type == "system" and count > 1:
        raise ApiError(400, 'jobs of type "system" can only be scaled between 0 and 1')
    total = count + sum(g.count for g in job.groups if g.name != group_name)
    if cluster.job_max_count is not None and total > cluster.job_max_count:
        raise ApiError(
            500,
            "total count was greater than configured job_max_count: "
            f"{total} > {cluster.job_max_count}",
        )


def _check_deployment_and_cas(cluster: Cluster, job: Job, req: ScalingRequest) -> None:
    dep = cluster.latest_deployment(job)
    if dep is not None and dep.active() and dep.job_create_index == job.create_index:
        raise ApiError(400, "job scaling blocked due to active deployment")
    if req.job_modify_index and req.job_modify_index != job.job_modify_index:
        raise ApiError(
            500,
            f"Enforcing job modify index {req.job_modify_index}: job exists with "
            f"conflicting job modify index: {job.job_modify_index}",
        )


def _register_new_version(
    cluster: Cluster, job: Job, group_name: str, count: int
) -> int:
    idx = cluster.bump("jobs", "job_summary")
    group = job.group(group_name)
    assert group is not None
    group.count = count
    job.version += 1
    job.job_modify_index = job.modify_index = job.summary_index = idx
    job.submit_time = now_ns()
    job.stable = False
    cluster.snapshot_version(job)
    return idx


def _run_scheduler(cluster: Cluster, job: Job, eval_id: str) -> None:
    dep = None
    if any(g.update for g in job.groups):
        idx = cluster.bump("deployment")
        dep = scheduler.new_deployment(cluster, job, idx, status="running")
        cluster.complete_later(dep.id)
    scheduler.reconcile(cluster, job, eval_id=eval_id, deployment=dep)


def scale_job(
    cluster: Cluster, namespace: str, job_id: str, req: ScalingRequest
) -> dict[str, Any]:
    """Nomad's Job.Scale. Returns the JobRegisterResponse body."""
    group_name = _validate_request(req, namespace)
    if cluster.reject_job_registration:
        raise ApiError(403, JOB_MUTATIONS_DISABLED)
    job = cluster.job(namespace, job_id)
    if job is None:
        raise ApiError(404, f'job "{job_id}" not found')
    group = job.group(group_name)
    if group is None:
        raise ApiError(
            400,
            f'task group "{group_name}" specified for scaling does not exist in job',
        )
    previous = group.count
    eval_id, eval_index, job_modify_index = "", 0, job.modify_index
    if req.count is not None:
        _validate_count(cluster, job, group_name, req.count)
        _check_deployment_and_cas(cluster, job, req)
        job_modify_index = _register_new_version(cluster, job, group_name, req.count)
        eval_id, eval_index = new_id(), cluster.bump("evals")
    event_index = cluster.bump("scaling_event")
    event = ScalingEvent(
        time=now_ns(),
        count=req.count,
        previous_count=previous,
        message=req.message,
        error=req.error,
        meta=req.meta,
        eval_id=eval_id or None,
        create_index=event_index,
    )
    cluster.add_scaling_event(job, group_name, event)
    if req.count is not None:
        _run_scheduler(cluster, job, eval_id)
    return {
        "EvalCreateIndex": eval_index,
        "EvalID": eval_id,
        "Index": event_index,
        "JobModifyIndex": job_modify_index,
        "KnownLeader": False,
        "LastContact": 0,
        "NextToken": "",
        "Warnings": "",
    }
