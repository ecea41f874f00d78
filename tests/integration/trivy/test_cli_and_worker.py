"""`infraops run scan`, `infraops trivy report` and a real worker process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from temporalio.client import Client

from infraops.config import TrivySettings
from infraops.trivy.models import ScanConfig, ScanResult
from infraops.trivy.store import connection_kwargs
from tests.integration.trivy.conftest import DB_PASSWORD, TRIVY_TOKEN
from tests.integration.trivy.test_scan_workflow import (
    APP,
    NOMAD_TOKEN,
    build_fleet,
    plan_images,
)
from tests.lab._proc import free_port
from tests.lab.nomad_sim import NomadSim
from tests.lab.role_env import settings_env
from tests.lab.temporal import TemporalDevServer
from tests.lab.trivy_server import TrivyServerStub

pytestmark = pytest.mark.lab
SECRETS = (TRIVY_TOKEN, DB_PASSWORD, NOMAD_TOKEN)


@pytest.fixture
def env(
    temporal_server: TemporalDevServer,
    trivy_server: TrivyServerStub,
    settings: TrivySettings,
) -> Iterator[dict[str, str]]:
    with NomadSim(token=NOMAD_TOKEN) as sim:
        build_fleet(sim)
        plan_images(trivy_server)
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(
                ("NOMAD_", "TRIVY_", "DB_", "TEMPORAL_", "OTEL_", "METRICS_")
            )
        }
        yield (
            base
            | settings_env(settings)
            | {
                "NOMAD_ADDR": sim.url,
                "NOMAD_TOKEN": NOMAD_TOKEN,
                "TEMPORAL_ADDRESS": temporal_server.address,
                "METRICS_LISTEN": f"127.0.0.1:{free_port()}",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"127.0.0.1:{free_port()}",
            }
        )


def infraops(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infraops", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_run_scan_then_report(env: dict[str, str]) -> None:
    run = infraops(
        "run", "scan", "--local-worker", "--json", "--concurrency", "3", env=env
    )

    assert run.returncode == 3, run.stderr  # partial: two images failed
    result = ScanResult.model_validate_json(run.stdout)
    assert result.images_scanned == 6 and len(result.failed) == 2
    no_secrets(run.stdout, run.stderr)

    report = infraops(
        "trivy", "report", "--json", "--severity", "high,critical", env=env
    )

    assert report.returncode == 0, report.stderr
    document = json.loads(report.stdout)
    assert document["run_id"] == result.run_id
    assert {f["severity"] for f in document["findings"]} == {"HIGH", "CRITICAL"}
    app = [f for f in document["findings"] if f["image"] == APP]
    assert app and app[0]["runs_in"][0]["namespace"] == "apps"
    no_secrets(report.stdout, report.stderr)

    only = infraops(
        "trivy",
        "report",
        "--json",
        "--image",
        "registry.lab:5000/team/app:1.4",
        env=env,
    )
    assert {f["image"] for f in json.loads(only.stdout)["findings"]} == {APP}

    new = infraops("trivy", "report", "--new", env=env)
    assert new.returncode == 0 and "new findings" in new.stdout


def test_report_with_a_wrong_password_names_the_variable(env: dict[str, str]) -> None:
    bad = env | {"TRIVY_DB_PASSWORD": "wrong-pw-4411"}

    done = infraops("trivy", "report", env=bad)

    assert done.returncode == 2
    assert "TRIVY_DB_PASSWORD" in done.stderr
    assert "wrong-pw-4411" not in done.stdout + done.stderr
    assert "password authentication failed" in done.stderr


def test_config_show_redacts(env: dict[str, str]) -> None:
    done = infraops("config", "show", "--role", "trivy", "--json", env=env)

    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["TRIVY_TOKEN"] == shown["TRIVY_DB_PASSWORD"] == "[redacted]"
    no_secrets(done.stdout, done.stderr)


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-m", "infraops", "worker", "--role", "trivy"],
            env=env | {"METRICS_LISTEN": f"127.0.0.1:{free_port()}"},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while "polling trivy-task-queue" not in log.read_text(errors="replace"):
        assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return worker


async def test_worker_killed_between_images_leaves_the_db_consistent(
    env: dict[str, str],
    temporal_client: Client,
    trivy_server: TrivyServerStub,
    settings: TrivySettings,
    tmp_path: Path,
) -> None:
    trivy_server.latency = 0.4
    queue_env = env | {"TRIVY_TIMEOUT": "30"}
    log = tmp_path / "worker.log"
    first = start_worker(queue_env, log)
    handle = await temporal_client.start_workflow(
        "Scan",
        ScanConfig(scan_concurrency=2, scan_heartbeat_timeout=timedelta(seconds=2)),
        id=f"scan-crash-{uuid.uuid4().hex[:8]}",
        task_queue="trivy-task-queue",
        result_type=ScanResult,
        execution_timeout=timedelta(minutes=3),
    )
    async with await psycopg.AsyncConnection.connect(
        **connection_kwargs(settings), autocommit=True
    ) as conn:
        deadline = time.monotonic() + 60
        while True:
            rows = await (await conn.execute("SELECT count(*) FROM scans")).fetchone()
            if rows and rows[0] >= 2:
                break
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = start_worker(queue_env, log)
        try:
            result = await handle.result()
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)

        counts = await (
            await conn.execute(
                "SELECT s.reference, s.findings, count(f.*) FROM scans s"
                " LEFT JOIN findings f ON f.scan_id = s.id GROUP BY 1, 2"
            )
        ).fetchall()
        images = await (
            await conn.execute(
                "SELECT status, count(*) FROM run_images GROUP BY 1 ORDER BY 1"
            )
        ).fetchall()
    assert result.images_scanned == 6 and len(result.failed) == 2
    assert all(stored == written for _, stored, written in counts)
    assert len(counts) == len({ref for ref, _, _ in counts}) == 6
    assert dict(images) == {"failed": 2, "scanned": 6, "skipped": 1}
