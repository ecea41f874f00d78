"""What travels between the Backup workflow, its activities and the CLI.

Kept free of clients and clocks so the workflow sandbox can load it.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Target(StrEnum):
    NOMAD = "nomad"
    CONSUL = "consul"
    POSTGRES = "postgres"


ALL_TARGETS = [Target.NOMAD, Target.CONSUL, Target.POSTGRES]


class BackupConfig(_Model):
    """The workflow's input, as a schedule or `infraops run backup` passes it."""

    local_retention_days: float = Field(default=7, ge=0)
    s3_retention_days: float = Field(default=30, ge=0)
    min_good_runs: int = Field(default=2, ge=1)
    dump_concurrency: int | None = Field(default=None, ge=1, le=64)
    targets: list[Target] = Field(default_factory=lambda: list(ALL_TARGETS))
    databases: list[str] = Field(default_factory=list)

    @field_validator("targets")
    @classmethod
    def _some_targets(cls, value: list[Target]) -> list[Target]:
        if not value:
            raise ValueError("name at least one of nomad, consul, postgres")
        return list(dict.fromkeys(value))

    @field_validator("databases")
    @classmethod
    def _real_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name or "\0" in name:
                raise ValueError("database names are non-empty and hold no NUL")
        return list(dict.fromkeys(value))


class Kind(StrEnum):
    NOMAD_SNAPSHOT = "nomad-snapshot"
    CONSUL_SNAPSHOT = "consul-snapshot"
    PG_GLOBALS = "pg-globals"
    PG_DATABASE = "pg-database"


class RunStatus(StrEnum):
    GOOD = "good"
    PARTIAL = "partial"
    FAILED = "failed"


class Artifact(_Model):
    """One verified file of a run, as the manifest records it."""

    name: str
    kind: Kind
    target: Target
    size: int
    sha256: str
    database: str | None = None
    server_version: str | None = None
    tool_version: str | None = None
    index: int | None = None
    term: int | None = None
    stale: bool = False
    partial: bool = False
    encrypted: bool = False
    plain_sha256: str | None = None
    verification: str
    notes: list[str] = Field(default_factory=list)
    duration_seconds: float = 0.0
    s3_key: str | None = None
    s3_etag: str | None = None


class Skipped(_Model):
    target: Target
    name: str
    reason: str


class Manifest(_Model):
    """`manifest.json`, written last: its presence commits the run."""

    format: int = MANIFEST_FORMAT
    run_id: str
    started_at: datetime
    finished_at: datetime
    status: RunStatus
    targets: list[Target]
    good_targets: list[Target]
    artifacts: list[Artifact]
    skipped: list[Skipped] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)


# -- activity inputs and outputs ---------------------------------------------


class RunRef(_Model):
    run_id: str


class PreparedRun(_Model):
    """What the workflow learns from the worker before the legs start."""

    run_id: str
    s3_enabled: bool
    dump_concurrency: int
    encrypted: bool


class SnapshotRequest(_Model):
    run_id: str
    target: Target


class PlanRequest(_Model):
    run_id: str
    databases: list[str]


class Database(_Model):
    name: str
    file_name: str
    size: int = 0


class PgPlan(_Model):
    server_version: str
    bindir: str
    tool_version: str
    superuser: bool
    databases: list[Database]
    skipped: list[Skipped]


class GlobalsRequest(_Model):
    run_id: str
    plan: PgPlan


class DumpRequest(_Model):
    run_id: str
    database: Database
    bindir: str
    tool_version: str
    server_version: str


class DumpOutcome(_Model):
    """A verified dump, or why the database was not dumped after all."""

    artifact: Artifact | None = None
    skipped: Skipped | None = None
    warning: str | None = None


class UploadRequest(_Model):
    run_id: str
    name: str
    sha256: str
    size: int


class UploadOutcome(_Model):
    key: str
    etag: str | None = None
    quota_exceeded: bool = False
    error: str | None = None


class EvictRequest(_Model):
    run_id: str


class Eviction(_Model):
    run_id: str | None
    objects_deleted: int = 0
    reason: str = ""


class ManifestWritten(_Model):
    path: str
    size: int
    sha256: str


class RetentionRequest(_Model):
    run_id: str
    now: datetime
    retention_days: float
    min_good_runs: int


class RetentionOutcome(_Model):
    deleted: list[str] = Field(default_factory=list)
    kept: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class LegStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    PARTIAL = "partial"
    FAILED = "failed"


class DatabaseStatus(StrEnum):
    PENDING = "pending"
    DUMPING = "dumping"
    VERIFIED = "verified"
    SKIPPED = "skipped"
    FAILED = "failed"


class DatabaseProgress(_Model):
    name: str
    status: DatabaseStatus
    size: int = 0
    detail: str = ""


class LegProgress(_Model):
    target: Target
    status: LegStatus
    detail: str = ""


class BackupProgress(_Model):
    """What the `progress` query answers while the workflow runs."""

    run_id: str
    phase: str
    legs: list[LegProgress]
    databases: list[DatabaseProgress]


class BackupResult(_Model):
    run_id: str
    status: RunStatus
    manifest: Manifest
    evictions: list[str] = Field(default_factory=list)
    local_deleted: list[str] = Field(default_factory=list)
    s3_deleted: list[str] = Field(default_factory=list)


# -- restore drill -----------------------------------------------------------


class DrillConfig(_Model):
    database: str
    run_id: str | None = None

    @field_validator("database")
    @classmethod
    def _real_name(cls, value: str) -> str:
        if not value or "\0" in value:
            raise ValueError("a database name is non-empty and holds no NUL")
        return value

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$", value):
            raise ValueError("expected a run id like 20261203T010000Z-1a2b3c4d")
        return value


class DrillProgress(_Model):
    phase: str


class TableCount(_Model):
    table: str
    archive_rows: int
    restored_rows: int
    source_rows: int | None = None


class DrillResult(_Model):
    database: str
    run_id: str
    artifact: str
    scratch_database: str
    ok: bool
    tables: list[TableCount]
    settings_match: bool
    grants_match: bool
    differences: list[str]
    duration_seconds: float
