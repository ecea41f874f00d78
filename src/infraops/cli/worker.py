"""`infraops worker`: host one or more roles until told to stop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from infraops.cli._errors import fail, reports_errors

if TYPE_CHECKING:
    from infraops.config import TelemetrySettings, TemporalSettings
    from infraops.worker.roles import Role


@reports_errors
def worker(
    role: Annotated[
        list[str],
        typer.Option(
            "--role",
            metavar="ROLE",
            help="Role to host (backup, trivy or cleanup); repeat for several.",
        ),
    ],
) -> None:
    """Run a long-lived Temporal worker for the given roles."""
    from infraops.config import (
        Settings,
        TelemetrySettings,
        TemporalSettings,
        WorkerSettings,
        load,
    )
    from infraops.worker.roles import role_named

    try:
        roles = [role_named(name) for name in dict.fromkeys(role)]
    except KeyError as error:
        raise fail(str(error.args[0])) from None
    temporal = load(TemporalSettings)
    telemetry = load(TelemetrySettings)
    grace = load(WorkerSettings).worker_shutdown_grace
    for each in roles:
        for model in each.settings:
            settings = load(model)
            if isinstance(settings, Settings):
                settings.check()

    import asyncio

    asyncio.run(_serve(temporal, telemetry, roles, grace))


async def _serve(
    temporal: TemporalSettings,
    telemetry: TelemetrySettings,
    roles: list[Role],
    grace: float,
) -> None:
    from infraops.telemetry.logging import configure_logging
    from infraops.telemetry.runtime import build_runtime
    from infraops.telemetry.tracing import configure_tracing
    from infraops.temporal import connect
    from infraops.worker.run import serve

    configure_logging(telemetry.log_level)
    configure_tracing(telemetry, "infraops-worker")
    runtime = build_runtime(telemetry, serve_metrics=True)
    client = await connect(temporal, runtime)
    await serve(client, roles, grace)
