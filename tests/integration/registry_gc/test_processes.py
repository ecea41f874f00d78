"""RegistryGC through real processes: a worker killed mid-GC, and the CLI."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from infraops.registry_gc.models import (
    REGISTRY_GC_WORKFLOW_ID,
    RegistryGCConfig,
    RegistryGCProgress,
    StepName,
    StepStatus,
)
from infraops.registry_gc.workflows import RegistryGCWorkflow
from tests.integration.registry_gc.conftest import lab_env
from tests.lab.nomad_sim import NomadSim
from tests.lab.registry_job import RegistryHost, RegistryJob
from tests.lab.temporal import TemporalDevServer

pytestmark = pytest.mark.lab


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "infraops", "worker", "--role", "cleanup"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while "polling cleanup-task-queue" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return process


@pytest.fixture
def env(
    registry_host: RegistryHost, sim: NomadSim, temporal_server: TemporalDevServer
) -> dict[str, str]:
    return lab_env(registry_host, sim, temporal_server)


async def _wait_step(
    client: Client, workflow_id: str, step: StepName, timeout: float = 30
) -> None:
    handle = client.get_workflow_handle(workflow_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            progress = await asyncio.wait_for(
                handle.query(
                    RegistryGCWorkflow.progress, result_type=RegistryGCProgress
                ),
                2,
            )
        except Exception:  # not started yet, or no worker answering for a moment
            await asyncio.sleep(0.1)
            continue
        if {s.name: s.status for s in progress.steps}[step] is StepStatus.RUNNING:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id} never reached {step}")


async def test_worker_killed_during_gc_resumes_and_restores(
    temporal_client: Client,
    registry_host: RegistryHost,
    registry: RegistryJob,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    registry_host.slow_gc(30)
    config = RegistryGCConfig.model_validate(registry_host.gc_config_fields())
    log = tmp_path / "worker.log"
    worker = _worker(env, log)
    handle = await temporal_client.start_workflow(
        RegistryGCWorkflow.run,
        config,
        id=f"registry-gc-kill-{time.monotonic_ns()}",
        task_queue="cleanup-task-queue",
        execution_timeout=timedelta(minutes=2),
    )
    try:
        await _wait_step(temporal_client, handle.id, StepName.GC)
        await asyncio.sleep(1.0)  # the GC is running on the node now
        assert registry_host.gc_running()
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        await asyncio.sleep(3.0)  # past the heartbeat timeout: GC declared lost
        assert registry.count() == 0  # nobody has brought it back yet
        worker = _worker(env, log)
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "RegistryGCFailed"
    assert "heartbeat" in cause.message
    assert "the registry is back" in cause.message
    assert await asyncio.to_thread(registry.wait_restored, 15)
    assert not registry_host.gc_running()


def _cli(
    env: dict[str, str], *args: str, config: dict[str, object]
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "infraops", "run", "registry-gc", "--input", "-", *args],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _fields(host: RegistryHost, **overrides: object) -> dict[str, object]:
    fields = host.gc_config_fields(**overrides)
    return {
        key: value.total_seconds() if isinstance(value, timedelta) else value
        for key, value in fields.items()
    }


async def test_cli_json_result_and_exit_code(
    registry_host: RegistryHost, registry: RegistryJob, env: dict[str, str]
) -> None:
    fields = _fields(registry_host)
    cli = _cli(
        env,
        "--local-worker",
        "--json",
        "--no-dry-run",
        "--keep-untagged",
        config=fields,
    )
    out, err = await asyncio.to_thread(cli.communicate, json.dumps(fields), 120)
    assert cli.returncode == 0, err
    result = json.loads(out)
    assert result["dry_run"] is False
    assert result["blobs_deleted"] == 3
    assert result["flags"] == []
    assert result["integrity"]["ok"] is True
    assert "started RegistryGC as registry-gc" in err
    assert await asyncio.to_thread(registry.wait_restored, 10)


async def test_cli_refuses_a_second_run(
    temporal_client: Client,
    registry_host: RegistryHost,
    registry: RegistryJob,
    env: dict[str, str],
) -> None:
    # A run that holds the fixed id but never gets a worker: it stays RUNNING.
    holder = await temporal_client.start_workflow(
        RegistryGCWorkflow.run,
        RegistryGCConfig(),
        id=REGISTRY_GC_WORKFLOW_ID,
        task_queue="nobody-polls-this-queue",
    )
    try:
        fields = _fields(registry_host)
        cli = _cli(env, "--local-worker", config=fields)
        _, err = await asyncio.to_thread(cli.communicate, json.dumps(fields), 60)
        assert cli.returncode == 1
        assert "already running as workflow registry-gc" in err
    finally:
        await holder.terminate("test cleanup")
    assert registry.count() == 1


async def test_cli_ctrl_c_cancels_and_follows_until_restored(
    temporal_client: Client,
    registry_host: RegistryHost,
    registry: RegistryJob,
    env: dict[str, str],
) -> None:
    registry_host.slow_gc(30)
    fields = _fields(registry_host)
    cli = _cli(env, "--local-worker", config=fields)
    assert cli.stdin is not None
    cli.stdin.write(json.dumps(fields))
    cli.stdin.close()
    await _wait_step(temporal_client, REGISTRY_GC_WORKFLOW_ID, StepName.GC)
    cli.send_signal(signal.SIGINT)
    code = await asyncio.to_thread(cli.wait, 60)
    err = cli.stderr.read() if cli.stderr else ""
    assert code == 1, err
    assert "cancelling registry-gc; following until it has stopped" in err
    assert "cancel" in err.lower()
    # By the time the CLI exits, the registry is back and GC is stopped.
    assert registry.count() == 1
    assert len(registry.running_allocs()) == 1
    assert registry_host.registry.running
    assert not registry_host.gc_running()
