"""Connecting to Temporal the same way from the worker and the CLI."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import RPCError

from infraops.config import TemporalSettings
from infraops.errors import ConfigError
from infraops.telemetry.tracing import tracing_plugins


async def connect(settings: TemporalSettings, runtime: Runtime) -> Client:
    """A client with the pydantic converter and tracing plugin installed."""
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            runtime=runtime,
            data_converter=pydantic_data_converter,
            plugins=tracing_plugins(),
        )
    except (RuntimeError, RPCError) as error:
        raise ConfigError(
            f"TEMPORAL_ADDRESS: cannot reach Temporal at {settings.temporal_address} "
            f"(namespace {settings.temporal_namespace}): {error}"
        ) from None
