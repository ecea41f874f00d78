"""RegistryGC's domain metrics, recorded through Temporal's meter.

They are served on the same `/metrics` endpoint as the SDK's own series. The
workflow records through `workflow.metric_meter()`, which skips replays.
"""

from __future__ import annotations

from temporalio.common import MetricMeter


def record_gc_seconds(meter: MetricMeter, seconds: float) -> None:
    meter.create_histogram_float(
        "infraops_registry_gc_command_seconds",
        "Run time of the garbage-collect command itself",
        "s",
    ).record(seconds)


def record_run(
    meter: MetricMeter,
    *,
    outcome: str,
    dry_run: bool,
    offline_seconds: float | None = None,
    blobs_deleted: int = 0,
    blob_bytes_deleted: int = 0,
    disk_bytes_reclaimed: int = 0,
) -> None:
    """One finished run. `outcome`: ok, gc-failed, broken, cancelled, stranded."""
    mode = {"dry_run": str(dry_run).lower()}
    meter.create_counter(
        "infraops_registry_gc_runs", "Registry GC runs, by outcome"
    ).add(1, {"outcome": outcome, **mode})
    if offline_seconds is not None:
        meter.create_histogram_float(
            "infraops_registry_gc_offline_seconds",
            "Time the registry had no running allocation during a GC run",
            "s",
        ).record(offline_seconds, mode)
    if not dry_run:
        meter.create_counter(
            "infraops_registry_gc_blobs_deleted", "Blobs deleted by garbage-collect"
        ).add(blobs_deleted)
        meter.create_counter(
            "infraops_registry_gc_blob_bytes_deleted",
            "Sum of the sizes of deleted blobs",
            "By",
        ).add(blob_bytes_deleted)
        meter.create_counter(
            "infraops_registry_gc_disk_bytes_reclaimed",
            "Disk space freed on the registry host (du delta)",
            "By",
        ).add(max(0, disk_bytes_reclaimed))
