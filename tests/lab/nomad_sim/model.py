"""State of the fake Nomad cluster: the specs callers pass in and the records
the simulator keeps. Rendering to Nomad's JSON shapes lives in `render_*`."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

# Status constants (nomad/structs/structs.go).
CLIENT_PENDING = "pending"
CLIENT_RUNNING = "running"
CLIENT_COMPLETE = "complete"
CLIENT_FAILED = "failed"
CLIENT_LOST = "lost"
CLIENT_UNKNOWN = "unknown"
CLIENT_TERMINAL = frozenset({CLIENT_COMPLETE, CLIENT_FAILED, CLIENT_LOST})

DESIRED_RUN = "run"
DESIRED_STOP = "stop"
DESIRED_EVICT = "evict"

DEPLOYMENT_ACTIVE = frozenset(
    {"running", "paused", "pending", "blocked", "unblocking", "initializing"}
)
DEPLOYMENT_DESCRIPTIONS = {
    "running": "Deployment is running",
    "successful": "Deployment completed successfully",
    "failed": "Failed due to unhealthy allocations",
    "cancelled": "Cancelled because job is stopped",
    "paused": "Deployment is paused",
}

NOMAD_VERSION = "1.10.3"


def new_id() -> str:
    """A full Nomad-style UUID (8-4-4-4-12 hex)."""
    return str(uuid.uuid4())


def now_ns() -> int:
    return time.time_ns()


@dataclass
class TaskSpec:
    """One task of a group: `config` is the driver config as the job author wrote it."""

    name: str
    driver: str = "docker"
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScalingSpec:
    """A group `scaling` block: scale requests outside [min, max] are refused."""

    min: int = 0
    max: int = 10


@dataclass
class GroupSpec:
    """A task group. `update=True` means the group has an `update` block, so
    spec changes (including scale requests) start a deployment."""

    name: str
    count: int = 1
    tasks: list[TaskSpec] = field(default_factory=list)
    update: bool = False
    scaling: ScalingSpec | None = None


@dataclass
class Node:
    id: str
    name: str
    address: str
    status: str
    eligibility: str
    drain: bool
    datacenter: str
    node_pool: str
    node_class: str
    host_volumes: dict[str, str]
    drivers: tuple[str, ...]
    meta: dict[str, str]
    create_index: int
    modify_index: int
    status_updated_at: int
    drain_started_at: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Job:
    """A job at one version. `history` maps version -> frozen copy (no history)."""

    id: str
    namespace: str
    type: str
    groups: list[GroupSpec]
    datacenters: list[str]
    node_pool: str
    priority: int
    meta: dict[str, str] | None
    version: int
    create_index: int
    modify_index: int
    job_modify_index: int
    submit_time: int
    status: str = "pending"
    stop: bool = False
    stable: bool = False
    summary_index: int = 0
    history: dict[int, Job] = field(default_factory=dict, repr=False)

    def group(self, name: str) -> GroupSpec | None:
        return next((g for g in self.groups if g.name == name), None)


@dataclass
class Alloc:
    id: str
    eval_id: str
    namespace: str
    job_id: str
    group: str
    index: int
    node_id: str
    node_name: str
    job_version: int
    client_status: str
    desired_status: str
    create_index: int
    modify_index: int
    alloc_modify_index: int
    create_time: int
    modify_time: int
    desired_description: str = ""
    client_description: str = ""
    deployment_id: str = ""
    healthy: bool | None = None
    health_index: int = 0
    started_at: int | None = None
    finished_at: int | None = None
    previous_allocation: str = ""
    next_allocation: str = ""

    @property
    def name(self) -> str:
        return f"{self.job_id}.{self.group}[{self.index}]"

    def terminal(self) -> bool:
        """Nomad's Allocation.TerminalStatus: desired stop/evict or client done."""
        return (
            self.desired_status in (DESIRED_STOP, DESIRED_EVICT)
            or self.client_status in CLIENT_TERMINAL
        )


@dataclass
class DeploymentGroup:
    desired_total: int
    placed: int = 0
    healthy: int = 0
    unhealthy: int = 0


@dataclass
class Deployment:
    id: str
    namespace: str
    job_id: str
    job_version: int
    job_modify_index: int
    job_create_index: int
    groups: dict[str, DeploymentGroup]
    status: str
    create_index: int
    modify_index: int
    create_time: int
    modify_time: int
    description: str = ""

    def active(self) -> bool:
        return self.status in DEPLOYMENT_ACTIVE


@dataclass
class ScalingEvent:
    time: int
    count: int | None
    previous_count: int
    message: str
    error: bool
    meta: dict[str, Any] | None
    eval_id: str | None
    create_index: int
