"""The registry lab for the RegistryGC tests.

One registry node (real sshd, real `docker-registry` storage) per package; a
fresh NomadSim, registry job and in-process worker on a private task queue per
test. Configs use short timeouts and intervals so the whole fault matrix runs
in a few minutes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from infraops.clients.nomad import NomadClient
from infraops.clients.ssh import SSHClient
from infraops.config import NomadSettings, SSHSettings
from infraops.registry_gc.activities import RegistryGCActivities
from infraops.registry_gc.models import (
    RegistryGCConfig,
    RegistryGCProgress,
    RegistryGCResult,
    StepName,
    StepStatus,
)
from infraops.registry_gc.workflows import RegistryGCWorkflow
from tests.lab._proc import free_port
from tests.lab.nomad_sim import NomadSim
from tests.lab.registry import registry_available
from tests.lab.registry_job import RegistryHost, RegistryJob
from tests.lab.temporal import TemporalDevServer

TOKEN = "registry-gc-lab-token"

pytestmark = pytest.mark.lab


@pytest.fixture(scope="package")
def registry_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryHost]:
    if not registry_available():
        pytest.skip("docker-registry is not installed")
    host = RegistryHost(tmp_path_factory.mktemp("registry-gc"))
    try:
        yield host.start()
    finally:
        host.stop()


@pytest.fixture
def sim() -> Iterator[NomadSim]:
    with NomadSim(token=TOKEN, stop_delay=0.2, start_delay=0.2) as nomad:
        yield nomad


@pytest.fixture
def registry(registry_host: RegistryHost, sim: NomadSim) -> Iterator[RegistryJob]:
    registry_host.reset()
    job = RegistryJob(registry_host, sim)
    yield job
    sim.clear_faults()
    registry_host.registry.stop()


def ssh_settings(host: RegistryHost) -> SSHSettings:
    return SSHSettings(**{k.lower(): v for k, v in host.ssh.env().items()})


@dataclass
class GCLab:
    client: Client
    queue: str
    host: RegistryHost
    job: RegistryJob
    sim: NomadSim

    def config(self, **overrides: Any) -> RegistryGCConfig:
        return RegistryGCConfig.model_validate(self.host.gc_config_fields(**overrides))

    async def start(
        self, config: RegistryGCConfig | None = None, *, workflow_id: str | None = None
    ) -> WorkflowHandle[Any, RegistryGCResult]:
        return await self.client.start_workflow(
            RegistryGCWorkflow.run,
            config or self.config(),
            id=workflow_id or f"registry-gc-test-{uuid.uuid4().hex[:8]}",
            task_queue=self.queue,
            execution_timeout=timedelta(minutes=2),
        )

    async def progress(self, handle: WorkflowHandle[Any, Any]) -> RegistryGCProgress:
        return await handle.query(
            RegistryGCWorkflow.progress, result_type=RegistryGCProgress
        )

    async def wait_step(
        self,
        handle: WorkflowHandle[Any, Any],
        step: StepName,
        status: StepStatus = StepStatus.RUNNING,
        timeout: float = 20.0,
    ) -> RegistryGCProgress:
        import asyncio

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            progress = await self.progress(handle)
            current = {s.name: s.status for s in progress.steps}
            if current[step] == status:
                return progress
            await asyncio.sleep(0.05)
        raise AssertionError(f"step {step} never became {status}: {progress}")


def activities_for(nomad: NomadClient, ssh: SSHClient) -> list[Any]:
    gc = RegistryGCActivities(nomad, ssh)
    return [
        gc.find_node,
        gc.probe,
        gc.measure,
        gc.scale,
        gc.wait_drained,
        gc.run_gc,
        gc.restore,
        gc.check_integrity,
    ]


@pytest.fixture
async def gc_lab(
    temporal_client: Client,
    registry_host: RegistryHost,
    registry: RegistryJob,
    sim: NomadSim,
) -> AsyncIterator[GCLab]:
    nomad = NomadClient(NomadSettings(nomad_addr=sim.url, nomad_token=TOKEN))
    ssh = SSHClient(ssh_settings(registry_host))
    queue = f"registry-gc-{uuid.uuid4().hex[:8]}"
    worker = Worker(
        temporal_client,
        task_queue=queue,
        workflows=[RegistryGCWorkflow],
        activities=activities_for(nomad, ssh),
        max_heartbeat_throttle_interval=timedelta(seconds=1),
        default_heartbeat_throttle_interval=timedelta(seconds=1),
        graceful_shutdown_timeout=timedelta(seconds=2),
    )
    try:
        async with worker:
            yield GCLab(temporal_client, queue, registry_host, registry, sim)
    finally:
        await ssh.aclose()
        await nomad.aclose()


def lab_env(
    host: RegistryHost, sim: NomadSim, temporal: TemporalDevServer
) -> dict[str, str]:
    """The environment of an infraops process (worker, CLI) using this lab."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("NOMAD_", "SSH_", "TEMPORAL_", "OTEL_", "METRICS_"))
    }
    return env | {
        "TEMPORAL_ADDRESS": temporal.address,
        "TEMPORAL_NAMESPACE": "default",
        "NOMAD_ADDR": sim.url,
        "NOMAD_TOKEN": TOKEN,
        "OTEL_TRACES_EXPORTER": "none",
        "METRICS_LISTEN": f"127.0.0.1:{free_port()}",
        "WORKER_SHUTDOWN_GRACE": "1",
        **host.ssh.env(),
    }
