"""Traces exported over OTLP gRPC, never blocking the process that makes them.

The standard `OTEL_*` variables apply: `OTEL_SDK_DISABLED=true` or
`OTEL_TRACES_EXPORTER=none` turns export off, `OTEL_SERVICE_NAME` and
`OTEL_RESOURCE_ATTRIBUTES` shape the resource, and the exporter reads its own
timeout, headers and TLS settings.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from temporalio.contrib.opentelemetry import (
    OpenTelemetryPlugin,
    ReplaySafeTracerProvider,
    create_tracer_provider,
)

from infraops.config import TelemetrySettings

_provider: ReplaySafeTracerProvider | None = None


def configure_tracing(
    settings: TelemetrySettings, service: str, *, export: bool = True
) -> None:
    """Install a replay-safe global tracer provider exporting to the collector.

    The provider is installed even when export is off, because Temporal's
    tracing plugin insists on one.
    """
    global _provider
    if _provider is not None:
        return
    resource = Resource.create({"service.name": service})
    _provider = create_tracer_provider(resource=resource, shutdown_on_exit=False)
    if export and _enabled():
        _provider.add_span_processor(
            BatchSpanProcessor(_exporter(settings), export_timeout_millis=5000)
        )
    trace.set_tracer_provider(_provider)


def _exporter(settings: TelemetrySettings) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter,
    )

    endpoint = settings.otel_exporter_otlp_endpoint
    insecure = None
    if "://" not in endpoint and "OTEL_EXPORTER_OTLP_INSECURE" not in os.environ:
        insecure = True  # a bare host:port is an in-cluster collector
    return OTLPSpanExporter(endpoint=endpoint, insecure=insecure, timeout=5)


def tracing_plugins() -> list[OpenTelemetryPlugin]:
    """Client plugins that make one coherent trace per workflow run."""
    return [OpenTelemetryPlugin(add_temporal_spans=True)]


def flush_traces(timeout_seconds: float = 2.0) -> None:
    """Send what is buffered, giving up after `timeout_seconds`."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=int(timeout_seconds * 1000))


def _enabled() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower() != "none"
