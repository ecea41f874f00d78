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
    from infraops.cleanup.models import CleanupConfig
    from infraops.cli._cleanup_view import CleanupView
    from infraops.cli._input import build_config
    from infraops.cli._session import Launch, launch
    from infraops.worker.roles import CLEANUP

    config = build_config(
        CleanupConfig,
        input_file,
        {
            "dry_run": dry_run,
            "grace_days": grace_days,
            "data_dir": str(data_dir) if data_dir is not None else None,
            "docker_prune": docker_prune,
            "nodes": node or None,
        },
    )
    request = Launch(
        role=CLEANUP,
        workflow=CLEANUP.workflows[0],
        config=config,
        id_prefix="cleanup",
        local_worker=local_worker,
        wait=wait,
        as_json=as_json,
    )
    import asyncio

    raise typer.Exit(asyncio.run(launch(request, CleanupView())))
