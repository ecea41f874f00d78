"""How `infraops run backup` and `infraops backup ...` show progress and results."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.table import Table

from infraops.backup.models import (
    BackupProgress,
    BackupResult,
    DatabaseStatus,
    DrillProgress,
    DrillResult,
    LegStatus,
    RunStatus,
)
from infraops.cli._errors import EXIT_OK, EXIT_PARTIAL

STYLE = {
    LegStatus.PENDING: "dim",
    LegStatus.RUNNING: "cyan",
    LegStatus.DONE: "green",
    LegStatus.PARTIAL: "yellow",
    LegStatus.FAILED: "bold red",
    DatabaseStatus.PENDING: "dim",
    DatabaseStatus.DUMPING: "cyan",
    DatabaseStatus.VERIFIED: "green",
    DatabaseStatus.SKIPPED: "dim",
    DatabaseStatus.FAILED: "bold red",
    RunStatus.GOOD: "green",
    RunStatus.PARTIAL: "yellow",
    RunStatus.FAILED: "bold red",
}


def shown(name: str) -> str:
    """A database name with control characters made visible."""
    return name if name.isprintable() else name.encode("unicode_escape").decode()


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


class BackupView:
    query = "progress"
    progress_type = BackupProgress
    result_type = BackupResult

    def progress(self, progress: BackupProgress) -> Any:
        legs = Table(title=f"Backup {progress.run_id} ({progress.phase})")
        for column in ("leg", "status", "detail"):
            legs.add_column(column, overflow="fold")
        for leg in progress.legs:
            legs.add_row(leg.target.value, _styled(leg.status), leg.detail)
        databases = Table(title="Databases", title_justify="left")
        for column in ("database", "status", "size", "detail"):
            databases.add_column(column, overflow="fold")
        for db in progress.databases:
            databases.add_row(
                shown(db.name),
                _styled(db.status),
                human_bytes(db.size) if db.size else "",
                db.detail,
            )
        return Group(legs, databases) if progress.databases else legs

    def progress_lines(
        self, before: BackupProgress | None, now: BackupProgress
    ) -> list[str]:
        legs = {leg.target: leg.status for leg in before.legs} if before else {}
        dbs = {db.name: db.status for db in before.databases} if before else {}
        lines = [
            f"{leg.target.value}: {leg.status.value}"
            for leg in now.legs
            if legs.get(leg.target) != leg.status
        ]
        lines += [
            f"postgres {shown(db.name)!r}: {db.status.value}"
            for db in now.databases
            if dbs.get(db.name) != db.status
        ]
        return lines

    def result(self, result: BackupResult) -> Any:
        manifest = result.manifest
        title = f"Backup {result.run_id}: [{STYLE[result.status]}]{result.status}[/]"
        table = Table(title=title, title_justify="left")
        for column in ("artifact", "database", "size", "sha256", "verified", "S3"):
            table.add_column(column, overflow="fold")
        for artifact in manifest.artifacts:
            flags = [
                f for f in ("stale", "partial", "encrypted") if getattr(artifact, f)
            ]
            table.add_row(
                artifact.name,
                shown(artifact.database or ""),
                human_bytes(artifact.size),
                artifact.sha256[:12],
                artifact.verification + (f" ({', '.join(flags)})" if flags else ""),
                "yes" if artifact.s3_etag else "no",
            )
        parts: list[Any] = [table]
        if manifest.skipped:
            skipped = Table(title="Skipped", title_justify="left")
            for column in ("target", "name", "reason"):
                skipped.add_column(column, overflow="fold")
            for skip in manifest.skipped:
                skipped.add_row(skip.target.value, shown(skip.name), skip.reason)
            parts.append(skipped)
        parts += [f"[yellow]warning:[/] {w}" for w in manifest.warnings]
        parts += [f"[red]error:[/] {e}" for e in manifest.errors]
        if result.evictions:
            parts.append(f"evicted from S3: {', '.join(result.evictions)}")
        parts.append(
            f"retention deleted {len(result.local_deleted)} local and "
            f"{len(result.s3_deleted)} S3 runs"
        )
        return Group(*parts)

    def exit_code(self, result: BackupResult) -> int:
        return EXIT_OK if result.status is RunStatus.GOOD else EXIT_PARTIAL


class DrillView:
    query = "progress"
    progress_type = DrillProgress
    result_type = DrillResult

    def progress(self, progress: DrillProgress) -> Any:
        return f"restore drill: {progress.phase}"

    def progress_lines(
        self, before: DrillProgress | None, now: DrillProgress
    ) -> list[str]:
        return [] if before == now else [f"restore drill: {now.phase}"]

    def result(self, result: DrillResult) -> Any:
        verdict = "[green]restores[/]" if result.ok else "[bold red]MISMATCH[/]"
        table = Table(
            title=f"Restore drill of {shown(result.database)!r} from run "
            f"{result.run_id}: {verdict}",
            title_justify="left",
        )
        for column in ("table", "archive", "restored", "source now"):
            table.add_column(column, overflow="fold")
        for row in result.tables:
            table.add_row(
                row.table,
                str(row.archive_rows),
                str(row.restored_rows),
                "" if row.source_rows is None else str(row.source_rows),
            )
        notes = [
            f"settings match: {result.settings_match}; grants match: "
            f"{result.grants_match}; scratch {result.scratch_database} dropped; "
            f"{result.duration_seconds:.1f} s",
            *[f"[red]difference:[/] {d}" for d in result.differences],
        ]
        return Group(table, *notes)

    def exit_code(self, result: DrillResult) -> int:
        return EXIT_OK if result.ok else EXIT_PARTIAL


def runs_table(rows: list[dict[str, Any]], where: str) -> Table:
    table = Table(title=f"Backup runs ({where})", title_justify="left")
    for column in ("run", "status", "targets", "size", "age"):
        table.add_column(column)
    for row in rows:
        status = row["status"]
        style = STYLE.get(RunStatus(status), "") if status in RunStatus else "dim"
        table.add_row(
            row["run_id"],
            f"[{style}]{status}[/]" if style else status,
            ",".join(row["targets"]),
            human_bytes(row["size"]),
            _age(row["started_at"]),
        )
    return table


def _age(started: str) -> str:
    delta = datetime.now(UTC) - datetime.fromisoformat(started)
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"


def _styled(status: Any) -> str:
    return f"[{STYLE[status]}]{status.value}[/]"
