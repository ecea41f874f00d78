"""The one Temporal runtime of a process: core logs and the /metrics endpoint."""

from __future__ import annotations

import logging

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from infraops.config import TelemetrySettings
from infraops.errors import ConfigError
from infraops.telemetry.logging import CORE_LOGGER


def build_runtime(settings: TelemetrySettings, *, serve_metrics: bool) -> Runtime:
    """A runtime forwarding core logs; with `serve_metrics`, Prometheus too.

    Domain metrics go through the same runtime's meter, so one `/metrics` on
    `METRICS_LISTEN` serves the SDK's `temporal_*` series and ours.
    """
    metrics = None
    if serve_metrics:
        metrics = PrometheusConfig(
            bind_address=settings.metrics_bind_address,
            counters_total_suffix=True,
            durations_as_seconds=True,
        )
    telemetry = TelemetryConfig(
        logging=LoggingConfig(
            filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
            forwarding=LogForwardingConfig(
                logger=logging.getLogger(CORE_LOGGER),
                append_target_to_name=False,
                prepend_target_on_message=False,
                append_log_fields_to_message=False,
            ),
        ),
        metrics=metrics,
        global_tags={"service": "infraops"},
    )

    try:
        return Runtime(telemetry=telemetry)
    except ValueError as error:
        raise ConfigError(
            f"METRICS_LISTEN: cannot serve metrics on {settings.metrics_listen}: "
            f"{error}"
        ) from None
