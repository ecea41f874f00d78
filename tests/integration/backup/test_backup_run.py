"""The Backup workflow end to end on the real Temporal dev server, a real
PostgreSQL cluster, moto's S3 over HTTP and the snapshot simulators."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from temporalio.client import Client, WorkflowFailureError

from infraops.backup import processes
from infraops.backup.models import (
    BackupConfig,
    BackupResult,
    DrillConfig,
    DrillResult,
    Kind,
    Manifest,
    RunStatus,
    Target,
)
from infraops.backup.naming import database_of
from infraops.backup.verify import verify_run
from tests.integration.backup.conftest import (
    AWKWARD,
    CONSUL_TOKEN,
    NOMAD_TOKEN,
    RO_PASSWORD,
    Lab,
)
from tests.lab.nomad_sim.snapshot import snapshot_state
from tests.lab.s3_quota import SECRET_KEY

pytestmark = pytest.mark.lab


async def run_backup(
    worker: tuple[Client, str], config: BackupConfig | None = None
) -> BackupResult:
    client, queue = worker
    return await client.execute_workflow(
        "Backup",
        config or BackupConfig(),
        id=f"backup-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        result_type=BackupResult,
    )


def local_manifest(lab: Lab, run_id: str) -> Manifest:
    return Manifest.model_validate_json(
        (lab.local / run_id / "manifest.json").read_bytes()
    )


async def test_full_run_is_good_verified_restorable_and_keeps_secrets(
    backup_worker: tuple[Client, str],
    lab: Lab,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[tuple[list[str], dict[str, str]]] = []
    real_run = processes.run

    async def recording_run(argv: Any, env: Any, **kwargs: Any) -> Any:
        seen.append((list(argv), dict(env)))
        return await real_run(argv, env, **kwargs)

    monkeypatch.setattr(processes, "run", recording_run)
    caplog.set_level(logging.DEBUG)

    result = await run_backup(backup_worker)

    assert result.status is RunStatus.GOOD, result.manifest.errors
    manifest = local_manifest(lab, result.run_id)
    assert manifest == result.manifest.model_copy(
        update={"warnings": manifest.warnings}
    )
    dumps = {a.database: a for a in manifest.artifacts if a.kind is Kind.PG_DATABASE}
    expected = {*AWKWARD, "big", "locked", "postgres", "template1", "user_template"}
    assert set(dumps) == expected
    for name, artifact in dumps.items():
        assert database_of(artifact.name) == name  # reversible
        assert (
            lab.local / result.run_id / artifact.name
        ).stat().st_size == artifact.size
    assert len({a.name.lower() for a in dumps.values()}) == len(dumps)  # no collision
    skipped = {s.name: s.reason for s in manifest.skipped}
    assert set(skipped) == {"template0", "noconn", "broken_drop"}
    assert "accept connections" in skipped["noconn"]
    assert "invalid" in skipped["broken_drop"]
    kinds = {a.kind for a in manifest.artifacts}
    assert {Kind.NOMAD_SNAPSHOT, Kind.CONSUL_SNAPSHOT, Kind.PG_GLOBALS} <= kinds
    nomad = next(a for a in manifest.artifacts if a.kind is Kind.NOMAD_SNAPSHOT)
    consul = next(a for a in manifest.artifacts if a.kind is Kind.CONSUL_SNAPSHOT)
    assert (nomad.index, nomad.term, nomad.server_version) == (10, 2, "1.9.3")
    assert (consul.index, consul.term, consul.server_version) == (42, 3, "1.20.2")
    assert "Digest matches" in nomad.verification
    assert not any(
        p.name.startswith(".partial") for p in (lab.local / result.run_id).iterdir()
    )

    # S3: every artifact and then the manifest, each with its SHA-256
    s3 = lab.moto.client()
    for artifact in manifest.artifacts:
        assert artifact.s3_key and artifact.s3_etag
        head = s3.head_object(Bucket=lab.moto.bucket, Key=artifact.s3_key)
        assert head["Metadata"]["sha256"] == artifact.sha256
        assert head["ContentLength"] == artifact.size
    manifest_key = f"{lab.prefix}/{result.run_id}/manifest.json"
    assert s3.head_object(Bucket=lab.moto.bucket, Key=manifest_key)

    # every byte read back again
    checks = verify_run(lab.local, result.run_id)
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]

    # secrets: never in argv, logs, manifest or result
    assert seen
    secrets = [lab.pg.password, NOMAD_TOKEN, CONSUL_TOKEN, SECRET_KEY]
    for argv, env in seen:
        assert not any(s in arg for s in secrets for arg in argv)
        if "pg_dump" in argv[0] or "pg_dumpall" in argv[0]:
            assert env["PGPASSWORD"] == lab.pg.password
            assert "--no-password" in argv
    text = (
        caplog.text
        + result.model_dump_json()
        + (lab.local / result.run_id / "manifest.json").read_text()
    )
    assert not any(secret in text for secret in secrets)
    assert all(r.token in ("", "<redacted>") for r in lab.consul.requests())


async def test_restore_drill_really_restores(
    backup_worker: tuple[Client, str], lab: Lab
) -> None:
    result = await run_backup(
        backup_worker, BackupConfig(targets=[Target.POSTGRES], databases=["Weird db"])
    )
    client, queue = backup_worker
    drill = await client.execute_workflow(
        "RestoreDrill",
        DrillConfig(database="Weird db"),
        id=f"drill-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        result_type=DrillResult,
    )
    assert drill.run_id == result.run_id
    assert drill.ok, drill.differences
    assert drill.settings_match and drill.grants_match
    counts = {t.table: (t.archive_rows, t.restored_rows) for t in drill.tables}
    assert counts["public.t"] == (2500, 2500)
    assert counts['"Odd Schema"."Tab le"'] == (4, 4)
    names = lab.pg.psql("SELECT datname FROM pg_database")
    assert drill.scratch_database not in names


async def test_non_superuser_gives_partial_globals_and_no_retention(
    backup_worker: tuple[Client, str], lab: Lab
) -> None:
    lab.use_role("backup_ro", RO_PASSWORD)
    # the worker read its settings already: start a fresh one for this role
    from infraops.worker.clients import Clients
    from infraops.worker.roles import BACKUP
    from infraops.worker.run import build_worker

    client, _ = backup_worker
    queue = f"backup-ro-{uuid.uuid4().hex[:6]}"
    clients = Clients()
    async with build_worker(client, BACKUP, clients, task_queue=queue):
        result = await run_backup(
            (client, queue),
            BackupConfig(targets=[Target.POSTGRES], databases=["big", "Weird db"]),
        )
    await clients.aclose()
    assert result.status is RunStatus.PARTIAL
    globals_ = next(a for a in result.manifest.artifacts if a.kind is Kind.PG_GLOBALS)
    assert globals_.partial and "no-role-passwords" in globals_.notes[0]
    assert Target.POSTGRES not in result.manifest.good_targets
    text = (lab.local / result.run_id / "globals.sql").read_text()
    assert "SCRAM-SHA-256$" not in text
    assert result.local_deleted == [] and result.s3_deleted == []


async def test_locked_table_is_retried_with_backoff(
    backup_worker: tuple[Client, str], lab: Lab
) -> None:
    ready = threading.Event()

    def hold() -> None:
        with psycopg.connect(lab.pg.dsn("locked")) as conn:
            conn.execute("BEGIN")
            conn.execute("LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
            ready.set()
            time.sleep(2.5)
            conn.execute("COMMIT")

    holder = threading.Thread(target=hold)
    holder.start()
    ready.wait(10)
    client, queue = backup_worker
    handle = await client.start_workflow(
        "Backup",
        BackupConfig(targets=[Target.POSTGRES], databases=["locked"]),
        id=f"backup-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        result_type=BackupResult,
    )
    result = await handle.result()
    holder.join()
    assert result.status is RunStatus.GOOD
    attempts = [
        e.activity_task_started_event_attributes.attempt
        async for e in handle.fetch_history_events()
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert max(attempts) >= 2  # the first pg_dump hit the lock wait timeout


async def test_database_dropped_mid_run_is_a_warning(
    backup_worker: tuple[Client, str], lab: Lab
) -> None:
    lab.pg.psql("CREATE DATABASE doomed")
    lab.monkeypatch.setenv("PG_DUMP_CONCURRENCY", "1")
    stop = threading.Event()

    def dropper() -> None:  # drop it as soon as the first dump is running
        while not stop.is_set():
            out = lab.pg.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = 'big' "
                "AND application_name = 'infraops-backup'"
            )
            if out.strip() not in ("", "0"):
                lab.pg.psql("DROP DATABASE doomed WITH (FORCE)")
                return
            time.sleep(0.02)

    thread = threading.Thread(target=dropper)
    thread.start()
    try:
        result = await run_backup(
            backup_worker,
            BackupConfig(
                targets=[Target.POSTGRES],
                databases=["big", "doomed"],
                dump_concurrency=1,
            ),
        )
    finally:
        stop.set()
        thread.join()
    assert result.status is RunStatus.GOOD
    assert {s.name: s.reason for s in result.manifest.skipped} == {
        "doomed": "dropped during the run"
    }
    assert any("dropped during the run" in w for w in result.manifest.warnings)


async def test_no_leader_takes_stale_snapshots_and_marks_them(
    backup_worker: tuple[Client, str], lab: Lab
) -> None:
    lab.nomad.set_leader(False)
    lab.consul.state.leader = False
    result = await run_backup(
        backup_worker, BackupConfig(targets=[Target.NOMAD, Target.CONSUL])
    )
    assert result.status is RunStatus.PARTIAL
    assert all(a.stale for a in result.manifest.artifacts)
    assert result.manifest.good_targets == []
    stale_params = [
        r.query.get("stale") for r in lab.consul.requests() if r.path == "/v1/snapshot"
    ]
    assert stale_params == [None, [""]] or stale_params[-1] is not None


async def test_truncated_snapshot_fails_the_leg_and_the_run_is_recorded(
    backup_worker: tuple[Client, str], lab: Lab
) -> None:
    snapshot_state(lab.nomad).truncate_after = 1000
    with pytest.raises(WorkflowFailureError) as failure:
        await run_backup(
            backup_worker, BackupConfig(targets=[Target.NOMAD, Target.CONSUL])
        )
    assert "nomad" in str(failure.value.cause)
    runs = list(lab.local.iterdir())
    assert len(runs) == 1
    manifest = local_manifest(lab, runs[0].name)
    assert manifest.status is RunStatus.FAILED
    assert [a.kind for a in manifest.artifacts] == [Kind.CONSUL_SNAPSHOT]
    assert any("cut short" in e or "truncated" in e for e in manifest.errors), (
        manifest.errors
    )
    assert not (runs[0] / "nomad.snap").exists()
    assert not any(p.name.startswith(".partial") for p in runs[0].iterdir())


async def test_encrypted_snapshots_and_globals(
    backup_worker: tuple[Client, str], lab: Lab
) -> None:
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    lab.monkeypatch.setenv("BACKUP_AGE_RECIPIENTS", str(identity.to_public()))
    from infraops.worker.clients import Clients
    from infraops.worker.roles import BACKUP
    from infraops.worker.run import build_worker

    client, _ = backup_worker
    queue = f"backup-age-{uuid.uuid4().hex[:6]}"
    clients = Clients()
    async with build_worker(client, BACKUP, clients, task_queue=queue):
        result = await run_backup(
            (client, queue),
            BackupConfig(
                targets=[Target.CONSUL, Target.POSTGRES], databases=["postgres"]
            ),
        )
    await clients.aclose()
    assert result.status is RunStatus.GOOD
    names = {a.name for a in result.manifest.artifacts}
    assert {"consul.snap.age", "globals.sql.age", "db-postgres.dump"} == names
    data = (lab.local / result.run_id / "consul.snap.age").read_bytes()
    assert data.startswith(b"age-encryption.org/v1")
    plain = pyrage.decrypt(data, [identity])
    assert plain == lab.consul.state.archive
    globals_plain = pyrage.decrypt(
        (lab.local / result.run_id / "globals.sql.age").read_bytes(), [identity]
    )
    assert b"PostgreSQL database cluster dump complete" in globals_plain
    assert all(c.ok for c in verify_run(lab.local, result.run_id))


def test_cli_json_has_no_secrets(lab: Lab, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from infraops.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["backup", "list", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == []
    out = runner.invoke(app, ["backup", "list", "--s3", "--json"])
    assert out.exit_code == 0, out.output
    for secret in (lab.pg.password, SECRET_KEY, NOMAD_TOKEN, CONSUL_TOKEN):
        assert secret not in out.output
    lab.monkeypatch.setenv("S3_ENDPOINT", "not a url")
    out = runner.invoke(app, ["backup", "list", "--s3", "--json"])
    assert out.exit_code == 2
    assert SECRET_KEY not in out.output


async def _unused() -> None:  # keep asyncio imported for type checkers
    await asyncio.sleep(0)


def test_cli_run_backup_with_a_local_worker_prints_json_without_secrets(
    lab: Lab, temporal_server: Any
) -> None:
    from typer.testing import CliRunner

    from infraops.cli import app

    lab.monkeypatch.setenv("TEMPORAL_ADDRESS", temporal_server.address)
    lab.monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    out = CliRunner().invoke(
        app,
        [
            "run",
            "backup",
            "--only",
            "consul,postgres",
            "--database",
            "it's",
            "--local-worker",
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    result = BackupResult.model_validate_json(out.stdout)
    assert result.status is RunStatus.GOOD
    assert [a.database for a in result.manifest.artifacts if a.database] == ["it's"]
    for secret in (lab.pg.password, SECRET_KEY, NOMAD_TOKEN, CONSUL_TOKEN):
        assert secret not in out.output
    listed = CliRunner().invoke(app, ["backup", "verify", result.run_id, "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)["ok"] is True
