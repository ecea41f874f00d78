"""What travels between the Scan workflow, its activities and the CLI.

Kept free of clients and clocks so the workflow sandbox can load it.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ScanConfig(_Model):
    """The workflow's input, as a schedule or `infraops run scan` passes it."""

    scan_concurrency: int = Field(default=4, ge=1, le=64)
    namespaces: list[str] = Field(default_factory=list)
    severities: list[str] = Field(default_factory=list)
    rescan_after: timedelta = timedelta(0)
    scan_heartbeat_timeout: timedelta = timedelta(minutes=2)

    @field_validator("rescan_after")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must not be negative (0 scans everything)")
        return value

    @field_validator("scan_heartbeat_timeout")
    @classmethod
    def _sane_heartbeat(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= value <= timedelta(hours=1):
            raise ValueError("must be between 1 second and 1 hour")
        return value

    @field_validator("severities")
    @classmethod
    def _known_severities(cls, value: list[str]) -> list[str]:
        upper = [item.upper() for item in value]
        unknown = sorted(set(upper) - set(SEVERITIES))
        if unknown:
            raise ValueError(
                f"unknown severities {unknown}; expected some of {list(SEVERITIES)}"
            )
        return upper


class ImageUse(_Model):
    """One task that runs an image, and the reference as its job wrote it."""

    namespace: str
    job: str
    group: str
    task: str
    driver: str
    written: str


class Image(_Model):
    """A normalised image reference and everywhere it runs."""

    reference: str
    repository: str
    tag: str | None = None
    digest: str | None = None
    uses: list[ImageUse]


class SkipReason(StrEnum):
    UNRESOLVED = "unresolved-variable"
    INVALID = "invalid-reference"
    NO_IMAGE = "no-image"
    NOT_REGISTRY = "not-a-registry-image"
    RECENT = "scanned-recently"
    ABORTED = "aborted"


class ImageSkip(_Model):
    reference: str
    reason: SkipReason
    detail: str = ""
    uses: list[ImageUse] = Field(default_factory=list)


class Discovery(_Model):
    images: list[Image]
    skipped: list[ImageSkip]
    allocations: int


class RunStart(_Model):
    workflow_id: str
    workflow_run_id: str
    config: ScanConfig


class RunInfo(_Model):
    run_id: int
    db_version: str | None = None


class PlanInput(_Model):
    run_id: int
    config: ScanConfig
    db_version: str | None = None
    discovery: Discovery


class Plan(_Model):
    to_scan: list[Image]
    skipped: list[ImageSkip]


class ScanRequest(_Model):
    run_id: int
    image: Image
    severities: list[str] = Field(default_factory=list)
    db_version: str | None = None


class ImageScan(_Model):
    """What one successful scan stored."""

    reference: str
    digest: str | None = None
    image_id: str | None = None
    findings: int
    by_severity: dict[str, int]
    duration_seconds: float
    rows_written: int


class FailureKind(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    CONFIG = "config"


class ImageFailure(_Model):
    reference: str
    kind: FailureKind
    reason: str
    message: str


class FinishInput(_Model):
    run_id: int
    config: ScanConfig
    found: int
    scanned: list[ImageScan]
    skipped: list[ImageSkip]
    failed: list[ImageFailure]
    aborted: str | None = None


class ScanResult(_Model):
    run_id: int
    images_found: int
    images_scanned: int
    skipped: list[ImageSkip]
    failed: list[ImageFailure]
    findings_by_severity: dict[str, int]
    previous_run_id: int | None = None
    new_cves: list[str]
    new_findings: int


class ImageStatus(StrEnum):
    PENDING = "pending"
    SCANNING = "scanning"
    SCANNED = "scanned"
    FAILED = "failed"
    SKIPPED = "skipped"


class ImageProgress(_Model):
    reference: str
    status: ImageStatus
    findings: int = 0
    detail: str = ""


class ScanProgress(_Model):
    """What the `progress` query answers while the workflow runs."""

    phase: str
    images: list[ImageProgress]
