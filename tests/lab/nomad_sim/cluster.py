"""The fake cluster's state store: Raft-like index, tables, records and the
timed transitions (alloc start/stop, deployment completion).

Every method that touches state must run with `lock` held; `bump()` wakes
blocking queries. Placement and scaling logic live in `scheduler.py` and
`scaling.py`."""

from __future__ import annotations

import copy
import threading
from collections import defaultdict
from typing import Any

from . import scheduler
from .model import (
    CLIENT_COMPLETE,
    CLIENT_LOST,
    CLIENT_PENDING,
    CLIENT_RUNNING,
    CLIENT_TERMINAL,
    DESIRED_RUN,
    DESIRED_STOP,
    Alloc,
    Deployment,
    GroupSpec,
    Job,
    Node,
    ScalingEvent,
    new_id,
    now_ns,
)
from .render_nodes import rfc3339
from .ticker import Ticker

TABLES = (
    "nodes",
    "jobs",
    "allocs",
    "deployment",
    "evals",
    "job_summary",
    "scaling_event",
)


class Cluster:
    def __init__(
        self,
        *,
        region: str = "global",
        stop_delay: float = 0.2,
        start_delay: float = 0.2,
        deployment_duration: float = 0.5,
    ) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.region = region
        self.stop_delay = stop_delay
        self.start_delay = start_delay
        self.deployment_duration = deployment_duration
        self.index = 1
        self.tables: dict[str, int] = dict.fromkeys(TABLES, 1)
        self.nodes: dict[str, Node] = {}
        self.jobs: dict[tuple[str, str], Job] = {}
        self.allocs: dict[str, Alloc] = {}
        self.deployments: dict[str, Deployment] = {}
        self.scaling_events: dict[tuple[str, str], dict[str, list[ScalingEvent]]] = (
            defaultdict(lambda: defaultdict(list))
        )
        self.leader = True
        self.reject_job_registration = False
        self.job_max_count: int | None = None
        self.ticker = Ticker(self.lock)

    # -- index ------------------------------------------------------------

    def bump(self, *tables: str) -> int:
        """Advance the Raft index, stamp `tables` with it, wake blocked readers."""
        self.index += 1
        for table in tables:
            self.tables[table] = self.index
        self.changed.notify_all()
        return self.index

    def table_index(self, *tables: str) -> int:
        return max(self.tables[t] for t in tables)

    # -- lookups ----------------------------------------------------------

    def job(self, namespace: str, job_id: str) -> Job | None:
        return self.jobs.get((namespace, job_id))

    def find_job(self, job_id: str, namespace: str | None) -> Job:
        if namespace is not None:
            job = self.job(namespace, job_id)
        else:
            matches = [j for (_, jid), j in self.jobs.items() if jid == job_id]
            job = matches[0] if len(matches) == 1 else self.job("default", job_id)
        if job is None:
            raise KeyError(f"no job {job_id!r} in namespace {namespace or 'default'!r}")
        return job

    def job_at(self, job: Job, version: int) -> Job:
        return job.history.get(version, job)

    def job_allocs(self, job: Job) -> list[Alloc]:
        return [
            a
            for a in self.allocs.values()
            if a.job_id == job.id and a.namespace == job.namespace
        ]

    def latest_deployment(self, job: Job) -> Deployment | None:
        deps = self.job_deployments(job)
        return deps[0] if deps else None

    def job_deployments(self, job: Job) -> list[Deployment]:
        deps = [
            d
            for d in self.deployments.values()
            if d.job_id == job.id and d.namespace == job.namespace
        ]
        return sorted(deps, key=lambda d: d.create_index, reverse=True)

    # -- setup ------------------------------------------------------------

    def add_node(self, node: Node) -> None:
        idx = self.bump("nodes")
        node.create_index = node.modify_index = idx
        node.events.append(_node_event(idx, "Node registered", "Cluster"))
        self.nodes[node.id] = node

    def add_job(self, job: Job) -> None:
        if (job.namespace, job.id) in self.jobs:
            raise ValueError(f"job {job.id!r} already exists in {job.namespace!r}")
        idx = self.bump("jobs", "job_summary", "evals")
        job.create_index = job.modify_index = job.job_modify_index = idx
        job.summary_index = idx
        self.jobs[(job.namespace, job.id)] = job
        self.snapshot_version(job)
        if any(g.update for g in job.groups):
            dep = scheduler.new_deployment(self, job, idx, status="successful")
            for group in dep.groups.values():
                group.placed = group.healthy = group.desired_total
            job.stable = job.history[job.version].stable = True

    def snapshot_version(self, job: Job) -> None:
        frozen = copy.copy(job)
        frozen.groups = copy.deepcopy(job.groups)
        frozen.meta = copy.deepcopy(job.meta)
        frozen.history = {}
        job.history[job.version] = frozen

    def add_alloc(self, alloc: Alloc) -> None:
        idx = self.bump("allocs", "job_summary")
        alloc.create_index = alloc.modify_index = alloc.alloc_modify_index = idx
        alloc.health_index = idx
        _stamp_client_times(alloc)
        self.allocs[alloc.id] = alloc
        self.after_alloc_change(alloc, idx)

    # -- node setters -----------------------------------------------------

    def set_node_status(self, node_id: str, status: str) -> int:
        node = self.nodes[node_id]
        idx = self.bump("nodes")
        node.status, node.modify_index = status, idx
        node.status_updated_at = now_ns() // 1_000_000_000
        message = "Node heartbeat missed" if status == "down" else f"Node {status}"
        node.events.append(_node_event(idx, message, "Cluster"))
        if status == "down":
            self._lose_allocs_on(node)
        return idx

    def set_node_eligibility(self, node_id: str, eligibility: str) -> int:
        node = self.nodes[node_id]
        idx = self.bump("nodes")
        node.eligibility, node.modify_index = eligibility, idx
        return idx

    def set_node_drain(self, node_id: str, drain: bool, *, mark_eligible: bool) -> int:
        node = self.nodes[node_id]
        idx = self.bump("nodes")
        node.drain, node.modify_index = drain, idx
        node.drain_started_at = now_ns() if drain else None
        if drain:
            node.eligibility = "ineligible"
            node.events.append(_node_event(idx, "Node drain strategy set", "Drain"))
        elif mark_eligible:
            node.eligibility = "eligible"
        return idx

    def _lose_allocs_on(self, node: Node) -> None:
        for alloc in list(self.allocs.values()):
            if alloc.node_id == node.id and alloc.client_status not in CLIENT_TERMINAL:
                self.set_alloc_status(
                    alloc.id,
                    CLIENT_LOST,
                    DESIRED_STOP,
                    "alloc is lost since its node is down",
                )

    # -- alloc setters and transitions ------------------------------------

    def set_alloc_status(
        self,
        alloc_id: str,
        client_status: str | None,
        desired_status: str | None,
        desired_description: str = "",
    ) -> int:
        alloc = self.allocs[alloc_id]
        idx = self.bump("allocs", "job_summary")
        if client_status is not None:
            alloc.client_status = client_status
            _stamp_client_times(alloc)
        if desired_status is not None:
            alloc.desired_status = desired_status
            alloc.desired_description = desired_description
            alloc.alloc_modify_index = idx
        alloc.modify_index, alloc.modify_time = idx, now_ns()
        self.after_alloc_change(alloc, idx)
        return idx

    def remove_alloc(self, alloc_id: str) -> int:
        alloc = self.allocs.pop(alloc_id)
        idx = self.bump("allocs", "job_summary")
        self.after_alloc_change(alloc, idx)
        return idx

    def after_alloc_change(self, alloc: Alloc, idx: int) -> None:
        job = self.job(alloc.namespace, alloc.job_id)
        if job is not None:
            job.summary_index = idx
            self.refresh_job_status(job, idx)
        dep = self.deployments.get(alloc.deployment_id)
        if dep is not None and dep.active():
            scheduler.sync_deployment(self, dep, idx)

    def refresh_job_status(self, job: Job, idx: int) -> None:
        status = scheduler.job_status(self, job)
        if status != job.status:
            job.status, job.modify_index = status, idx
            self.tables["jobs"] = idx

    def start_later(self, alloc_id: str) -> None:
        self.ticker.call_later(self.start_delay, lambda: self._start(alloc_id))

    def stop_later(self, alloc_id: str) -> None:
        self.ticker.call_later(self.stop_delay, lambda: self._finish(alloc_id))

    def _start(self, alloc_id: str) -> None:
        alloc = self.allocs.get(alloc_id)
        if alloc is None or alloc.client_status != CLIENT_PENDING:
            return
        if alloc.desired_status != DESIRED_RUN:
            return
        alloc.healthy = True
        self.set_alloc_status(alloc_id, CLIENT_RUNNING, None)
        alloc.health_index = alloc.modify_index

    def _finish(self, alloc_id: str) -> None:
        alloc = self.allocs.get(alloc_id)
        if alloc is None or alloc.client_status in CLIENT_TERMINAL:
            return
        alloc.client_description = "All tasks have completed"
        self.set_alloc_status(alloc_id, CLIENT_COMPLETE, None)

    # -- deployments ------------------------------------------------------

    def complete_later(self, deployment_id: str) -> None:
        self.ticker.call_later(
            self.deployment_duration, lambda: self._complete(deployment_id)
        )

    def _complete(self, deployment_id: str) -> None:
        dep = self.deployments.get(deployment_id)
        if dep is None or dep.status != "running":
            return
        self.set_deployment_status(deployment_id, "successful")

    def set_deployment_status(self, deployment_id: str, status: str) -> int:
        dep = self.deployments[deployment_id]
        idx = self.bump("deployment", "jobs", "allocs")
        dep.status, dep.description = status, ""
        dep.modify_index, dep.modify_time = idx, now_ns()
        if status == "successful":
            scheduler.finish_deployment(self, dep, idx)
        return idx

    # -- misc -------------------------------------------------------------

    def add_scaling_event(self, job: Job, group: str, event: ScalingEvent) -> None:
        events = self.scaling_events[(job.namespace, job.id)][group]
        events.append(event)
        del events[:-20]  # Nomad keeps the 20 latest events per group

    def alloc_for(self, job: Job, group: GroupSpec, node: Node, **fields: Any) -> Alloc:
        now = now_ns()
        return Alloc(
            id=new_id(),
            eval_id=fields.pop("eval_id", new_id()),
            namespace=job.namespace,
            job_id=job.id,
            group=group.name,
            node_id=node.id,
            node_name=node.name,
            job_version=fields.pop("job_version", job.version),
            create_index=0,
            modify_index=0,
            alloc_modify_index=0,
            create_time=now,
            modify_time=now,
            **fields,
        )


def _stamp_client_times(alloc: Alloc) -> None:
    if alloc.client_status == CLIENT_RUNNING and alloc.started_at is None:
        alloc.started_at = now_ns()
    if alloc.client_status in CLIENT_TERMINAL and alloc.finished_at is None:
        alloc.finished_at = now_ns()


def _node_event(idx: int, message: str, subsystem: str) -> dict[str, Any]:
    return {
        "CreateIndex": idx,
        "Details": None,
        "Message": message,
        "Subsystem": subsystem,
        "Timestamp": rfc3339(now_ns()),
    }
