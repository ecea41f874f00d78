"""`infraops run WORKFLOW`: start one workflow by hand and follow it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infraops.cli._errors import reports_errors

app = typer.Typer(
    help="Start one workflow by hand and show its progress.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

InputOption = Annotated[
    str | None,
    typer.Option(
        "--input",
        metavar="FILE",
        help="The workflow's config as JSON (a file, or - for stdin); "
        "options given here override its fields.",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print only the result, as JSON, on stdout.")
]
LocalWorkerOption = Annotated[
    bool,
    typer.Option(
        "--local-worker",
        help="Host the role's worker in this process on a private task queue.",
    ),
]
WaitOption = Annotated[
    bool, typer.Option("--wait/--no-wait", help="Follow the workflow to its end.")
]


@app.command()
@reports_errors
def cleanup(
    dry_run: Annotated[
        bool | None,
        typer.Option("--dry-run/--no-dry-run", help="Only report (default) or delete."),
    ] = None,
    grace_days: Annotated[
        float | None, typer.Option(help="Keep directories modified this recently.")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Nomad's data directory on the nodes.")
    ] = None,
    docker_prune: Annotated[
        bool | None,
        typer.Option("--docker-prune", help="Also prune dangling Docker images."),
    ] = None,
    node: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help="Only this node; repeat for several."),
    ] = None,
    input_file: InputOption = None,
    as_json: JsonOption = False,
    local_worker: LocalWorkerOption = False,
    wait: WaitOption = True,
) -> None:
    """Remove stale per-job data directories on client nodes."""
    from infraops.cli._cleanup_view import CleanupView
    from infraops.cli._session import run_by_hand
    from infraops.worker.roles import CLEANUP

    overrides = {
        "dry_run": dry_run,
        "grace_days": grace_days,
        "data_dir": str(data_dir) if data_dir is not None else None,
        "docker_prune": docker_prune,
        "nodes": node or None,
    }
    raise typer.Exit(
        run_by_hand(
            CLEANUP,
            "Cleanup",
            CleanupView(),
            input_file,
            overrides,
            as_json=as_json,
            local_worker=local_worker,
            wait=wait,
        )
    )


@app.command("registry-gc")
@reports_errors
def registry_gc(
    dry_run: Annotated[
        bool | None,
        typer.Option("--dry-run/--no-dry-run", help="Only report (default) or delete."),
    ] = None,
    delete_untagged: Annotated[
        bool | None,
        typer.Option(
            "--delete-untagged/--keep-untagged",
            help="Also delete untagged manifests (refused on distribution 2.x).",
        ),
    ] = None,
    job: Annotated[
        str | None, typer.Option(metavar="NAME", help="The registry's Nomad job.")
    ] = None,
    data_dir: Annotated[
        str | None,
        typer.Option(metavar="PATH", help="Registry storage on the registry host."),
    ] = None,
    input_file: InputOption = None,
    as_json: JsonOption = False,
    local_worker: LocalWorkerOption = False,
    wait: WaitOption = True,
) -> None:
    """Garbage-collect the registry with it stopped; Ctrl-C brings it back first."""
    from infraops.cli._registry_gc_view import RegistryGCView
    from infraops.cli._session import run_by_hand
    from infraops.registry_gc.models import REGISTRY_GC_WORKFLOW_ID
    from infraops.worker.roles import CLEANUP

    overrides = {
        "dry_run": dry_run,
        "delete_untagged": delete_untagged,
        "job_name": job,
        "registry_data_dir": data_dir,
    }
    raise typer.Exit(
        run_by_hand(
            CLEANUP,
            "RegistryGC",
            RegistryGCView(),
            input_file,
            overrides,
            as_json=as_json,
            local_worker=local_worker,
            wait=wait,
            # One id for every run refuses a second; Ctrl-C cancels, and the
            # view follows until the compensation has brought the registry back.
            workflow_id=REGISTRY_GC_WORKFLOW_ID,
            cancel_on_interrupt=True,
        )
    )


@app.command()
@reports_errors
def scan(
    concurrency: Annotated[
        int | None, typer.Option(help="Images scanned at the same time (default 4).")
    ] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option(metavar="NS", help="Only this namespace; repeat for several."),
    ] = None,
    input_file: InputOption = None,
    as_json: JsonOption = False,
    local_worker: LocalWorkerOption = False,
    wait: WaitOption = True,
) -> None:
    """Scan every running image with Trivy and store the findings."""
    from infraops.cli._scan_view import ScanView
    from infraops.cli._session import run_by_hand
    from infraops.worker.roles import TRIVY

    raise typer.Exit(
        run_by_hand(
            TRIVY,
            "Scan",
            ScanView(),
            input_file,
            {"scan_concurrency": concurrency, "namespaces": namespace or None},
            as_json=as_json,
            local_worker=local_worker,
            wait=wait,
        )
    )


@app.command()
@reports_errors
def backup(
    only: Annotated[
        str | None,
        typer.Option(metavar="TARGETS", help="Comma-separated: nomad,consul,postgres."),
    ] = None,
    database: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help="Only this database; repeat for several."),
    ] = None,
    input_file: InputOption = None,
    as_json: JsonOption = False,
    local_worker: LocalWorkerOption = False,
    wait: WaitOption = True,
) -> None:
    """Back up Nomad, Consul and PostgreSQL, verified, locally and to S3."""
    from infraops.cli._backup_view import BackupView
    from infraops.cli._session import run_by_hand
    from infraops.worker.roles import BACKUP

    raise typer.Exit(
        run_by_hand(
            BACKUP,
            "Backup",
            BackupView(),
            input_file,
            {
                "targets": [t.strip() for t in only.split(",")] if only else None,
                "databases": database or None,
            },
            as_json=as_json,
            local_worker=local_worker,
            wait=wait,
        )
    )
