"""The scan history on a real PostgreSQL: migrations, writes, history."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from infraops.config import TrivySettings
from infraops.trivy import store as store_module
from infraops.trivy.models import (
    FailureKind,
    FinishInput,
    Image,
    ImageFailure,
    ImageUse,
    ScanConfig,
    SkipReason,
)
from infraops.trivy.report import Finding, parse_report
from infraops.trivy.store import StoreUnavailable, TrivyStore, connection_kwargs
from tests.integration.trivy.conftest import OWN, shared_dir
from tests.lab.postgres import PostgresCluster

pytestmark = pytest.mark.lab

APP_14 = OWN / "app-1.4-debian-java.json"
APP_15 = OWN / "app-1.5-debian-java-python.json"
REDIS = OWN / "redis-alpine-clean.json"


def image(reference: str, repository: str | None = None) -> Image:
    return Image(
        reference=reference,
        repository=repository or reference.rsplit(":", 1)[0],
        uses=[
            ImageUse(
                namespace="default",
                job="web",
                group="web",
                task="app",
                driver="docker",
                written=reference,
            )
        ],
    )


async def query(
    settings: TrivySettings, sql: str, *params: Any
) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(
        **connection_kwargs(settings)
    ) as conn:
        cursor = await conn.execute(sql.encode(), params)
        return await cursor.fetchall()


async def new_run(store: TrivyStore, name: str, images: Sequence[Image]) -> int:
    run_id = await store.start_run("scan", name, {}, "v2@db1")
    await store.record_plan(run_id, images, [], timedelta(0), "v2@db1")
    return run_id


async def test_migrations_with_many_workers_at_once(settings: TrivySettings) -> None:
    stores = [TrivyStore(settings) for _ in range(8)]

    applied = await asyncio.gather(*(s.migrate() for s in stores))

    assert sorted(applied) == [[]] * 7 + [[1]]
    rows = await query(settings, "SELECT version FROM trivy_schema_migrations")
    assert rows == [(1,)]
    assert await stores[0].migrate() == []


async def test_migrations_in_separate_processes(settings: TrivySettings) -> None:
    """Several worker processes starting together against a fresh database."""
    env_settings = settings.model_dump_json()
    code = (
        "import asyncio, os, sys;"
        "from infraops.config import TrivySettings;"
        "from infraops.trivy.store import TrivyStore;"
        "from pydantic import SecretStr;"
        "s = TrivySettings.model_validate_json(sys.stdin.read());"
        "s = s.model_copy(update={'trivy_db_password': SecretStr(os.environ['LAB_DB_PASSWORD'])});"
        "print(asyncio.run(TrivyStore(s).migrate()))"
    )
    password = settings.trivy_db_password.get_secret_value()  # type: ignore[union-attr]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            env=os.environ | {"LAB_DB_PASSWORD": password},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    outputs = await asyncio.gather(
        *(p.communicate(env_settings.encode()) for p in procs)
    )

    assert all(p.returncode == 0 for p in procs)
    assert sorted(out.decode().strip() for out, _ in outputs) == [
        "[1]",
        "[]",
        "[]",
        "[]",
    ]


async def test_wrong_password_fails_loudly_without_the_password(
    settings: TrivySettings,
) -> None:
    from pydantic import SecretStr

    from infraops.errors import ConfigError

    wrong = settings.model_copy(
        update={"trivy_db_password": SecretStr("nope-secret-1")}
    )

    with pytest.raises(ConfigError, match="TRIVY_DB_PASSWORD") as caught:
        await TrivyStore(wrong).migrate()

    assert "nope-secret-1" not in str(caught.value)


def every_report() -> list[Path]:
    own = sorted(OWN.glob("*.json"))
    shared = sorted(Path("/work/shared/fixtures/trivy").glob("*.json"))
    return own + shared


@pytest.mark.parametrize("path", every_report(), ids=lambda p: p.name)
async def test_every_report_is_stored_whole(
    store: TrivyStore, settings: TrivySettings, path: Path
) -> None:
    report = parse_report(path.read_bytes())
    ref = image(f"docker.io/lab/{path.stem}:1")
    run_id = await new_run(store, path.name, [ref])

    stored = await store.store_scan(run_id, ref, report, 1.0)

    assert stored.findings == len(report.findings) == stored.rows_written
    rows = await query(
        settings,
        "SELECT count(*) FROM findings f JOIN scans s ON s.id = f.scan_id"
        " WHERE s.reference = %s",
        ref.reference,
    )
    assert rows == [(len(report.findings),)]


async def test_shared_reports_present_or_skipped() -> None:
    assert shared_dir().is_dir()


async def test_large_report_rows_per_second(store: TrivyStore) -> None:
    report = parse_report((shared_dir() / "ubuntu-java-large.json").read_bytes())
    images = [image(f"docker.io/lab/large:{n}") for n in range(20)]
    run_id = await new_run(store, "large", images)

    started = time.perf_counter()
    for each in images:
        await store.store_scan(run_id, each, report, 1.0)
    elapsed = time.perf_counter() - started

    rate = len(report.findings) * len(images) / elapsed
    print(f"\nstored {len(report.findings) * len(images)} findings: {rate:.0f} rows/s")
    assert rate > 1000


async def test_retried_write_is_a_no_op(
    store: TrivyStore, settings: TrivySettings
) -> None:
    report = parse_report(APP_14.read_bytes())
    ref = image("registry.lab:5000/team/app:1.4")
    run_id = await new_run(store, "retry", [ref])

    first = await store.store_scan(run_id, ref, report, 1.0)
    again = await store.store_scan(run_id, ref, report, 1.0)

    assert (first.rows_written, again.rows_written) == (8, 0)
    assert again.by_severity == first.by_severity
    assert await query(settings, "SELECT count(*) FROM findings") == [(8,)]


@pytest.fixture
def killing_rows(pg: PostgresCluster, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Once armed (append 0), the next COPY loses its connection after 40 rows."""
    real = store_module.finding_rows
    killed: list[int] = []

    def rows(scan_id: int, findings: Sequence[Finding]) -> Iterator[tuple[Any, ...]]:
        for number, row in enumerate(real(scan_id, findings)):
            if number == 40 and killed == [0]:
                killed.append(scan_id)
                pg.psql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'infraops-trivy' AND state = 'active'"
                    " AND query LIKE 'COPY findings%'"
                )
            yield row

    monkeypatch.setattr(store_module, "finding_rows", rows)
    return killed


