"""Backup's domain metrics, recorded through Temporal's meter.

They are served on the same `/metrics` endpoint as the SDK's own series.
"""

from __future__ import annotations

from temporalio.common import MetricMeter

from infraops.backup.models import Artifact, Target


def record_artifact(meter: MetricMeter, artifact: Artifact) -> None:
    attrs = {"kind": artifact.kind.value, "target": artifact.target.value}
    meter.create_counter(
        "infraops_backup_artifact_bytes", "Bytes of verified artifacts written", "By"
    ).add(artifact.size, attrs)
    meter.create_histogram_float(
        "infraops_backup_artifact_duration",
        "Time to write and verify one artifact",
        "s",
    ).record(artifact.duration_seconds, attrs)


def record_databases(meter: MetricMeter, skipped: int, failed: int) -> None:
    if skipped:
        meter.create_counter(
            "infraops_backup_databases_skipped", "Databases not dumped, with reason"
        ).add(skipped)
    if failed:
        meter.create_counter(
            "infraops_backup_databases_failed", "Databases whose dump failed"
        ).add(failed)


def record_last_good(meter: MetricMeter, target: Target, epoch_seconds: int) -> None:
    meter.create_gauge(
        "infraops_backup_last_good_run_timestamp",
        "Start time of the newest good run, per target (Unix seconds)",
        "s",
    ).set(epoch_seconds, {"target": target.value})


def record_eviction(meter: MetricMeter) -> None:
    meter.create_counter(
        "infraops_backup_evictions", "Whole runs evicted because S3 was full"
    ).add(1)


def record_retention(meter: MetricMeter, where: str, deleted: int) -> None:
    if deleted:
        meter.create_counter(
            "infraops_backup_retention_deleted", "Runs deleted by retention"
        ).add(deleted, {"store": where})
