"""What travels between the RegistryGC workflow, its activities and the CLI.

Kept free of clients and clocks so the workflow sandbox can load it. The GC,
version and stop commands are argv templates rendered on the worker
(`commands.py`), so a site with another container runtime, and the tests, can
change them through `--input`.
"""

from __future__ import annotations

import posixpath
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

REGISTRY_GC_WORKFLOW_ID = "registry-gc"
GC_CONTAINER_NAME = "infraops-registry-gc"

# Placeholders the command templates may use (see commands.render).
PLACEHOLDERS = frozenset(
    {"data_dir", "config", "config_in_container", "image", "flags", "container"}
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RegistryGCConfig(_Model):
    """The workflow's input, as a schedule or `infraops run registry-gc` passes it."""

    job_name: str = "registry"
    group_name: str = ""  # empty: the same as job_name
    registry_data_dir: str = "/mnt/gdrive/munchbox-data/registry"
    registry_image: str = "registry:3"
    # The registry job's own config file on the host, mounted into the GC
    # container so GC sees the same storage section; empty: the image's own.
    registry_config_path: str = ""
    dry_run: bool = True
    delete_untagged: bool = True
    # distribution 2.x deletes multi-arch children with --delete-untagged
    # (distribution/distribution#3004, #3178): refused unless this is set.
    allow_delete_untagged_on_v2: bool = False
    # Where the integrity check reaches the registry once it is back; empty
    # skips the check (and the result says so).
    registry_url: str = "http://registry.service.consul:5000"
    gc_command: list[str] | None = None
    version_command: list[str] | None = None
    gc_stop_command: list[str] | None = None
    drain_timeout: timedelta = Field(default=timedelta(minutes=5))
    gc_timeout: timedelta = Field(default=timedelta(hours=2))
    restore_timeout: timedelta = Field(default=timedelta(minutes=10))
    integrity_timeout: timedelta = Field(default=timedelta(minutes=10))
    heartbeat_timeout: timedelta = Field(default=timedelta(seconds=30))
    poll_interval: timedelta = Field(default=timedelta(seconds=2))
    # One attempt of a quick step (locate, probe, measure, scale).
    step_timeout: timedelta = Field(default=timedelta(minutes=5))

    @property
    def group(self) -> str:
        return self.group_name or self.job_name

    @field_validator("registry_data_dir")
    @classmethod
    def _safe_root(cls, value: str) -> str:
        normal = posixpath.normpath(value)
        if not value.startswith("/") or normal == "/" or "\0" in value:
            raise ValueError("must be an absolute directory other than /")
        return normal

    @field_validator("registry_config_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if value and not value.startswith("/"):
            raise ValueError("must be an absolute path on the registry host")
        return value

    @field_validator("job_name", "registry_image")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("gc_command", "version_command", "gc_stop_command")
    @classmethod
    def _template(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value or not value[0]:
            raise ValueError("must be a non-empty argv list")
        from string import Formatter

        for element in value:
            try:
                fields = {f for _, f, _, _ in Formatter().parse(element) if f}
            except ValueError as error:
                raise ValueError(f"{element!r}: {error}") from None
            unknown = fields - PLACEHOLDERS
            if unknown:
                known = ", ".join(sorted(PLACEHOLDERS))
                raise ValueError(
                    f"{element!r} uses unknown placeholder(s) "
                    f"{', '.join(sorted(unknown))}; known: {known}"
                )
        return value

    @model_validator(mode="after")
    def _positive_durations(self) -> RegistryGCConfig:
        for name in (
            "drain_timeout",
            "gc_timeout",
            "restore_timeout",
            "integrity_timeout",
            "heartbeat_timeout",
            "poll_interval",
            "step_timeout",
        ):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")
        return self


class RegistryNode(_Model):
    """Where the registry's allocation runs (or last ran)."""

    node_id: str
    name: str
    address: str
    count: int  # the group's count when the run began
    running_allocs: list[str]


class ScaleRequest(_Model):
    job_name: str
    group_name: str
    count: int = Field(ge=0)
    message: str
    poll_interval: timedelta = Field(default=timedelta(seconds=2))
    # Send the request even at the target count: it bumps JobModifyIndex, so a
    # scale-down whose outcome is unknown (still in flight) fails its CAS.
    fence: bool = False


class ScaleOutcome(_Model):
    previous: int
    count: int
    changed: bool  # False: the group already had the count; nothing was sent
    at: datetime


class DrainRequest(_Model):
    job_name: str
    group_name: str
    poll_interval: timedelta = Field(default=timedelta(seconds=2))


class Drained(_Model):
    stopped_allocs: list[str]
    at: datetime


class NodeWork(_Model):
    node: RegistryNode
    config: RegistryGCConfig


class GCProbe(_Model):
    """What `version_command` said about the garbage-collect binary."""

    version: str  # "" when it could not be read
    major: int | None
    output: str


class StorageUsage(_Model):
    bytes: int
    blob_files: int


class GCRun(_Model):
    node: RegistryNode
    config: RegistryGCConfig
    flags: list[str]


class GCOutcome(_Model):
    blobs_marked: int
    blobs_deleted: int
    manifests_deleted: int
    blob_bytes_deleted: int
    blob_digests: list[str]
    manifest_digests: list[str]
    output_format: str
    seconds: float
    started_at: datetime
    finished_at: datetime


class RestoreRequest(_Model):
    node: RegistryNode
    config: RegistryGCConfig
    count: int = Field(ge=1)
    stop_gc: bool  # a GC may have been started on the node: stop it first
    fence: bool  # the scale-down's outcome is unknown: fence it off (CAS)


class Restored(_Model):
    alloc_id: str
    new_allocation: bool
    scaled: bool
    at: datetime


class Broken(_Model):
    repository: str
    reference: str
    digest: str | None
    kind: str
    status_code: int | None = None
    error: str | None = None


class Integrity(_Model):
    checked: bool
    ok: bool
    repositories: int = 0
    tags_checked: int = 0
    manifests_checked: int = 0
    blobs_checked: int = 0
    broken: list[Broken] = Field(default_factory=list)
    note: str = ""

    @property
    def verdict(self) -> str:
        if not self.checked:
            return f"skipped: {self.note}" if self.note else "skipped"
        return "ok" if self.ok else f"BROKEN ({len(self.broken)} references)"


class Refusal(_Model):
    what: str
    reason: str


class StepName(StrEnum):
    LOCATE = "locate"
    PROBE = "probe"
    MEASURE_BEFORE = "measure-before"
    SCALE_DOWN = "scale-down"
    DRAIN = "drain"
    GC = "garbage-collect"
    RESTORE = "restore"
    MEASURE_AFTER = "measure-after"
    INTEGRITY = "integrity"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    COMPENSATING = "compensating"


class Step(_Model):
    name: StepName
    status: StepStatus = StepStatus.PENDING
    detail: str = ""


class RegistryGCResult(_Model):
    dry_run: bool
    job_name: str
    group_name: str
    node: str
    gc_version: str
    flags: list[str]
    refusals: list[Refusal]
    blobs_marked: int
    blobs_deleted: int  # or that would be, in a dry run
    manifests_deleted: int
    blob_bytes_deleted: int  # sum of the deleted blobs' sizes
    disk_bytes_before: int
    disk_bytes_after: int
    disk_bytes_reclaimed: int  # du delta: includes directory entries
    offline_seconds: float
    gc_seconds: float
    integrity: Integrity
    new_allocation: str


class RegistryGCProgress(_Model):
    """What the `progress` query answers while the workflow runs."""

    steps: list[Step]
    node: str = ""
    compensating: bool = False
    registry_offline: bool = False
    error: str = ""
    result: RegistryGCResult | None = None