async def test_crash_mid_image_leaves_no_half_image(
    store: TrivyStore, settings: TrivySettings, killing_rows: list[int]
) -> None:
    report = parse_report((shared_dir() / "ubuntu-java-large.json").read_bytes())
    first, second = image("docker.io/lab/one:1"), image("docker.io/lab/two:1")
    run_id = await new_run(store, "crash", [first, second])
    await store.store_scan(run_id, first, report, 1.0)  # an image before the crash
    killing_rows.append(0)

    with pytest.raises(StoreUnavailable):
        await store.store_scan(run_id, second, report, 1.0)

    assert len(killing_rows) == 2, "the COPY was not interrupted"
    counts = await query(
        settings,
        "SELECT s.reference, count(f.*) FROM scans s"
        " LEFT JOIN findings f ON f.scan_id = s.id GROUP BY 1 ORDER BY 1",
    )
    assert counts == [(first.reference, 144)]
    statuses = await query(
        settings, "SELECT reference, status FROM run_images ORDER BY 1"
    )
    assert statuses == [(first.reference, "scanned"), (second.reference, "pending")]

    retried = await store.store_scan(run_id, second, report, 1.0)  # Temporal's retry

    assert retried.rows_written == 144
    total = await query(settings, "SELECT count(*) FROM findings")
    assert total == [(288,)]


async def test_history_new_findings_and_report(
    store: TrivyStore, settings: TrivySettings
) -> None:
    config = ScanConfig()
    app14, app15 = (
        image("registry.lab:5000/team/app:1.4"),
        image("registry.lab:5000/team/app:1.5"),
    )
    redis = image("docker.io/library/redis:7.4-alpine")
    for ref in (app14, app15):
        object.__setattr__(ref, "repository", "registry.lab:5000/team/app")

    first = await new_run(store, "run-1", [app14, redis])
    scans = [
        await store.store_scan(first, app14, parse_report(APP_14.read_bytes()), 1.0),
        await store.store_scan(first, redis, parse_report(REDIS.read_bytes()), 1.0),
    ]
    one = await store.finish_run(
        FinishInput(
            run_id=first, config=config, found=2, scanned=scans, skipped=[], failed=[]
        )
    )
    assert one.previous_run_id is None
    assert one.findings_by_severity == {
        "CRITICAL": 4,
        "HIGH": 1,
        "MEDIUM": 1,
        "LOW": 1,
        "UNKNOWN": 1,
    }

    second = await new_run(store, "run-2", [app15, redis])
    scans = [
        await store.store_scan(second, app15, parse_report(APP_15.read_bytes()), 1.0)
    ]
    failure = ImageFailure(
        reference=redis.reference,
        kind=FailureKind.TRANSIENT,
        reason="connection-reset",
        message="reset",
    )
    two = await store.finish_run(
        FinishInput(
            run_id=second,
            config=config,
            found=2,
            scanned=scans,
            skipped=[],
            failed=[failure],
        )
    )

    assert two.previous_run_id == first
    assert two.new_cves == ["CVE-2024-6345"] and two.new_findings == 1
    errors = await query(settings, "SELECT reference, kind, reason FROM scan_errors")
    assert errors == [(redis.reference, "transient", "connection-reset")]
    status = await query(settings, "SELECT status FROM scan_runs WHERE id = %s", second)
    assert status == [("partial",)]

    now = await store.report()
    assert now.run_id == second
    assert {row.reference for row in now.rows} == {app15.reference}
    new = await store.report(new_only=True)
    assert [(r.vulnerability_id, r.pkg_name) for r in new.rows] == [
        ("CVE-2024-6345", "setuptools")
    ]
    assert new.rows[0].uses[0]["job"] == "web"
    critical = await store.report(severities=["CRITICAL"])
    assert {r.severity for r in critical.rows} == {"CRITICAL"}
    assert len(critical.rows) == 2
    only_redis = await store.report(references=[redis.reference])
    assert only_redis.rows == []


async def test_rescan_after_skips_recent_scans_with_the_same_db(
    store: TrivyStore,
) -> None:
    ref = image("registry.lab:5000/team/app:1.4")
    first = await new_run(store, "r1", [ref])
    await store.store_scan(first, ref, parse_report(APP_14.read_bytes()), 1.0)
    second = await store.start_run("scan", "r2", {}, "v2@2026-12-03T00:00:00Z")

    same_db = await store.record_plan(
        second, [ref], [], timedelta(hours=1), "v2@2026-12-03T00:00:00Z"
    )
    other_db = await store.record_plan(
        second, [ref], [], timedelta(hours=1), "v2@2026-12-04T00:00:00Z"
    )
    everything = await store.record_plan(
        second, [ref], [], timedelta(0), "v2@2026-12-03T00:00:00Z"
    )

    assert [s.reason for s in same_db.skipped] == [SkipReason.RECENT]
    assert same_db.to_scan == []
    assert other_db.to_scan == [ref]
    assert everything.to_scan == [ref]
