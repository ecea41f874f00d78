"""How `infraops run registry-gc` shows the saga's steps and its result."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from infraops.cli._cleanup_view import human_bytes
from infraops.cli._errors import EXIT_OK
from infraops.registry_gc.models import (
    RegistryGCProgress,
    RegistryGCResult,
    StepStatus,
)

STATUS_STYLE = {
    StepStatus.PENDING: "dim",
    StepStatus.RUNNING: "cyan",
    StepStatus.DONE: "green",
    StepStatus.FAILED: "bold red",
    StepStatus.SKIPPED: "dim",
    StepStatus.COMPENSATING: "bold yellow",
}


class RegistryGCView:
    query = "progress"
    progress_type = RegistryGCProgress
    result_type = RegistryGCResult

    def progress(self, progress: RegistryGCProgress) -> Any:
        where = f" on {progress.node}" if progress.node else ""
        state = ""
        if progress.compensating:
            state = " [bold yellow](compensating: bringing the registry back)[/]"
        elif progress.registry_offline:
            state = " [yellow](registry offline)[/]"
        table = Table(title=f"Registry GC{where}{state}", title_justify="left")
        for column in ("step", "status", "detail"):
            table.add_column(column, overflow="fold")
        for step in progress.steps:
            style = STATUS_STYLE[step.status]
            table.add_row(
                step.name.value, f"[{style}]{step.status.value}[/]", step.detail
            )
        return table

    def progress_lines(
        self, before: RegistryGCProgress | None, now: RegistryGCProgress
    ) -> list[str]:
        seen = {s.name: s.status for s in before.steps} if before else {}
        lines = [
            f"{step.name.value}: {step.status.value}"
            + (f" ({step.detail})" if step.detail else "")
            for step in now.steps
            if seen.get(step.name, StepStatus.PENDING) != step.status
        ]
        if now.compensating and not (before and before.compensating):
            lines.append("compensating: bringing the registry back")
        return lines

    def result(self, result: RegistryGCResult) -> Any:
        mode = "dry run" if result.dry_run else "live run"
        verb = "would delete" if result.dry_run else "deleted"
        table = Table(
            title=f"Registry GC of {result.job_name} on {result.node} ({mode})",
            title_justify="left",
            show_header=False,
        )
        table.add_column("what")
        table.add_column("value", overflow="fold")
        rows = [
            ("GC binary", f"distribution {result.gc_version or '(unknown)'}"),
            ("flags", " ".join(result.flags) or "(none)"),
            ("blobs marked", str(result.blobs_marked)),
            (f"blobs {verb}", str(result.blobs_deleted)),
            (f"manifests {verb}", str(result.manifests_deleted)),
            (f"blob bytes {verb}", human_bytes(result.blob_bytes_deleted)),
            (
                "disk reclaimed (du)",
                f"{human_bytes(max(0, result.disk_bytes_reclaimed))} "
                f"({human_bytes(result.disk_bytes_before)} -> "
                f"{human_bytes(result.disk_bytes_after)})",
            ),
            ("registry offline", f"{result.offline_seconds:.1f} s"),
            ("garbage-collect ran", f"{result.gc_seconds:.1f} s"),
            ("integrity", _integrity(result)),
            ("new allocation", result.new_allocation[:8]),
        ]
        for what, value in rows:
            table.add_row(what, value)
        parts: list[Any] = [table]
        if result.refusals:
            refused = Table(title="Refused", title_justify="left")
            refused.add_column("what")
            refused.add_column("why", overflow="fold")
            for refusal in result.refusals:
                refused.add_row(refusal.what, refusal.reason)
            parts.append(refused)
        if result.integrity.broken:
            broken = Table(title="Broken references", title_justify="left")
            for column in ("repository", "reference", "kind", "digest", "error"):
                broken.add_column(column, overflow="fold")
            for item in result.integrity.broken:
                broken.add_row(
                    item.repository,
                    item.reference,
                    item.kind,
                    item.digest or "",
                    item.error or str(item.status_code or ""),
                )
            parts.append(broken)
        return Group(*parts)

    def exit_code(self, result: RegistryGCResult) -> int:
        return EXIT_OK

    def failed_result(self, error: BaseException) -> RegistryGCResult | None:
        """The result a failed run carried (broken integrity), if any."""
        cause = getattr(error, "cause", None)
        details = getattr(cause, "details", None) or ()
        for detail in details:
            try:
                return RegistryGCResult.model_validate(detail)
            except ValueError:
                continue
        return None


def _integrity(result: RegistryGCResult) -> str:
    integrity = result.integrity
    if not integrity.checked:
        return integrity.verdict
    return (
        f"{integrity.verdict}: {integrity.tags_checked} tags, "
        f"{integrity.manifests_checked} manifests, {integrity.blobs_checked} blobs "
        f"in {integrity.repositories} repositories"
    )
