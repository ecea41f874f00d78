"""How `infraops run cleanup` shows progress and results."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Group
from rich.table import Table

from infraops.cleanup.models import (
    CleanupProgress,
    CleanupResult,
    NodeProgress,
    NodeResult,
    NodeStatus,
)
from infraops.cli._errors import EXIT_OK, EXIT_PARTIAL

STATUS_STYLE = {
    NodeStatus.PENDING: "dim",
    NodeStatus.SCANNING: "cyan",
    NodeStatus.REMOVING: "yellow",
    NodeStatus.PRUNING: "yellow",
    NodeStatus.DONE: "green",
    NodeStatus.FAILED: "bold red",
}


class CleanupView:
    query = "progress"
    progress_type = CleanupProgress
    result_type = CleanupResult

    def progress(self, progress: CleanupProgress) -> Any:
        table = Table(title="Cleanup", title_justify="left")
        for column in ("node", "status", "candidates", "removed"):
            table.add_column(column)
        if not progress.planned:
            table.add_row("(asking Nomad for nodes)", "", "", "")
        for node in progress.nodes:
            table.add_row(
                node.node, _status(node), str(node.candidates), str(node.removed)
            )
        for skip in progress.skipped_nodes:
            table.add_row(skip.name, f"[dim]skipped: {skip.reason}[/]", "", "")

        return table

    def progress_lines(
        self, before: CleanupProgress | None, now: CleanupProgress
    ) -> list[str]:
        seen = {n.node: n.status for n in before.nodes} if before else {}
        return [
            f"{node.node}: {node.status.value}"
            for node in now.nodes
            if seen.get(node.node) != node.status
        ]

    def result(self, result: CleanupResult) -> Any:
        mode = "dry run" if result.dry_run else "live run"
        nodes = Table(
            title=f"Cleanup of {result.data_dir} ({mode})", title_justify="left"
        )
        for column in (
            "node",
            "status",
            "candidates",
            "removed",
            "reclaimed",
            "kept",
            "errors",
        ):
            nodes.add_column(column, overflow="fold")
        for node in result.nodes:
            reasons = Counter(v.reason.value for v in node.skipped)
            kept = ", ".join(
                f"{reason} {count}" for reason, count in sorted(reasons.items())
            )
            nodes.add_row(
                node.node,
                f"[{STATUS_STYLE[node.status]}]{node.status.value}[/]",
                f"{len(node.candidates)} ({human_bytes(_candidate_bytes(node))})",
                str(len(node.removed)),
                human_bytes(node.bytes_reclaimed),
                kept,
                "; ".join(node.errors),
            )
        for skip in result.skipped_nodes:
            nodes.add_row(skip.name, "[dim]skipped[/]", "", "", "", skip.reason, "")
        parts: list[Any] = [nodes]
        entries = Table(title="Stale directories", title_justify="left")
        for column in ("node", "directory", "age (days)", "size", "outcome"):
            entries.add_column(column, overflow="fold")
        for node in result.nodes:
            removed = {r.name: r.bytes_reclaimed for r in node.removed}
            for verdict in node.candidates:
                outcome = (
                    "would remove"
                    if result.dry_run
                    else (
                        f"removed ({human_bytes(removed[verdict.name])})"
                        if verdict.name in removed
                        else "kept"
                    )
                )
                entries.add_row(
                    node.node,
                    verdict.name,
                    f"{verdict.age_days:.1f}" if verdict.age_days is not None else "",
                    human_bytes(verdict.size_bytes or 0),
                    outcome,
                )
        if entries.row_count:
            parts.append(entries)
        totals = result.totals
        parts.append(
            f"{totals.nodes_scanned} nodes scanned, {totals.nodes_failed} failed, "
            f"{totals.nodes_skipped} skipped; {totals.candidates} stale directories "
            f"({human_bytes(totals.candidate_bytes)}), {totals.removed} removed, "
            f"{human_bytes(totals.bytes_reclaimed)} reclaimed"
        )

        return Group(*parts)

    def exit_code(self, result: CleanupResult) -> int:
        return EXIT_PARTIAL if result.failed_nodes else EXIT_OK


def _candidate_bytes(node: NodeResult) -> int:
    return sum(verdict.size_bytes or 0 for verdict in node.candidates)


def _status(node: NodeProgress) -> str:
    return f"[{STATUS_STYLE[node.status]}]{node.status.value}[/]"


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"
