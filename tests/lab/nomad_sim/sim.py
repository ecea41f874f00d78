"""`NomadSim`: the public face of the simulator. Build a cluster through the
Python API, `start()` the HTTP server, point a client at the returned URL."""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from .cluster import Cluster
from .faults import PASS_THROUGH, TEXT_PLAIN, Fault, FaultBook, RecordedRequest
from .http_server import SimServer
from .model import CLIENT_RUNNING, GroupSpec, Job, Node, new_id, now_ns
from .render_allocs import alloc_full
from .render_jobs import job_json
from .scheduler import live_allocs

JOB_TYPES = ("service", "batch", "system", "sysbatch")


class NomadSim:
    """A fake Nomad agent on 127.0.0.1 (random port), serving a consistent
    in-memory cluster. Thread-safe; timed transitions run on a ticker thread.

    `token=None` disables ACLs; otherwise every request must carry it."""

    def __init__(
        self,
        token: str | None = "lab-token",
        *,
        stop_delay: float = 0.2,
        start_delay: float = 0.2,
        deployment_duration: float = 0.5,
        region: str = "global",
    ) -> None:
        self.token = token
        self.cluster = Cluster(
            region=region,
            stop_delay=stop_delay,
            start_delay=start_delay,
            deployment_duration=deployment_duration,
        )
        self.faults = FaultBook()
        self.errors: list[BaseException] = []  # sim bugs seen while serving
        self.stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        self._server: SimServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> str:
        """Start serving; returns the base URL (`http://127.0.0.1:PORT`)."""
        if self._server is not None:
            return self.url
        self._server = SimServer(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="nomad-sim-http",
            daemon=True,
        )
        self._thread.start()
        self.cluster.ticker.start()
        return self.url

    def stop(self) -> None:
        if self._server is None:
            return
        self.stopping.set()
        with self.cluster.changed:
            self.cluster.changed.notify_all()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self.cluster.ticker.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> NomadSim:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("NomadSim is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def index(self) -> int:
        """The current Raft index."""
        with self.cluster.lock:
            return self.cluster.index

    # -- building the cluster ----------------------------------------------

    def add_node(
        self,
        name: str,
        address: str,
        *,
        status: str = "ready",
        eligibility: str = "eligible",
        drain: bool = False,
        datacenter: str = "dc1",
        node_pool: str = "default",
        host_volumes: dict[str, str] | None = None,
        drivers: Sequence[str] = ("docker",),
        node_class: str = "",
        meta: dict[str, str] | None = None,
    ) -> str:
        """Register a client node; returns its full UUID. A draining node is
        always ineligible, as in Nomad."""
        node = Node(
            id=new_id(),
            name=name,
            address=address,
            status=status,
            eligibility="ineligible" if drain else eligibility,
            drain=drain,
            datacenter=datacenter,
            node_pool=node_pool,
            node_class=node_class,
            host_volumes=dict(host_volumes or {}),
            drivers=tuple(drivers),
            meta=dict(meta or {}),
            create_index=0,
            modify_index=0,
            status_updated_at=now_ns() // 1_000_000_000,
            drain_started_at=now_ns() if drain else None,
        )
        with self.cluster.lock:
            self.cluster.add_node(node)
        return node.id

    def add_job(
        self,
        job_id: str,
        *,
        namespace: str = "default",
        type: str = "service",
        groups: Sequence[GroupSpec],
        datacenters: Sequence[str] = ("*",),
        node_pool: str = "default",
        priority: int = 50,
        meta: dict[str, str] | None = None,
    ) -> int:
        """Register a job at version 0 (no allocations: add them with
        `add_alloc`). Groups with `update=True` get a successful deployment.
        Returns the JobModifyIndex."""
        _validate_job(job_id, type, groups)
        job = Job(
            id=job_id,
            namespace=namespace,
            type=type,
            groups=copy.deepcopy(list(groups)),
            datacenters=list(datacenters),
            node_pool=node_pool,
            priority=priority,
            meta=dict(meta) if meta else None,
            version=0,
            create_index=0,
            modify_index=0,
            job_modify_index=0,
            submit_time=now_ns(),
        )
        with self.cluster.lock:
            self.cluster.add_job(job)
            return job.job_modify_index

    def add_alloc(
        self,
        job_id: str,
        group: str,
        node_id: str,
        *,
        client_status: str = "running",
        desired_status: str = "run",
        namespace: str | None = None,
        job_version: int | None = None,
    ) -> str:
        """Place an allocation of `job_id`/`group` on a node; returns its full
        UUID. It is named `job.group[i]` with the lowest free index and runs
        the job at `job_version` (default: the current version)."""
        with self.cluster.lock:
            job = self.cluster.find_job(job_id, namespace)
            spec = job.group(group)
            if spec is None:
                raise KeyError(f"job {job_id!r} has no group {group!r}")
            node = self.cluster.nodes[node_id]
            version = job.version if job_version is None else job_version
            if version not in job.history:
                raise KeyError(f"job {job_id!r} has no version {version}")
            used = {a.index for a in live_allocs(self.cluster, job, group)}
            dep = self.cluster.latest_deployment(job) if spec.update else None
            alloc = self.cluster.alloc_for(
                job,
                spec,
                node,
                index=next(i for i in range(len(used) + 1) if i not in used),
                job_version=version,
                client_status=client_status,
                desired_status=desired_status,
                deployment_id=dep.id if dep else "",
                healthy=True if client_status == CLIENT_RUNNING else None,
            )
            self.cluster.add_alloc(alloc)
            return alloc.id

    # -- mutating state (each bumps the Raft index; returns it) ----------------

    def set_node_status(self, node_id: str, status: str) -> int:
        """`ready`, `down`, `initializing` or `disconnected`. Going `down`
        marks the node's live allocations `lost` (no replacement is placed)."""
        with self.cluster.lock:
            return self.cluster.set_node_status(node_id, status)

    def set_node_eligibility(self, node_id: str, eligibility: str) -> int:
        with self.cluster.lock:
            return self.cluster.set_node_eligibility(node_id, eligibility)

    def set_node_drain(
        self, node_id: str, drain: bool, *, mark_eligible: bool = True
    ) -> int:
        with self.cluster.lock:
            return self.cluster.set_node_drain(
                node_id, drain, mark_eligible=mark_eligible
            )

    def set_alloc_status(
        self,
        alloc_id: str,
        client_status: str | None = None,
        desired_status: str | None = None,
        *,
        desired_description: str = "",
    ) -> int:
        with self.cluster.lock:
            return self.cluster.set_alloc_status(
                alloc_id, client_status, desired_status, desired_description
            )

    def remove_alloc(self, alloc_id: str) -> int:
        """Delete an allocation, as Nomad's garbage collector does."""
        with self.cluster.lock:
            return self.cluster.remove_alloc(alloc_id)

    def set_deployment_status(self, deployment_id: str, status: str) -> int:
        with self.cluster.lock:
            return self.cluster.set_deployment_status(deployment_id, status)

    def set_leader(self, known: bool) -> None:
        """Without a leader, reads fail with 500 `No cluster leader` unless
        `?stale`, writes always fail."""
        with self.cluster.lock:
            self.cluster.leader = known

    def set_job_mutations_disabled(self, disabled: bool) -> None:
        """The scheduler configuration's reject_job_registration."""
        with self.cluster.lock:
            self.cluster.reject_job_registration = disabled

    def set_job_max_count(self, limit: int | None) -> None:
        with self.cluster.lock:
            self.cluster.job_max_count = limit

    # -- timers ------------------------------------------------------------

    def flush(self) -> None:
        """Run every pending timed transition now (alloc start/stop,
        deployment completion), instead of waiting for the delays."""
        self.cluster.ticker.flush()

    def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,
        interval: float = 0.02,
    ) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.cluster.lock:
                if predicate():
                    return True
            time.sleep(interval)
        with self.cluster.lock:
            return predicate()

    # -- inspecting (JSON as the API would render it) ------------------------

    def job(self, job_id: str, namespace: str = "default") -> dict[str, Any]:
        with self.cluster.lock:
            return job_json(
                self.cluster.find_job(job_id, namespace), region=self.cluster.region
            )

    def allocation(self, alloc_id: str) -> dict[str, Any]:
        with self.cluster.lock:
            alloc = self.cluster.allocs[alloc_id]
            job = self.cluster.find_job(alloc.job_id, alloc.namespace)
            at = self.cluster.job_at(job, alloc.job_version)
            return alloc_full(alloc, at, job_json(at, region=self.cluster.region))

    def alloc_ids(
        self,
        job_id: str,
        *,
        namespace: str = "default",
        client_status: str | None = None,
        desired_status: str | None = None,
    ) -> list[str]:
        with self.cluster.lock:
            job = self.cluster.find_job(job_id, namespace)
            return [
                a.id
                for a in self.cluster.job_allocs(job)
                if client_status in (None, a.client_status)
                and desired_status in (None, a.desired_status)
            ]

    def deployment_ids(self, job_id: str, namespace: str = "default") -> list[str]:
        """Newest first."""
        with self.cluster.lock:
            job = self.cluster.find_job(job_id, namespace)
            return [d.id for d in self.cluster.job_deployments(job)]

    # -- faults and the request log -------------------------------------------

    def inject(
        self,
        method: str,
        path_regex: str,
        status: int | None,
        body: str = "",
        *,
        times: int | None = 1,
        delay: float = 0.0,
        content_type: str = TEXT_PLAIN,
    ) -> Fault:
        """Answer the next `times` requests (None: all) whose method matches
        (`*` = any) and whose path matches `path_regex` (re.search, path only)
        with `status`/`body` after `delay` seconds. `status=None` closes the
        connection without a reply."""
        fault = Fault(
            method, re.compile(path_regex), status, body, times, delay, content_type
        )
        return self.faults.add(fault)

    def inject_delay(
        self, method: str, path_regex: str, delay: float, *, times: int | None = 1
    ) -> Fault:
        """Delay matching requests, then answer them normally."""
        return self.inject(method, path_regex, PASS_THROUGH, times=times, delay=delay)

    def clear_faults(self) -> None:
        self.faults.clear()

    def record(self, request: RecordedRequest) -> None:
        with self._requests_lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, oldest first (a copy)."""
        with self._requests_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()


def _validate_job(job_id: str, job_type: str, groups: Sequence[GroupSpec]) -> None:
    if job_type not in JOB_TYPES:
        raise ValueError(f"job type must be one of {JOB_TYPES}, not {job_type!r}")
    if not groups:
        raise ValueError(f"job {job_id!r} needs at least one group")
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise ValueError(f"job {job_id!r} has duplicate group names: {names}")
    for group in groups:
        if not group.tasks:
            raise ValueError(f"group {group.name!r} of job {job_id!r} has no tasks")
