"""Connecting to Temporal the same way from the worker and the CLI."""

from __future__ import annotations

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from infraops.config import TemporalSettings
from infraops.errors import ConfigError
from infraops.telemetry.tracing import tracing_plugins


async def connect(settings: TemporalSettings, runtime: Runtime) -> Client:
    """A client with the pydantic converter and tracing plugin installed."""
    try:
        client = await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            runtime=runtime,
            data_converter=pydantic_data_converter,
            plugins=tracing_plugins(),
        )
    except (RuntimeError, RPCError, ValueError) as error:
        raise ConfigError(
            f"TEMPORAL_ADDRESS: cannot reach Temporal at {settings.temporal_address} "
            f"(namespace {settings.temporal_namespace}): {error}"
        ) from None
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=settings.temporal_namespace)
        )
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            raise ConfigError(
                f"TEMPORAL_NAMESPACE: no namespace {settings.temporal_namespace!r} "
                f"on {settings.temporal_address}; create it or fix the name"
            ) from None
        raise ConfigError(
            f"TEMPORAL_ADDRESS: Temporal at {settings.temporal_address} did not "
            f"answer: {error.message}"
        ) from None

    return client
