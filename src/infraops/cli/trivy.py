"""`infraops trivy report`: the findings that matter now, from the database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from infraops.cli._errors import fail, reports_errors

if TYPE_CHECKING:
    from infraops.trivy.store import StoredReport

app = typer.Typer(
    help="Read the Trivy scan history.", no_args_is_help=True, rich_markup_mode=None
)


@app.command()
@reports_errors
def report(
    severity: Annotated[
        str | None,
        typer.Option(metavar="LIST", help="Only these severities, e.g. HIGH,CRITICAL."),
    ] = None,
    new: Annotated[
        bool, typer.Option("--new", help="Only what appeared since the previous run.")
    ] = False,
    image: Annotated[
        list[str] | None,
        typer.Option(metavar="REF", help="Only this image; repeat for several."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON on stdout.")
    ] = False,
) -> None:
    """Findings of the latest scan run, with where each image runs."""
    import asyncio

    from infraops.trivy.models import SEVERITIES
    from infraops.trivy.references import InvalidReference, normalise

    severities = [s.strip().upper() for s in (severity or "").split(",") if s.strip()]
    unknown = sorted(set(severities) - set(SEVERITIES))
    if unknown:
        raise fail(
            f"--severity: unknown {', '.join(unknown)}; use {','.join(SEVERITIES)}"
        )
    references: list[str] = []
    for ref in image or []:
        try:
            parsed = normalise(ref)
        except InvalidReference as error:
            raise fail(f"--image: {error}") from None
        references += [parsed.canonical, parsed.repository]
    stored = asyncio.run(_read(severities, new, references))
    if as_json:
        typer.echo(_as_json(stored))
    else:
        _print(stored, new=new)


async def _read(
    severities: list[str], new: bool, references: list[str]
) -> StoredReport:
    from infraops.config import TrivySettings, load
    from infraops.trivy.store import TrivyStore

    store = TrivyStore(load(TrivySettings), max_size=1, timeout=15)
    try:
        await store.check()
        return await store.report(
            severities=severities, new_only=new, references=references
        )
    finally:
        await store.aclose()


def _as_json(stored: StoredReport) -> str:
    import json

    return json.dumps(
        {
            "run_id": stored.run_id,
            "previous_run_id": stored.previous_run_id,
            "finished_at": stored.finished_at.isoformat()
            if stored.finished_at
            else None,
            "findings": [
                {
                    "image": row.reference,
                    "runs_in": row.uses,
                    "vulnerability_id": row.vulnerability_id,
                    "severity": row.severity,
                    "package": row.pkg_name,
                    "installed_version": row.installed_version,
                    "fixed_version": row.fixed_version,
                    "status": row.status,
                    "title": row.title,
                    "target": row.target,
                    "scanned_at": row.scanned_at.isoformat(),
                }
                for row in stored.rows
            ],
        },
        indent=2,
    )


def _print(stored: StoredReport, *, new: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if stored.run_id is None:
        typer.echo("no finished scan run yet", err=True)
        return
    what = "new findings" if new else "findings"
    since = (
        f" since run {stored.previous_run_id}"
        if new and stored.previous_run_id is not None
        else ""
    )
    table = Table(
        title=f"Run {stored.run_id}: {len(stored.rows)} {what}{since}",
        title_justify="left",
    )
    for column in ("severity", "CVE", "package", "installed", "fixed", "image"):
        table.add_column(column, overflow="fold")
    table.add_column("runs in", overflow="fold")
    for row in stored.rows:
        where = ", ".join(
            sorted({f"{u['namespace']}/{u['job']}/{u['task']}" for u in row.uses})
        )
        table.add_row(
            row.severity,
            row.vulnerability_id,
            row.pkg_name,
            row.installed_version,
            row.fixed_version or "",
            row.reference,
            where,
        )
    console.print(table)
