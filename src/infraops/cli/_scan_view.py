"""How `infraops run scan` starts the Scan workflow and shows its progress."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Group
from rich.table import Table

from infraops.cli._errors import EXIT_OK, EXIT_PARTIAL
from infraops.trivy.models import (
    SEVERITIES,
    ImageStatus,
    ScanProgress,
    ScanResult,
)

STATUS_STYLE = {
    ImageStatus.PENDING: "dim",
    ImageStatus.SCANNING: "cyan",
    ImageStatus.SCANNED: "green",
    ImageStatus.SKIPPED: "yellow",
    ImageStatus.FAILED: "bold red",
}


class ScanView:
    query = "progress"
    progress_type = ScanProgress
    result_type = ScanResult

    def progress(self, progress: ScanProgress) -> Any:
        counts = Counter(image.status for image in progress.images)
        summary = ", ".join(
            f"{counts[status]} {status.value}"
            for status in ImageStatus
            if counts[status]
        )
        table = Table(
            title=f"Scan: {progress.phase}" + (f" ({summary})" if summary else ""),
            title_justify="left",
        )
        for column in ("image", "status", "findings"):
            table.add_column(column, overflow="fold")
        active = [
            image
            for image in progress.images
            if image.status in (ImageStatus.SCANNING, ImageStatus.FAILED)
        ]
        for image in active:
            status = image.status
            detail = f" ({image.detail})" if image.detail else ""
            table.add_row(
                image.reference,
                f"[{STATUS_STYLE[status]}]{status.value}{detail}[/]",
                str(image.findings) if status is ImageStatus.SCANNED else "",
            )
        return table

    def progress_lines(
        self, before: ScanProgress | None, now: ScanProgress
    ) -> list[str]:
        lines = []
        if before is None or before.phase != now.phase:
            lines.append(f"phase: {now.phase}")
        seen = {i.reference: i.status for i in before.images} if before else {}
        for image in now.images:
            if seen.get(image.reference) != image.status:
                detail = f" ({image.detail})" if image.detail else ""
                lines.append(f"{image.reference}: {image.status.value}{detail}")
        return lines

    def result(self, result: ScanResult) -> Any:
        parts: list[Any] = []
        severity = Table(title="Findings by severity", title_justify="left")
        severity.add_column("severity")
        severity.add_column("findings", justify="right")
        for name in SEVERITIES:
            if name in result.findings_by_severity:
                severity.add_row(name, str(result.findings_by_severity[name]))
        parts.append(severity)
        if result.failed:
            failed = Table(title="Failed images", title_justify="left")
            for column in ("image", "class", "reason", "message"):
                failed.add_column(column, overflow="fold")
            for failure in result.failed:
                failed.add_row(
                    failure.reference,
                    failure.kind.value,
                    failure.reason,
                    failure.message.splitlines()[0][:300],
                )
            parts.append(failed)
        if result.skipped:
            skipped = Table(title="Skipped images", title_justify="left")
            for column in ("image", "reason", "detail"):
                skipped.add_column(column, overflow="fold")
            for skip in result.skipped:
                skipped.add_row(skip.reference, skip.reason.value, skip.detail)
            parts.append(skipped)
        since = (
            f"since run {result.previous_run_id}"
            if result.previous_run_id is not None
            else "(first run: everything is new)"
        )
        new = ", ".join(result.new_cves[:20]) + (
            ", ..." if len(result.new_cves) > 20 else ""
        )
        parts.append(
            f"run {result.run_id}: {result.images_found} images found, "
            f"{result.images_scanned} scanned, {len(result.skipped)} skipped, "
            f"{len(result.failed)} failed; {result.new_findings} new findings "
            f"{since}" + (f": {new}" if new else "")
        )
        return Group(*parts)

    def exit_code(self, result: ScanResult) -> int:
        return EXIT_PARTIAL if result.failed else EXIT_OK
