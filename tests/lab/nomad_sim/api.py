"""The HTTP endpoints: one function per route, each run with the cluster lock
held. Reads return a `Reply` carrying the index Nomad would send in
X-Nomad-Index; errors are `ApiError` (plain text)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .cluster import Cluster
from .errors import ApiError
from .model import Alloc, Job
from .query import QueryOptions, apply_filter, paginate, parse_go_bool
from .render_allocs import alloc_full, alloc_stub
from .render_jobs import deployment_json, job_json, job_summary, scale_status
from .render_nodes import node_full, node_stub
from .scaling import decode_scaling_request, scale_job
from .snapshot import agent_self, save_snapshot

ALL_NAMESPACES = "*"


@dataclass
class Ctx:
    cluster: Cluster
    args: dict[str, str]
    query: dict[str, list[str]]
    opts: QueryOptions
    body: bytes = b""


@dataclass
class Reply:
    body: Any
    index: int
    next_token: str = ""
    read: bool = True


Handler = Callable[[Ctx], Reply]


def _flag(ctx: Ctx, name: str, default: bool) -> bool:
    raw = ctx.query.get(name, [""])[0]
    try:
        return parse_go_bool(raw) if raw else default
    except ValueError:
        return default


def _job_or_404(ctx: Ctx, table: str) -> Job:
    job = ctx.cluster.job(ctx.opts.namespace, ctx.args["job_id"])
    if job is None:
        raise ApiError(404, "job not found", index=ctx.cluster.table_index(table))
    return job


def _render_full(cluster: Cluster, alloc: Alloc) -> dict[str, Any]:
    job = cluster.job(alloc.namespace, alloc.job_id)
    if job is None:  # a test removed nothing of the kind; keep a total function
        raise ApiError(500, f"alloc {alloc.id} references a missing job")
    at_version = cluster.job_at(job, alloc.job_version)
    return alloc_full(alloc, at_version, job_json(at_version, region=cluster.region))


def _render_stub(
    cluster: Cluster, alloc: Alloc, *, task_states: bool
) -> dict[str, Any]:
    job = cluster.job(alloc.namespace, alloc.job_id)
    assert job is not None
    return alloc_stub(
        alloc, cluster.job_at(job, alloc.job_version), with_task_states=task_states
    )


# -- nodes ------------------------------------------------------------------


def list_nodes(ctx: Ctx) -> Reply:
    nodes = sorted(ctx.cluster.nodes.values(), key=lambda n: n.id)
    with_os = _flag(ctx, "os", False)
    stubs = [
        node_stub(n, with_os=with_os) for n in nodes if n.id.startswith(ctx.opts.prefix)
    ]
    page, token = paginate(
        apply_filter(stubs, ctx.opts), ctx.opts, lambda s: s["ID"], str
    )
    return Reply(page, ctx.cluster.table_index("nodes"), token)


def read_node(ctx: Ctx) -> Reply:
    node = ctx.cluster.nodes.get(ctx.args["node_id"])
    if node is None:
        raise ApiError(404, "node not found", index=ctx.cluster.table_index("nodes"))
    return Reply(node_full(node), node.modify_index)


def node_allocations(ctx: Ctx) -> Reply:
    cluster = ctx.cluster
    allocs = sorted(
        (a for a in cluster.allocs.values() if a.node_id == ctx.args["node_id"]),
        key=lambda a: a.id,
    )
    if not allocs:  # unknown node or no allocs: 200 [] at the allocs table index
        return Reply([], cluster.table_index("allocs"))
    body = [_render_full(cluster, a) for a in allocs]
    return Reply(body, max(a.modify_index for a in allocs))


# -- allocations ------------------------------------------------------------


def _alloc_token(stub: dict[str, Any]) -> str:
    return f"{stub['CreateIndex']}.{stub['ID']}"


def _alloc_token_key(token: str) -> tuple[int, str]:
    head, _, tail = token.partition(".")
    return (int(head), tail) if head.isdigit() else (0, token)


def list_allocations(ctx: Ctx) -> Reply:
    cluster, opts = ctx.cluster, ctx.opts
    allocs = [
        a
        for a in cluster.allocs.values()
        if opts.namespace in (ALL_NAMESPACES, a.namespace)
        and a.id.startswith(opts.prefix)
    ]
    task_states = _flag(ctx, "task_states", True)
    if opts.prefix:
        allocs.sort(key=lambda a: a.id)
        token_of, key_of = (lambda s: s["ID"]), str
    else:
        allocs.sort(key=lambda a: (a.create_index, a.id))
        token_of, key_of = _alloc_token, _alloc_token_key  # type: ignore[assignment]
    stubs = [_render_stub(cluster, a, task_states=task_states) for a in allocs]
    page, token = paginate(apply_filter(stubs, opts), opts, token_of, key_of)
    return Reply(page, cluster.table_index("allocs"), token)


def read_allocation(ctx: Ctx) -> Reply:
    alloc = ctx.cluster.allocs.get(ctx.args["alloc_id"])
    if alloc is None:
        raise ApiError(404, "alloc not found", index=ctx.cluster.table_index("allocs"))
    return Reply(_render_full(ctx.cluster, alloc), alloc.modify_index)


# -- jobs -------------------------------------------------------------------


def read_job(ctx: Ctx) -> Reply:
    job = _job_or_404(ctx, "jobs")
    return Reply(job_json(job, region=ctx.cluster.region), job.modify_index)


def job_allocations(ctx: Ctx) -> Reply:
    cluster = ctx.cluster
    job = cluster.job(ctx.opts.namespace, ctx.args["job_id"])
    allocs = sorted(cluster.job_allocs(job), key=lambda a: a.id) if job else []
    stubs = [_render_stub(cluster, a, task_states=True) for a in allocs]
    return Reply(apply_filter(stubs, ctx.opts), cluster.table_index("allocs"))


def read_job_summary(ctx: Ctx) -> Reply:
    job = _job_or_404(ctx, "job_summary")
    summary = job_summary(job, ctx.cluster.job_allocs(job))
    return Reply(summary, summary["ModifyIndex"])


def read_scale_status(ctx: Ctx) -> Reply:
    cluster = ctx.cluster
    job = _job_or_404(ctx, "jobs")
    allocs = cluster.job_allocs(job)
    events = cluster.scaling_events.get((job.namespace, job.id), {})
    dep = cluster.latest_deployment(job)
    index = max(
        [job.modify_index, dep.modify_index if dep else 0]
        + [a.modify_index for a in allocs]
        + [e.create_index for group in events.values() for e in group]
    )
    return Reply(scale_status(job, allocs, events), index)


def job_deployment(ctx: Ctx) -> Reply:
    cluster = ctx.cluster
    job = cluster.job(ctx.opts.namespace, ctx.args["job_id"])
    dep = cluster.latest_deployment(job) if job else None
    if dep is None:
        return Reply(None, cluster.table_index("deployment"))
    return Reply(deployment_json(dep), dep.modify_index)


def job_deployments(ctx: Ctx) -> Reply:
    cluster = ctx.cluster
    job = cluster.job(ctx.opts.namespace, ctx.args["job_id"])
    deps = cluster.job_deployments(job) if job else []
    return Reply([deployment_json(d) for d in deps], cluster.table_index("deployment"))


def scale(ctx: Ctx) -> Reply:
    req = decode_scaling_request(ctx.body)
    target_job = req.target.get("Job", "")
    if target_job and target_job != ctx.args["job_id"]:
        raise ApiError(400, "job ID in payload did not match URL")
    if not ctx.cluster.leader:
        raise ApiError(500, "No cluster leader")
    body = scale_job(ctx.cluster, ctx.opts.namespace, ctx.args["job_id"], req)
    return Reply(body, body["Index"], read=False)


# -- routing ----------------------------------------------------------------

_SEG = r"(?P<{}>[^/]+)"


def _route(template: str) -> re.Pattern[str]:
    return re.compile(
        "^" + re.sub(r":(\w+)", lambda m: _SEG.format(m.group(1)), template) + "$"
    )


ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
    (_route("/v1/nodes"), {"GET": list_nodes}),
    (_route("/v1/node/:node_id"), {"GET": read_node}),
    (_route("/v1/node/:node_id/allocations"), {"GET": node_allocations}),
    (_route("/v1/allocations"), {"GET": list_allocations}),
    (_route("/v1/allocation/:alloc_id"), {"GET": read_allocation}),
    (_route("/v1/job/:job_id"), {"GET": read_job}),
    (_route("/v1/job/:job_id/allocations"), {"GET": job_allocations}),
    (_route("/v1/job/:job_id/summary"), {"GET": read_job_summary}),
    (
        _route("/v1/job/:job_id/scale"),
        {"GET": read_scale_status, "PUT": scale, "POST": scale},
    ),
    (_route("/v1/job/:job_id/deployment"), {"GET": job_deployment}),
    (_route("/v1/job/:job_id/deployments"), {"GET": job_deployments}),
    (_route("/v1/operator/snapshot"), {"GET": save_snapshot}),
    (_route("/v1/agent/self"), {"GET": agent_self}),
]


def resolve(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    """The handler for a request, or ApiError 404 (unknown path) / 405."""
    for pattern, methods in ROUTES:
        match = pattern.match(path)
        if match is None:
            continue
        handler = methods.get(method)
        if handler is None:
            raise ApiError(405, "Invalid method")
        return handler, match.groupdict()
    raise ApiError(404, "404 page not found\n")
