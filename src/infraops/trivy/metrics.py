"""The trivy role's domain metrics, recorded through Temporal's meter.

They are served on the same `/metrics` endpoint as the SDK's own series.
"""

from __future__ import annotations

from temporalio.common import MetricMeter

from infraops.trivy.models import ImageFailure, ImageScan


def record_scan(meter: MetricMeter, scan: ImageScan) -> None:
    meter.create_counter(
        "infraops_trivy_images_scanned", "Images scanned and stored"
    ).add(1)
    findings = meter.create_counter(
        "infraops_trivy_findings", "Findings stored, by severity"
    )
    for severity, count in sorted(scan.by_severity.items()):
        findings.add(count, {"severity": severity})
    meter.create_histogram_float(
        "infraops_trivy_scan_duration", "Time one trivy image run took", "s"
    ).record(scan.duration_seconds)


def record_failure(meter: MetricMeter, failure: ImageFailure) -> None:
    meter.create_counter(
        "infraops_trivy_images_failed", "Images that could not be scanned"
    ).add(1, {"kind": failure.kind.value, "reason": failure.reason})
