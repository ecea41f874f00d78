"""How `infraops run cleanup` shows progress and results."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rich.console import Group
from rich.table import Table

from infraops.cleanup.models import (
    UNKNOWN_NODE,
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
        title = f"Cleanup of {result.data_dir} ({mode})"
        nodes = Table(title=title, title_justify="left")
        for column in ("node", "status", "stale", "size", "removed", "reclaimed"):
            nodes.add_column(column)
        nodes.add_column("kept")
        nodes.add_column("errors", overflow="fold")
        for node in result.nodes:
            nodes.add_row(
                node.node,
                f"[{STATUS_STYLE[node.status]}]{node.status.value}[/]",
                str(len(node.candidates)),
                human_bytes(_candidate_bytes(node)),
                str(len(node.removed)),
                human_bytes(node.bytes_reclaimed),
                str(len(node.skipped)),
                "; ".join(node.errors),
            )
        for skip in result.skipped_nodes:
            nodes.add_row(skip.name, "[dim]skipped[/]", "", "", "", "", "", skip.reason)

        return Group(nodes, *_entry_tables(result), _totals(result))

    def exit_code(self, result: CleanupResult) -> int:
        unknown = [s for s in result.skipped_nodes if s.reason == UNKNOWN_NODE]
        return EXIT_PARTIAL if result.failed_nodes or unknown else EXIT_OK


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


def _entry_tables(result: CleanupResult) -> list[Table]:
    stale = Table(title="Stale directories", title_justify="left")
    for column in ("node", "directory", "age (days)", "size", "outcome"):
        stale.add_column(column, overflow="fold")
    kept: dict[str, list[str]] = defaultdict(list)
    for node in result.nodes:
        removed = {r.name: r.bytes_reclaimed for r in node.removed}
        for verdict in node.candidates:
            if result.dry_run:
                outcome = "would remove"
            elif verdict.name in removed:
                outcome = f"removed ({human_bytes(removed[verdict.name])})"
            else:
                outcome = "kept"
            age = verdict.age_days
            stale.add_row(
                node.node,
                shown(verdict.name),
                f"{age:.1f}" if age is not None else "",
                human_bytes(verdict.size_bytes or 0),
                outcome,
            )
        for verdict in node.skipped:
            kept[verdict.reason.value].append(f"{node.node}:{shown(verdict.name)}")
    reasons = Table(title="Kept, by reason", title_justify="left")
    for column in ("reason", "entries", "for example"):
        reasons.add_column(column, overflow="fold")
    for reason, names in sorted(kept.items()):
        sample = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        reasons.add_row(reason, str(len(names)), sample)

    return [table for table in (stale, reasons) if table.row_count]


def _totals(result: CleanupResult) -> str:
    totals = result.totals
    return (
        f"{totals.nodes_scanned} nodes scanned, {totals.nodes_failed} failed, "
        f"{totals.nodes_skipped} skipped; {totals.candidates} stale directories "
        f"({human_bytes(totals.candidate_bytes)}), {totals.removed} removed, "
        f"{human_bytes(totals.bytes_reclaimed)} reclaimed"
    )


def shown(name: str) -> str:
    """A directory name with control characters made visible."""
    if name.isprintable():
        return name
    return name.encode("unicode_escape").decode("ascii")
