"""`infraops backup list|verify|restore-drill`: look after the backups."""

from __future__ import annotations

from typing import Annotated

import typer

from infraops.cli._errors import EXIT_OK, EXIT_PARTIAL, reports_errors

app = typer.Typer(
    help="List, verify and restore-drill the backups.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print only the result, as JSON, on stdout.")
]


@app.command("list")
@reports_errors
def list_runs(
    s3: Annotated[
        bool, typer.Option("--s3", help="List the S3 copies instead.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Runs with their status, size and age."""
    import json

    from infraops.backup.verify import list_local
    from infraops.config import BackupSettings, S3Settings, load

    if s3:
        rows = _list_s3(load(S3Settings))
        where = "S3"
    else:
        settings = load(BackupSettings)
        settings.check()
        rows = list_local(settings.backup_local_dir)
        where = str(settings.backup_local_dir)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console

    from infraops.cli._backup_view import runs_table

    Console().print(runs_table(rows, where))


def _list_s3(settings: object) -> list[dict[str, object]]:
    from infraops.backup.activities import _s3_runs
    from infraops.clients.s3 import S3Store
    from infraops.config import S3Settings
    from infraops.errors import ConfigError

    assert isinstance(settings, S3Settings)
    if not settings.enabled:
        raise ConfigError("S3_BUCKET: not set, so there is no S3 copy to list")
    store = S3Store(settings)
    runs, keys = _s3_runs(store)
    rows: list[dict[str, object]] = []
    for run in runs:
        manifest = run.manifest
        rows.append(
            {
                "run_id": run.run_id,
                "status": manifest.status.value if manifest else "uncommitted",
                "targets": [t.value for t in manifest.targets] if manifest else [],
                "size": sum(a.size for a in manifest.artifacts) if manifest else 0,
                "objects": len(keys[run.run_id]),
                "started_at": run.started.isoformat(),
            }
        )
    return rows


@app.command()
@reports_errors
def verify(
    run: Annotated[str, typer.Argument(metavar="RUN", help="The run id.")],
    as_json: JsonOption = False,
) -> None:
    """Re-read and re-check every artifact of a run against its manifest."""
    import json

    from infraops.backup.verify import verify_run
    from infraops.config import BackupSettings, load

    settings = load(BackupSettings)
    settings.check()
    checks = verify_run(settings.backup_local_dir, run)
    ok = all(check.ok for check in checks)
    if as_json:
        payload = {
            "run_id": run,
            "ok": ok,
            "checks": [c.__dict__ for c in checks],
        }
        typer.echo(json.dumps(payload, indent=2))
    else:
        for check in checks:
            mark = "ok  " if check.ok else "FAIL"
            typer.echo(f"{mark} {check.name}: {check.detail}")
        typer.echo(f"run {run}: {'verified' if ok else 'NOT verified'}")
    raise typer.Exit(EXIT_OK if ok else EXIT_PARTIAL)


@app.command("restore-drill")
@reports_errors
def restore_drill(
    database: Annotated[
        str, typer.Option("--database", metavar="NAME", help="The database to drill.")
    ],
    run: Annotated[
        str | None, typer.Option("--run", help="This run instead of the newest good.")
    ] = None,
    as_json: JsonOption = False,
    local_worker: Annotated[
        bool,
        typer.Option(
            "--local-worker",
            help="Host the backup worker in this process on a private task queue.",
        ),
    ] = False,
) -> None:
    """Restore the newest good dump into a scratch database, compare, drop."""
    import asyncio

    from infraops.backup.models import DrillConfig
    from infraops.cli._backup_view import DrillView
    from infraops.cli._input import build_config
    from infraops.cli._session import Launch, launch
    from infraops.worker.roles import BACKUP

    config = build_config(DrillConfig, None, {"database": database, "run_id": run})
    request = Launch(
        role=BACKUP,
        workflow=BACKUP.workflows[1],
        config=config,
        id_prefix="restore-drill",
        local_worker=local_worker,
        wait=True,
        as_json=as_json,
    )
    raise typer.Exit(asyncio.run(launch(request, DrillView())))
