"""Cleanup's domain metrics, recorded through Temporal's meter.

They are served on the same `/metrics` endpoint as the SDK's own series.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.common import MetricMeter

from infraops.cleanup.models import Removed, Verdict


def record_scan(meter: MetricMeter, skipped: Sequence[Verdict]) -> None:
    meter.create_counter(
        "infraops_cleanup_nodes_scanned", "Nodes whose data directory was listed"
    ).add(1)
    _count_skipped(meter, skipped)


def record_removal(
    meter: MetricMeter, removed: Sequence[Removed], kept: Sequence[Verdict]
) -> None:
    if removed:
        meter.create_counter(
            "infraops_cleanup_directories_removed", "Stale directories deleted"
        ).add(len(removed))
        meter.create_counter(
            "infraops_cleanup_bytes_reclaimed", "Disk space freed by deletions", "By"
        ).add(sum(entry.bytes_reclaimed for entry in removed))
    _count_skipped(meter, kept)


def record_node_failed(meter: MetricMeter) -> None:
    meter.create_counter(
        "infraops_cleanup_nodes_failed", "Nodes whose cleanup failed"
    ).add(1)


def _count_skipped(meter: MetricMeter, verdicts: Sequence[Verdict]) -> None:
    counter = meter.create_counter(
        "infraops_cleanup_directories_skipped", "Entries kept, by reason"
    )
    for verdict in verdicts:
        counter.add(1, {"reason": verdict.reason.value})
