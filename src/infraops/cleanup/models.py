"""What travels between the Cleanup workflow, its activities and the CLI.

Kept free of clients and clocks so the workflow sandbox can load it.
"""

from __future__ import annotations

import posixpath
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

SYSTEM_ENTRIES = frozenset(
    {
        "alloc",
        "client",
        "server",
        "plugins",
        "tmp",
        "host_volumes",
        "host_volume_plugins",
        "common_plugins",
    }
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CleanupConfig(_Model):
    """The workflow's input, as a schedule or `infraops run cleanup` passes it."""

    data_dir: str = "/opt/nomad/data"
    grace_days: float = Field(default=7, ge=0)
    dry_run: bool = True
    docker_prune: bool = False
    nodes: list[str] = Field(default_factory=list)
    concurrency: int = Field(default=8, ge=1, le=256)
    exclude: list[str] = Field(default_factory=list)

    @field_validator("data_dir")
    @classmethod
    def _safe_root(cls, value: str) -> str:
        normal = posixpath.normpath(value)
        if not value.startswith("/") or normal == "/" or "\0" in value:
            raise ValueError("must be an absolute directory other than /")
        if normal != value.rstrip("/") or "//" in value:
            raise ValueError(f"must be written plainly, for example {normal}")
        return normal

    @field_validator("exclude")
    @classmethod
    def _plain_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not is_plain_name(name):
                raise ValueError(f"{name!r} is not a directory name under data_dir")
        return value


def is_plain_name(name: str) -> bool:
    """True for one path component that cannot climb out of its directory."""
    return name not in ("", ".", "..") and "/" not in name and "\0" not in name


class Node(_Model):
    """A Nomad client node as the activities address it."""

    id: str
    name: str
    address: str


UNKNOWN_NODE = "no such node in Nomad"


class NodeSkip(_Model):
    name: str
    reason: str


class NodePlan(_Model):
    targets: list[Node]
    skipped: list[NodeSkip]


class Reason(StrEnum):
    """Why an entry of the data directory is, or is not, removed."""

    SYSTEM = "system"
    EXCLUDED = "excluded"
    ODD_NAME = "name-not-utf8"
    SYMLINK = "symlink"
    NOT_DIRECTORY = "not-directory"
    MOUNT = "mount-point"
    CONTAINS_MOUNT = "contains-mount"
    NETWORK_FS = "network-filesystem"
    IN_USE = "in-use"
    RECENT = "recent"
    VANISHED = "vanished"
    CANDIDATE = "candidate"


class Verdict(_Model):
    name: str
    reason: Reason
    age_days: float | None = None
    size_bytes: int | None = None
    detail: str = ""


class NodeWork(_Model):
    """One node and the config, the input of every per-node activity."""

    node: Node
    config: CleanupConfig


class NodeScan(_Model):
    candidates: list[Verdict]
    skipped: list[Verdict]


class RemovalInput(_Model):
    node: Node
    config: CleanupConfig
    names: list[str]


class Removed(_Model):
    name: str
    bytes_reclaimed: int


class NodeRemoval(_Model):
    removed: list[Removed]
    kept: list[Verdict]
    errors: list[str]


class DockerPrune(_Model):
    deleted: list[str]
    untagged: list[str]
    bytes_reclaimed: int
    skipped: str = ""  # why the prune did not run (registry-gc on the node)


class NodeStatus(StrEnum):
    PENDING = "pending"
    SCANNING = "scanning"
    REMOVING = "removing"
    PRUNING = "pruning"
    DONE = "done"
    FAILED = "failed"


class NodeResult(_Model):
    node: str
    status: NodeStatus
    candidates: list[Verdict] = Field(default_factory=list)
    removed: list[Removed] = Field(default_factory=list)
    skipped: list[Verdict] = Field(default_factory=list)
    bytes_reclaimed: int = 0
    docker: DockerPrune | None = None
    errors: list[str] = Field(default_factory=list)


class Totals(_Model):
    nodes_scanned: int
    nodes_failed: int
    nodes_skipped: int
    candidates: int
    candidate_bytes: int
    removed: int
    bytes_reclaimed: int


class CleanupResult(_Model):
    dry_run: bool
    data_dir: str
    nodes: list[NodeResult]
    failed_nodes: list[str]
    skipped_nodes: list[NodeSkip]
    totals: Totals


class NodeProgress(_Model):
    node: str
    status: NodeStatus
    candidates: int = 0
    removed: int = 0


class CleanupProgress(_Model):
    """What the `progress` query answers while the workflow runs."""

    planned: bool
    nodes: list[NodeProgress]
    skipped_nodes: list[NodeSkip]
