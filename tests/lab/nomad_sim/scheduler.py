"""A tiny stand-in for Nomad's reconciler and placement: what a job change
does to allocations and deployments. Runs with the cluster lock held."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING

from .model import (
    CLIENT_PENDING,
    DESIRED_RUN,
    DESIRED_STOP,
    Alloc,
    Deployment,
    DeploymentGroup,
    GroupSpec,
    Job,
    Node,
    new_id,
    now_ns,
)

if TYPE_CHECKING:
    from .cluster import Cluster

STOP_REASON = "alloc not needed due to job update"


def job_status(cluster: Cluster, job: Job) -> str:
    """Nomad's getJobStatus, without evaluations."""
    allocs = cluster.job_allocs(job)
    if any(not a.terminal() for a in allocs):
        return "running"
    if job.stop or allocs:
        return "dead"
    return "pending"


def live_allocs(cluster: Cluster, job: Job, group: str) -> list[Alloc]:
    live = [a for a in cluster.job_allocs(job) if a.group == group and not a.terminal()]
    return sorted(live, key=lambda a: (a.index, a.create_index))


def new_deployment(cluster: Cluster, job: Job, idx: int, *, status: str) -> Deployment:
    now = now_ns()
    dep = Deployment(
        id=new_id(),
        namespace=job.namespace,
        job_id=job.id,
        job_version=job.version,
        job_modify_index=job.job_modify_index,
        job_create_index=job.create_index,
        groups={
            g.name: DeploymentGroup(desired_total=g.count)
            for g in job.groups
            if g.update
        },
        status=status,
        create_index=idx,
        modify_index=idx,
        create_time=now,
        modify_time=now,
    )
    cluster.deployments[dep.id] = dep
    cluster.tables["deployment"] = idx
    return dep


def sync_deployment(cluster: Cluster, dep: Deployment, idx: int) -> None:
    """Recount placed/healthy allocations of an active deployment."""
    members = [a for a in cluster.allocs.values() if a.deployment_id == dep.id]
    for name, group in dep.groups.items():
        mine = [a for a in members if a.group == name and not a.terminal()]
        group.placed = len(mine)
        group.healthy = sum(1 for a in mine if a.healthy is True)
        group.unhealthy = sum(1 for a in mine if a.healthy is False)
    dep.modify_index = idx
    cluster.tables["deployment"] = idx


def finish_deployment(cluster: Cluster, dep: Deployment, idx: int) -> None:
    """Mark a successful deployment's allocations healthy and the version stable."""
    for alloc in cluster.allocs.values():
        if alloc.deployment_id == dep.id and not alloc.terminal():
            alloc.healthy, alloc.health_index, alloc.modify_index = True, idx, idx
    sync_deployment(cluster, dep, idx)
    job = cluster.job(dep.namespace, dep.job_id)
    if job is None:
        return
    for version in (job, job.history.get(dep.job_version)):
        if version is not None and version.version == dep.job_version:
            version.stable = True
    job.modify_index = idx


def reconcile(
    cluster: Cluster, job: Job, *, eval_id: str, deployment: Deployment | None
) -> int:
    """Apply the job's current counts: stop extras (highest index first), move
    the rest to the current version in place, place what is missing."""
    idx = cluster.bump("allocs", "job_summary")
    for group in job.groups:
        live = live_allocs(cluster, job, group.name)
        for alloc in live[group.count :]:
            _stop(cluster, alloc, idx)
        kept = live[: group.count]
        group_dep = deployment if group.update else None
        for alloc in kept:
            _update_in_place(alloc, job, idx, group_dep)
        _place(cluster, job, group, kept, idx, eval_id, group_dep)
    job.summary_index = idx
    cluster.refresh_job_status(job, idx)
    if deployment is not None:
        sync_deployment(cluster, deployment, idx)
    return idx


def _stop(cluster: Cluster, alloc: Alloc, idx: int) -> None:
    alloc.desired_status, alloc.desired_description = DESIRED_STOP, STOP_REASON
    alloc.modify_index = alloc.alloc_modify_index = idx
    alloc.modify_time = now_ns()
    cluster.stop_later(alloc.id)


def _update_in_place(alloc: Alloc, job: Job, idx: int, dep: Deployment | None) -> None:
    alloc.job_version = job.version
    alloc.modify_index = alloc.alloc_modify_index = idx
    alloc.modify_time = now_ns()
    if dep is not None:
        alloc.deployment_id, alloc.healthy = dep.id, None


def _place(
    cluster: Cluster,
    job: Job,
    group: GroupSpec,
    kept: list[Alloc],
    idx: int,
    eval_id: str,
    dep: Deployment | None,
) -> None:
    used = {a.index for a in kept}
    free = [i for i in range(group.count) if i not in used]
    for name_index in free[: group.count - len(kept)]:
        node = choose_node(cluster, job, group)
        if node is None:
            return  # stays queued, as Nomad does when nothing fits
        alloc = cluster.alloc_for(
            job,
            group,
            node,
            index=name_index,
            client_status=CLIENT_PENDING,
            desired_status=DESIRED_RUN,
            eval_id=eval_id,
            deployment_id=dep.id if dep else "",
        )
        alloc.create_index = alloc.modify_index = alloc.alloc_modify_index = idx
        cluster.allocs[alloc.id] = alloc
        cluster.start_later(alloc.id)


def _feasible(node: Node, job: Job, group: GroupSpec) -> bool:
    return (
        node.status == "ready"
        and node.eligibility == "eligible"
        and not node.drain
        and any(fnmatch.fnmatchcase(node.datacenter, dc) for dc in job.datacenters)
        and job.node_pool in ("all", node.node_pool)
        and {t.driver for t in group.tasks} <= set(node.drivers)
    )


def choose_node(cluster: Cluster, job: Job, group: GroupSpec) -> Node | None:
    """Spread: the feasible node with the fewest live allocations."""
    feasible = [n for n in cluster.nodes.values() if _feasible(n, job, group)]
    if not feasible:
        return None

    def load(node: Node) -> tuple[int, str]:
        busy = sum(
            1
            for a in cluster.allocs.values()
            if a.node_id == node.id and not a.terminal()
        )
        return busy, node.name

    return min(feasible, key=load)
