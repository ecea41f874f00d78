"""A fresh Temporal namespace per test, so schedules (and --prune) never meet."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from infraops.cleanup.models import CleanupConfig
from infraops.cleanup.workflows import CleanupWorkflow
from infraops.worker.roles import Role, Workflow
from tests.lab.temporal import TemporalDevServer


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Space:
    """One namespace on the shared dev server, with a client and the CLI's env."""

    name: str
    client: Client
    env: dict[str, str]

    async def cli(self, *args: str, cwd: Path | None = None) -> Done:
        """`infraops ARGS` in a subprocess, without blocking the event loop."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "infraops",
            *args,
            env=self.env,
            cwd=cwd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return Done(process.returncode, out.decode(), err.decode())


@pytest.fixture
async def space(temporal_server: TemporalDevServer, temporal_client: Client) -> Space:
    name = f"sched-{uuid.uuid4().hex[:10]}"
    await temporal_client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=name,
            workflow_execution_retention_period=Duration(seconds=86400),
        )
    )
    client = await Client.connect(
        temporal_server.address,
        namespace=name,
        data_converter=pydantic_data_converter,
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TEMPORAL_", "OTEL_", "METRICS_", "INFRAOPS_"))
    } | {
        "TEMPORAL_ADDRESS": temporal_server.address,
        "TEMPORAL_NAMESPACE": name,
        "OTEL_SDK_DISABLED": "true",
    }
    return Space(name, client, env)


def stand_in_roles(queue: str) -> dict[str, Role]:
    """A registry whose only role serves Cleanup on `queue`."""
    role = Role(
        "cleanup",
        queue,
        [Workflow("Cleanup", CleanupWorkflow, CleanupConfig)],
        activities=lambda _: [],
        settings=[],
    )
    return {role.name: role}


def cleanup_declaration(schedule_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "id": schedule_id,
        "workflow": "Cleanup",
        "task_queue": "cleanup-task-queue",
        "cron": "0 5 * * *",
        "input": {"dry_run": False, "grace_days": 7},
        "catchup_window": "2h",
        "note": "stale per-job data directories",
    } | changes


def write_declarations(directory: Path, *documents: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for document in documents:
        (directory / f"{document['id']}.json").write_text(json.dumps(document))
    return directory
