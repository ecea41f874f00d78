"""The Scan workflow end to end: real Temporal, PostgreSQL, Nomad simulator, stub."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from infraops.config import TrivySettings
from infraops.trivy.models import FailureKind, ScanConfig, ScanResult, SkipReason
from infraops.trivy.store import connection_kwargs
from infraops.worker.roles import TRIVY
from infraops.worker.run import hosted
from tests.integration.trivy.conftest import OWN, SHARED
from tests.lab.nomad_sim import GroupSpec, NomadSim, TaskSpec
from tests.lab.role_env import settings_env
from tests.lab.trivy_server import TrivyServerStub

pytestmark = pytest.mark.lab

NOMAD_TOKEN = "lab-nomad-token-0b7d"
REDIS_DIGEST = "sha256:" + "5d" * 32
NGINX = "docker.io/library/nginx:latest"
APP = "registry.lab:5000/team/app:1.4"
REDIS = f"docker.io/library/redis@{REDIS_DIGEST}"
FLAKY = "docker.io/library/flaky:1"
GHOST = "docker.io/library/ghost:1"
BROKEN = "docker.io/library/broken:1"
BIG = "docker.io/ubuntu/big:1"
BOM = "docker.io/library/bom:1"


def task(name: str, image: str | None, driver: str = "docker") -> TaskSpec:
    config: dict[str, Any] = (
        {"image": image} if image is not None else {"command": "/bin/true"}
    )
    return TaskSpec(name, driver=driver, config=config)


def build_fleet(sim: NomadSim) -> None:
    n1 = sim.add_node("node-1", "10.0.0.1", drivers=("docker", "podman", "exec"))
    n2 = sim.add_node("node-2", "10.0.0.2", drivers=("docker", "podman", "exec"))
    jobs: list[tuple[str, str, list[TaskSpec]]] = [
        (
            "web",
            "default",
            [task("nginx", "nginx"), task("sidecar", "docker.io/library/nginx:latest")],
        ),
        ("api", "apps", [task("app", APP, "podman"), task("helper", None, "exec")]),
        (
            "cache",
            "default",
            [task("redis", f"docker://redis@{REDIS_DIGEST}", "podman")],
        ),
        ("templated", "default", [task("t", "registry.lab:5000/${NOMAD_META_name}:1")]),
        ("flaky", "default", [task("f", "flaky:1")]),
        ("ghost", "apps", [task("g", "index.docker.io/library/ghost:1")]),
        ("broken", "default", [task("b", "broken:1")]),
        ("big", "default", [task("big", "ubuntu/big:1")]),
        ("bom", "default", [task("bom", "bom:1")]),
    ]
    for job, namespace, tasks in jobs:
        sim.add_job(
            job, namespace=namespace, groups=[GroupSpec(job, count=2, tasks=tasks)]
        )
        sim.add_alloc(job, job, n1, namespace=namespace)
        sim.add_alloc(job, job, n2, namespace=namespace)
    sim.add_job("old", groups=[GroupSpec("old", tasks=[task("o", "old:1")])])
    sim.add_alloc("old", "old", n1, client_status="complete", desired_status="stop")


def plan_images(server: TrivyServerStub) -> None:
    server.plan(NGINX, "ok", report=OWN / "redis-alpine-clean.json")
    server.plan(APP, "ok", report=OWN / "app-1.4-debian-java.json")
    server.plan(REDIS, "ok", report=OWN / "redis-alpine-clean.json")
    server.plan(FLAKY, ["reset", "ok"], report=OWN / "busybox-no-results.json")
    server.plan(GHOST, "not_found")
    server.plan(BROKEN, "invalid_output", report=OWN / "app-1.4-debian-java.json")
    shared = SHARED if SHARED.is_dir() else None
    server.plan(
        BIG,
        "ok",
        report=(shared or OWN)
        / ("ubuntu-java-large.json" if shared else "app-1.5-debian-java-python.json"),
    )
    server.plan(
        BOM,
        "ok",
        report=(shared or OWN)
        / ("debian12-python-bom-crlf.json" if shared else "app-1.4-debian-java.json"),
    )


@dataclass
class Lab:
    client: Client
    queue: str
    sim: NomadSim
    server: TrivyServerStub
    settings: TrivySettings

    async def scan(self, config: ScanConfig | None = None) -> ScanResult:
        return await self.client.execute_workflow(
            "Scan",
            config or ScanConfig(scan_concurrency=4),
            id=f"scan-test-{uuid.uuid4().hex[:8]}",
            task_queue=self.queue,
            result_type=ScanResult,
            execution_timeout=timedelta(minutes=3),
        )

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(
            **connection_kwargs(self.settings)
        ) as conn:
            cursor = await conn.execute(sql.encode(), params)
            return await cursor.fetchall()


@pytest.fixture
def sim() -> Iterator[NomadSim]:
    with NomadSim(token=NOMAD_TOKEN) as sim:
        build_fleet(sim)
        yield sim


def worker_env(
    monkeypatch: pytest.MonkeyPatch, sim: NomadSim, settings: TrivySettings
) -> None:
    for name in [n for n in os.environ if n.startswith(("TRIVY_", "DB_", "NOMAD_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("NOMAD_ADDR", sim.url)
    monkeypatch.setenv("NOMAD_TOKEN", NOMAD_TOKEN)
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def lab(
    temporal_client: Client,
    sim: NomadSim,
    trivy_server: TrivyServerStub,
    settings: TrivySettings,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Lab]:
    plan_images(trivy_server)
    worker_env(monkeypatch, sim, settings)
    queue = f"trivy-test-{uuid.uuid4().hex[:8]}"
    async with hosted(temporal_client, [TRIVY], task_queue=queue):
        yield Lab(temporal_client, queue, sim, trivy_server, settings)


async def test_scan_end_to_end(lab: Lab) -> None:
    result = await lab.scan()

    failed = {f.reference: (f.kind, f.reason) for f in result.failed}
    assert failed == {
        GHOST: (FailureKind.PERMANENT, "manifest-unknown"),
        BROKEN: (FailureKind.PERMANENT, "invalid-output"),
    }
    assert [(s.reference, s.reason) for s in result.skipped] == [
        ("registry.lab:5000/${NOMAD_META_name}:1", SkipReason.UNRESOLVED)
    ]
    assert result.images_found == 9 and result.images_scanned == 6
    # Transient retried then succeeding; permanent ones tried once.
    assert lab.server.attempts(FLAKY) == 2
    assert lab.server.attempts(GHOST) == 1 and lab.server.attempts(BROKEN) == 1
    assert lab.server.attempts("docker.io/library/old:1") == 0
    assert result.previous_run_id is None

    scanned = await lab.rows(
        "SELECT reference, findings FROM scans WHERE run_id = %s ORDER BY 1",
        result.run_id,
    )
    big = 144 if SHARED.is_dir() else 6
    bom = 34 if SHARED.is_dir() else 8
    assert scanned == sorted(
        [(APP, 8), (BIG, big), (BOM, bom), (FLAKY, 0), (NGINX, 0), (REDIS, 0)]
    )
    total = await lab.rows("SELECT count(*) FROM findings")
    assert total == [(8 + big + bom,)]
    assert sum(result.findings_by_severity.values()) == 8 + big + bom
    errors = await lab.rows(
        "SELECT reference, kind, reason FROM scan_errors ORDER BY 1"
    )
    assert errors == [
        (BROKEN, "permanent", "invalid-output"),
        (GHOST, "permanent", "manifest-unknown"),
    ]
    uses = await lab.rows("SELECT uses FROM run_images WHERE reference = %s", NGINX)
    assert {(u["task"], u["written"]) for u in uses[0][0]} == {
        ("nginx", "nginx"),
        ("sidecar", "docker.io/library/nginx:latest"),
    }
    status = await lab.rows("SELECT status FROM scan_runs")
    assert status == [("partial",)]


async def test_second_run_reports_new_cves_and_skips_recent(lab: Lab) -> None:
    config = ScanConfig(namespaces=["apps"], scan_concurrency=2)
    first = await lab.scan(config)
    assert first.images_scanned == 1  # the app; ghost fails
    lab.server.plan(APP, "ok", report=OWN / "app-1.5-debian-java-python.json")

    second = await lab.scan(config)

    assert second.previous_run_id == first.run_id
    assert second.new_cves == ["CVE-2024-6345"]
    third = await lab.scan(
        config.model_copy(update={"rescan_after": timedelta(hours=1)})
    )
    assert [(s.reference, s.reason) for s in third.skipped] == [
        (APP, SkipReason.RECENT)
    ]
    assert lab.server.attempts(APP) == 2
    assert third.new_cves == [] and third.findings_by_severity


async def test_bad_token_fails_the_workflow_once(
    temporal_client: Client,
    sim: NomadSim,
    trivy_server: TrivyServerStub,
    settings: TrivySettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan_images(trivy_server)
    wrong = settings.model_copy(update={"trivy_token": SecretStr("not-the-token")})
    worker_env(monkeypatch, sim, wrong)
    queue = f"trivy-test-{uuid.uuid4().hex[:8]}"
    async with hosted(temporal_client, [TRIVY], task_queue=queue):
        lab = Lab(temporal_client, queue, sim, trivy_server, settings)
        with pytest.raises(WorkflowFailureError) as caught:
            await lab.scan(ScanConfig(scan_concurrency=2))

    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "TrivyConfigFault"
    assert "bad-server-token" in cause.message
    assert "not-the-token" not in cause.message
    # Not once per image: at most the scans already running when it was found.
    server_calls = [c for c in trivy_server.invocations if c.outcome == "ok"]
    assert len(server_calls) <= 2
    status = await lab.rows("SELECT status, error IS NOT NULL FROM scan_runs")
    assert status == [("failed", True)]
    errors = await lab.rows("SELECT count(*) FROM scan_errors WHERE kind = 'config'")
    assert errors == [(1,)]


async def test_wrong_server_url_fails_before_any_image(
    temporal_client: Client,
    sim: NomadSim,
    trivy_server: TrivyServerStub,
    settings: TrivySettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = settings.model_copy(update={"trivy_server_addr": sim.url})
    worker_env(monkeypatch, sim, wrong)
    queue = f"trivy-test-{uuid.uuid4().hex[:8]}"
    async with hosted(temporal_client, [TRIVY], task_queue=queue):
        lab = Lab(temporal_client, queue, sim, trivy_server, settings)
        with pytest.raises(WorkflowFailureError) as caught:
            await lab.scan()

    assert "TRIVY_SERVER_ADDR" in str(caught.value.cause.cause)  # type: ignore[union-attr]
    assert trivy_server.invocations == []


async def test_cancel_kills_the_running_cli(lab: Lab) -> None:
    for image in (NGINX, APP, REDIS, FLAKY, GHOST, BROKEN, BIG, BOM):
        lab.server.plan(image, "slow")
    handle = await lab.client.start_workflow(
        "Scan",
        ScanConfig(scan_concurrency=2, scan_heartbeat_timeout=timedelta(seconds=2)),
        id=f"scan-cancel-{uuid.uuid4().hex[:8]}",
        task_queue=lab.queue,
        result_type=ScanResult,
    )
    for _ in range(200):
        if len(lab.server.invocations) >= 2:
            break
        await asyncio.sleep(0.05)
    pids = [c.pid for c in lab.server.invocations]
    assert len(pids) == 2

    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()

    # The activity learns of the cancel at its next heartbeat, then kills the CLI.
    deadline = asyncio.get_running_loop().time() + 10
    while any(_alive(pid) for pid in pids):
        assert asyncio.get_running_loop().time() < deadline, (
            "the CLI outlived the cancel"
        )
        await asyncio.sleep(0.1)
    status = await lab.rows("SELECT status, error FROM scan_runs")
    assert status == [("failed", "cancelled")]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
