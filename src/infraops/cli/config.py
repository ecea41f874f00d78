"""`infraops config show`: the settings a role would run with."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer

from infraops.cli._errors import fail, reports_errors

app = typer.Typer(
    help="Inspect configuration.", no_args_is_help=True, rich_markup_mode=None
)

REDACTED = "[redacted]"


@app.command()
@reports_errors
def show(
    role: Annotated[
        str,
        typer.Option(
            "--role", metavar="ROLE", help="backup, trivy or cleanup: whose settings."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the effective settings of a role, secrets redacted."""
    from pydantic_settings import BaseSettings

    from infraops.config import (
        TelemetrySettings,
        TemporalSettings,
        WorkerSettings,
        load,
    )
    from infraops.worker.roles import role_named

    try:
        models: list[type[BaseSettings]] = [
            TemporalSettings,
            TelemetrySettings,
            WorkerSettings,
        ]
        models += list(role_named(role).settings)
    except KeyError as error:
        raise fail(str(error.args[0])) from None
    rows = [row for model in models for row in _rows(load(model))]
    if as_json:
        typer.echo(json.dumps({name: value for name, value, _ in rows}, indent=2))
        return
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:
        typer.echo(
            f"{name:<{width}}  {value if value is not None else '(unset)'}  [{source}]"
        )


def _rows(settings: Any) -> list[tuple[str, str | None, str]]:
    from pydantic import SecretStr

    from infraops.errors import redact_urls

    rows = []
    for field, info in type(settings).model_fields.items():
        variable = (info.alias or field).upper()
        value = getattr(settings, field)
        if isinstance(value, SecretStr):
            shown: str | None = REDACTED
        elif value is None:
            shown = None
        else:
            shown = redact_urls(str(value))
        source = "environment" if variable in _environment() else "default"
        rows.append((variable, shown, source))

    return rows


def _environment() -> set[str]:
    return {name.upper() for name in os.environ}
