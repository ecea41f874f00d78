"""The `infraops` command line: thin wiring over the command groups.

Heavy imports (temporalio, rich, pydantic) happen inside the commands, so
`infraops --help` stays quick.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from infraops.cli import backup as backup_commands
from infraops.cli import config as config_commands
from infraops.cli import run as run_commands
from infraops.cli import schedules as schedules_commands
from infraops.cli import trivy as trivy_commands
from infraops.cli.worker import worker

app = typer.Typer(
    name="infraops",
    help="Routine operations of a Nomad fleet as durable Temporal workflows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
app.command()(worker)
app.add_typer(run_commands.app, name="run")
app.add_typer(schedules_commands.app, name="schedules")
app.add_typer(config_commands.app, name="config")
app.add_typer(backup_commands.app, name="backup")
app.add_typer(trivy_commands.app, name="trivy")


def _print_version(value: bool) -> None:
    if value:
        version()
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Routine operations of a Nomad fleet as durable Temporal workflows."""


@app.command()
def version() -> None:
    """Print the version of infraops."""
    from importlib.metadata import version as installed

    typer.echo(installed("infraops"))


def main() -> None:
    """Run the CLI and leave through os._exit, flushing first.

    A process that used the Temporal client can crash while the interpreter
    finalises (temporalio/sdk-python#300), which would turn a success into
    exit 134; leaving with os._exit keeps the exit code honest.
    """
    code = 1
    try:
        app()
        code = 0
    except SystemExit as exit_:
        code = (
            exit_.code
            if isinstance(exit_.code, int)
            else (0 if exit_.code is None else 1)
        )
    except KeyboardInterrupt:
        code = 130
    except Exception:
        # A bug, not an operator error: show where, never local variables.
        import traceback

        from infraops.errors import redact_urls

        print(redact_urls(traceback.format_exc()), file=sys.stderr, end="")
        code = 1
    finally:
        _finish(code)


def _finish(code: int) -> None:
    if "infraops.telemetry.tracing" in sys.modules:
        sys.modules["infraops.telemetry.tracing"].flush_traces()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
