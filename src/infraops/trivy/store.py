"""The scan history in PostgreSQL, through one psycopg pool per worker.

Tables (schema version 1):

    scan_runs    one row per Scan workflow run, its config, counts and status
    run_images   every image a run found, where it runs, what became of it, and
                 `scan_id`: the scan that stands for it in this run (its own,
                 or an earlier one when it was skipped or failed)
    scans        one row per successful scan of an image
    findings     one row per (scan, target, package, package path, CVE)
    scan_errors  why an image of a run could not be scanned

A scan is written in one transaction (the scans row, its findings by COPY, and
its run_images status), so a crash never leaves half an image. Writing the
same (run, reference) twice is a no-op, so a retried activity is harmless.

Migrations are applied at worker start-up under a transaction-scoped advisory
lock: several workers starting at once apply each version exactly once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from infraops.config import TrivySettings
from infraops.errors import ConfigError, PermanentError, TransientError
from infraops.trivy.models import (
    FinishInput,
    Image,
    ImageFailure,
    ImageScan,
    ImageSkip,
    Plan,
    ScanResult,
    SkipReason,
)
from infraops.trivy.report import Finding, Report

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

MIGRATION_LOCK = 0x696E6672615F7476  # "infra_tv": one key for this schema
NEW_CVES_LIMIT = 500

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "scan history",
        """
        CREATE TABLE scan_runs (
            id bigserial PRIMARY KEY,
            workflow_id text NOT NULL,
            workflow_run_id text NOT NULL UNIQUE,
            started_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            status text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'completed', 'partial', 'failed')),
            config jsonb NOT NULL,
            db_version text,
            images_found integer,
            images_scanned integer,
            images_skipped integer,
            images_failed integer,
            error text
        );
        CREATE TABLE scans (
            id bigserial PRIMARY KEY,
            run_id bigint NOT NULL REFERENCES scan_runs (id) ON DELETE CASCADE,
            reference text NOT NULL,
            repository text NOT NULL,
            digest text,
            image_id text,
            repo_digests text[] NOT NULL DEFAULT '{}',
            os_family text,
            os_name text,
            eosl boolean NOT NULL DEFAULT false,
            db_version text,
            scanned_at timestamptz NOT NULL DEFAULT now(),
            duration_seconds double precision NOT NULL,
            findings integer NOT NULL,
            UNIQUE (run_id, reference)
        );
        CREATE INDEX scans_by_reference ON scans (reference, scanned_at DESC);
        CREATE INDEX scans_by_digest ON scans (digest, scanned_at DESC);
        CREATE TABLE run_images (
            run_id bigint NOT NULL REFERENCES scan_runs (id) ON DELETE CASCADE,
            reference text NOT NULL,
            repository text NOT NULL,
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'scanned', 'skipped', 'failed')),
            detail text NOT NULL DEFAULT '',
            uses jsonb NOT NULL DEFAULT '[]',
            scan_id bigint REFERENCES scans (id) ON DELETE SET NULL,
            PRIMARY KEY (run_id, reference)
        );
        CREATE TABLE findings (
            scan_id bigint NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
            target text NOT NULL,
            pkg_key text NOT NULL,
            pkg_path text NOT NULL,
            vulnerability_id text NOT NULL,
            pkg_name text NOT NULL,
            installed_version text NOT NULL,
            fixed_version text,
            status text,
            severity text NOT NULL,
            title text,
            primary_url text,
            cvss_score real,
            published_at timestamptz,
            result_class text,
            result_type text,
            PRIMARY KEY (scan_id, target, pkg_key, pkg_path, vulnerability_id)
        );
        CREATE INDEX findings_by_cve ON findings (vulnerability_id);
        CREATE TABLE scan_errors (
            run_id bigint NOT NULL REFERENCES scan_runs (id) ON DELETE CASCADE,
            reference text NOT NULL,
            kind text NOT NULL,
            reason text NOT NULL,
            message text NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (run_id, reference)
        );
        CREATE VIEW run_findings AS
            SELECT ri.run_id, ri.reference, ri.repository, ri.status AS image_status,
                   ri.uses, s.id AS scan_id, s.run_id AS scanned_in_run,
                   s.scanned_at, s.digest, f.target, f.pkg_key, f.pkg_path,
                   f.vulnerability_id, f.pkg_name, f.installed_version,
                   f.fixed_version, f.status, f.severity, f.title, f.primary_url,
                   f.cvss_score
            FROM run_images ri
            JOIN scans s ON s.id = ri.scan_id
            JOIN findings f ON f.scan_id = s.id;
        """,
    ),
]

FINDING_COLUMNS = (
    "scan_id",
    "target",
    "pkg_key",
    "pkg_path",
    "vulnerability_id",
    "pkg_name",
    "installed_version",
    "fixed_version",
    "status",
    "severity",
    "title",
    "primary_url",
    "cvss_score",
    "published_at",
    "result_class",
    "result_type",
)

# Findings new in a run: no finding of the previous run has the same
# repository, package and CVE (a tag bump alone does not make a CVE new).
_NEW_FINDINGS = """
    SELECT cur.* FROM run_findings cur
    WHERE cur.run_id = %(run)s
      AND (cardinality(%(severities)s::text[]) = 0
           OR cur.severity = ANY(%(severities)s::text[]))
      AND NOT EXISTS (
        SELECT 1 FROM run_findings prev
        WHERE prev.run_id = %(previous)s
          AND prev.repository = cur.repository
          AND prev.pkg_name = cur.pkg_name
          AND prev.vulnerability_id = cur.vulnerability_id)
"""


class StoreUnavailable(TransientError):
    """PostgreSQL could not be reached or gave up on the statement for now."""


class StoreRejected(PermanentError):
    """PostgreSQL refused the data or the statement."""


@dataclass(frozen=True)
class ReportRow:
    reference: str
    uses: list[dict[str, str]]
    vulnerability_id: str
    severity: str
    pkg_name: str
    installed_version: str
    fixed_version: str | None
    status: str | None
    title: str | None
    target: str
    scanned_at: datetime


@dataclass(frozen=True)
class StoredReport:
    run_id: int | None
    previous_run_id: int | None
    finished_at: datetime | None
    rows: list[ReportRow]


def connection_kwargs(settings: TrivySettings) -> dict[str, Any]:
    """libpq parameters; the password goes in a keyword, never a DSN string."""
    kwargs: dict[str, Any] = {
        "host": settings.trivy_db_host,
        "port": settings.trivy_db_port,
        "dbname": settings.trivy_db_name,
        "sslmode": settings.db_sslmode,
        "connect_timeout": 10,
        "application_name": "infraops-trivy",
    }
    if settings.trivy_db_user:
        kwargs["user"] = settings.trivy_db_user
    if settings.trivy_db_password is not None:
        kwargs["password"] = settings.trivy_db_password.get_secret_value()
    if settings.db_sslrootcert is not None:
        kwargs["sslrootcert"] = str(settings.db_sslrootcert)
    return kwargs


class TrivyStore:
    """Reads and writes the scan history; every method is one transaction."""

    def __init__(
        self, settings: TrivySettings, *, max_size: int = 8, timeout: float = 30.0
    ) -> None:
        self._kwargs = connection_kwargs(settings)
        self._where = (
            f"{settings.trivy_db_host}:{settings.trivy_db_port}/"
            f"{settings.trivy_db_name}"
        )
        self._pool = AsyncConnectionPool(
            kwargs=self._kwargs,
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            open=False,
            name="trivy-db",
        )
        self._opened = False

    async def aclose(self) -> None:
        if self._opened:
            await self._pool.close()
            self._opened = False

    async def _ready(self) -> AsyncConnectionPool:
        if not self._opened:
            await self._pool.open(wait=False)
            self._opened = True
        return self._pool

    async def check(self) -> None:
        """Connect once without the pool, so bad settings fail fast and clearly."""
        conn = await self._connect()
        await conn.close()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        try:
            return await psycopg.AsyncConnection.connect(**self._kwargs)
        except psycopg.OperationalError as error:
            raise ConfigError(
                f"TRIVY_DB_HOST/TRIVY_DB_USER/TRIVY_DB_PASSWORD: cannot connect to "
                f"PostgreSQL at {self._where}: {_first_line(error)}"
            ) from None

    # -- migrations ----------------------------------------------------------

    async def migrate(self) -> list[int]:
        """Apply missing migrations; returns the versions this call applied."""
        conn = await self._connect()
        applied: list[int] = []
        async with conn:
            with tracer.start_as_current_span(
                "postgres migrate", kind=SpanKind.CLIENT, attributes=_span_attrs()
            ):
                async with conn.transaction():
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,)
                    )
                    await conn.execute(
                        "CREATE TABLE IF NOT EXISTS trivy_schema_migrations ("
                        " version integer PRIMARY KEY, name text NOT NULL,"
                        " applied_at timestamptz NOT NULL DEFAULT now())"
                    )
                    cursor = await conn.execute(
                        "SELECT version FROM trivy_schema_migrations"
                    )
                    done = {row[0] for row in await cursor.fetchall()}
                    for version, name, sql in MIGRATIONS:
                        if version in done:
                            continue
                        await conn.execute(sql.encode())
                        await conn.execute(
                            "INSERT INTO trivy_schema_migrations (version, name)"
                            " VALUES (%s, %s)",
                            (version, name),
                        )
                        applied.append(version)
        for version in applied:
            log.info("applied trivy schema migration %d", version)
        return applied

    # -- runs ----------------------------------------------------------------

    async def start_run(
        self,
        workflow_id: str,
        workflow_run_id: str,
        config: dict[str, Any],
        db_version: str | None,
    ) -> int:
        row = await self._one(
            """
            INSERT INTO scan_runs (workflow_id, workflow_run_id, config, db_version)
            VALUES (%s, %s, %s, %s)
            ON CONFLICT (workflow_run_id)
                DO UPDATE SET db_version = EXCLUDED.db_version
            RETURNING id
            """,
            (workflow_id, workflow_run_id, json.dumps(config), db_version),
        )
        return int(row[0])

    async def record_plan(
        self,
        run_id: int,
        images: Sequence[Image],
        skipped: Sequence[ImageSkip],
        rescan_after: timedelta,
        db_version: str | None,
    ) -> Plan:
        """Note every image of the run; skip the ones scanned recently enough."""
        pool = await self._ready()
        to_scan: list[Image] = []
        recent: list[ImageSkip] = []
        try:
            async with pool.connection() as conn, conn.transaction():
                for image in images:
                    previous = None
                    if rescan_after > timedelta(0) and db_version is not None:
                        previous = await self._recent_scan(
                            conn, image, datetime.now(UTC) - rescan_after, db_version
                        )
                    if previous is None:
                        to_scan.append(image)
                        await _upsert_run_image(conn, run_id, image, "pending", "")
                        continue
                    scan_id, scanned_at = previous
                    detail = f"scanned {scanned_at:%Y-%m-%d %H:%M}Z with the same DB"
                    recent.append(
                        ImageSkip(
                            reference=image.reference,
                            reason=SkipReason.RECENT,
                            detail=detail,
                            uses=image.uses,
                        )
                    )
                    await _upsert_run_image(
                        conn, run_id, image, "skipped", detail, scan_id=scan_id
                    )
                for skip in skipped:
                    await _upsert_skip(conn, run_id, skip)
        except psycopg.Error as error:
            raise _classify(error, "recording the scan plan") from None

        return Plan(to_scan=to_scan, skipped=[*skipped, *recent])

    async def _recent_scan(
        self,
        conn: psycopg.AsyncConnection[Any],
        image: Image,
        since: datetime,
        db_version: str,
    ) -> tuple[int, datetime] | None:
        if image.digest:
            where, key = "digest = %s", image.digest
        else:
            where, key = "reference = %s", image.reference
        cursor = await conn.execute(
            f"SELECT id, scanned_at FROM scans WHERE {where}"  # noqa: S608 (fixed text)
            " AND scanned_at >= %s AND db_version = %s"
            " ORDER BY scanned_at DESC LIMIT 1",
            (key, since, db_version),
        )
        row = await cursor.fetchone()
        return (int(row[0]), row[1]) if row else None

    async def store_scan(
        self,
        run_id: int,
        image: Image,
        report: Report,
        seconds: float,
        fallback_db_version: str | None = None,
    ) -> ImageScan:
        """Write one image's scan and findings in a single transaction."""
        pool = await self._ready()
        try:
            with tracer.start_as_current_span(
                "postgres store scan", kind=SpanKind.CLIENT, attributes=_span_attrs()
            ):
                async with pool.connection() as conn, conn.transaction():
                    cursor = await conn.execute(
                        """
                        INSERT INTO scans (run_id, reference, repository, digest,
                            image_id, repo_digests, os_family, os_name, eosl,
                            db_version, duration_seconds, findings)
                        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                        ON CONFLICT (run_id, reference) DO NOTHING
                        RETURNING id
                        """,
                        (
                            run_id,
                            image.reference,
                            image.repository,
                            image.digest or report.digest,
                            report.image_id,
                            report.repo_digests,
                            report.os_family,
                            report.os_name,
                            report.eosl,
                            report.db_version or fallback_db_version,
                            seconds,
                            len(report.findings),
                        ),
                    )
                    row = await cursor.fetchone()
                    if row is None:
                        return await self._stored(conn, run_id, image, seconds)
                    scan_id = int(row[0])
                    columns = ", ".join(FINDING_COLUMNS)
                    async with conn.cursor().copy(
                        f"COPY findings ({columns}) FROM STDIN"
                    ) as copy:
                        for values in finding_rows(scan_id, report.findings):
                            await copy.write_row(values)
                    await _upsert_run_image(
                        conn, run_id, image, "scanned", "", scan_id=scan_id
                    )
        except psycopg.Error as error:
            raise _classify(error, f"storing the scan of {image.reference}") from None

        return ImageScan(
            reference=image.reference,
            digest=image.digest or report.digest,
            image_id=report.image_id,
            findings=len(report.findings),
            by_severity=report.by_severity(),
            duration_seconds=seconds,
            rows_written=len(report.findings),
        )

    async def _stored(
        self,
        conn: psycopg.AsyncConnection[Any],
        run_id: int,
        image: Image,
        seconds: float,
    ) -> ImageScan:
        """The scan an earlier attempt already committed, as it was written."""
        cursor = await conn.execute(
            """
            SELECT s.id, s.digest, s.image_id, f.severity, count(f.*)
            FROM scans s LEFT JOIN findings f ON f.scan_id = s.id
            WHERE s.run_id = %s AND s.reference = %s
            GROUP BY s.id, s.digest, s.image_id, f.severity
            """,
            (run_id, image.reference),
        )
        rows = await cursor.fetchall()
        by_severity = {row[3]: int(row[4]) for row in rows if row[3] is not None}
        log.info("scan of %s was already stored by an earlier attempt", image.reference)
        return ImageScan(
            reference=image.reference,
            digest=rows[0][1],
            image_id=rows[0][2],
            findings=sum(by_severity.values()),
            by_severity=by_severity,
            duration_seconds=seconds,
            rows_written=0,
        )

    async def finish_run(self, finish: FinishInput) -> ScanResult:
        """Record failures and skips, count, compare with the previous run."""
        pool = await self._ready()
        severities = list(finish.config.severities)
        try:
            async with pool.connection() as conn, conn.transaction():
                for failure in finish.failed:
                    await _record_failure(conn, finish.run_id, failure)
                for skip in finish.skipped:
                    await _upsert_skip(conn, finish.run_id, skip)
                cursor = await conn.execute(
                    """
                    SELECT severity, count(*) FROM run_findings
                    WHERE run_id = %s AND (cardinality(%s::text[]) = 0
                                           OR severity = ANY(%s::text[]))
                    GROUP BY severity
                    """,
                    (finish.run_id, severities, severities),
                )
                by_severity = {row[0]: int(row[1]) for row in await cursor.fetchall()}
                previous = await _previous_run(conn, finish.run_id)
                cursor = await conn.execute(
                    f"SELECT DISTINCT vulnerability_id FROM ({_NEW_FINDINGS}) new"  # noqa: S608
                    " ORDER BY 1",
                    {
                        "run": finish.run_id,
                        "previous": previous or 0,
                        "severities": severities,
                    },
                )
                new_cves = [row[0] for row in await cursor.fetchall()]
                cursor = await conn.execute(
                    f"SELECT count(*) FROM ({_NEW_FINDINGS}) new",  # noqa: S608
                    {
                        "run": finish.run_id,
                        "previous": previous or 0,
                        "severities": severities,
                    },
                )
                new_findings = int((await cursor.fetchone() or (0,))[0])
                status = "completed"
                if finish.aborted:
                    status = "failed"
                elif finish.failed:
                    status = "partial"
                await conn.execute(
                    """
                    UPDATE scan_runs SET finished_at = now(), status = %s,
                        images_found = %s, images_scanned = %s,
                        images_skipped = %s, images_failed = %s, error = %s
                    WHERE id = %s
                    """,
                    (
                        status,
                        finish.found,
                        len(finish.scanned),
                        len(finish.skipped),
                        len(finish.failed),
                        finish.aborted,
                        finish.run_id,
                    ),
                )
        except psycopg.Error as error:
            raise _classify(error, "finishing the scan run") from None

        return ScanResult(
            run_id=finish.run_id,
            images_found=finish.found,
            images_scanned=len(finish.scanned),
            skipped=finish.skipped,
            failed=finish.failed,
            findings_by_severity=by_severity,
            previous_run_id=previous,
            new_cves=new_cves[:NEW_CVES_LIMIT],
            new_findings=new_findings,
        )

    # -- reading -------------------------------------------------------------

    async def report(
        self,
        *,
        severities: Sequence[str] = (),
        new_only: bool = False,
        references: Sequence[str] = (),
    ) -> StoredReport:
        """Findings of the latest finished run (optionally only the new ones)."""
        pool = await self._ready()
        try:
            async with pool.connection() as conn:
                conn.row_factory = dict_row  # type: ignore[assignment]
                cursor = await conn.execute(
                    "SELECT id, finished_at FROM scan_runs"
                    " WHERE status IN ('completed', 'partial')"
                    " ORDER BY id DESC LIMIT 1"
                )
                latest: dict[str, Any] | None = await cursor.fetchone()  # type: ignore[assignment]
                if latest is None:
                    return StoredReport(None, None, None, [])
                run_id = int(latest["id"])
                previous = await _previous_run(conn, run_id)
                params: dict[str, Any] = {
                    "run": run_id,
                    "previous": previous or 0,
                    "severities": list(severities),
                    "refs": list(references),
                }
                source = (
                    _NEW_FINDINGS
                    if new_only
                    else "SELECT * FROM run_findings cur WHERE cur.run_id = %(run)s"
                    " AND (cardinality(%(severities)s::text[]) = 0"
                    " OR cur.severity = ANY(%(severities)s::text[]))"
                )
                cursor = await conn.execute(
                    f"SELECT * FROM ({source}) r"  # noqa: S608 (fixed text)
                    " WHERE cardinality(%(refs)s::text[]) = 0"
                    " OR r.reference = ANY(%(refs)s::text[])"
                    " OR r.repository = ANY(%(refs)s::text[])"
                    " ORDER BY array_position(ARRAY['CRITICAL','HIGH','MEDIUM',"
                    "'LOW','UNKNOWN'], r.severity), r.reference,"
                    " r.vulnerability_id, r.pkg_name",
                    params,
                )
                rows = [_report_row(row) for row in await cursor.fetchall()]  # type: ignore[arg-type]
        except psycopg.Error as error:
            raise _classify(error, "reading the report") from None

        return StoredReport(run_id, previous, latest["finished_at"], rows)

    async def _one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...]:
        pool = await self._ready()
        try:
            async with pool.connection() as conn:
                cursor = await conn.execute(sql.encode(), params)
                row = await cursor.fetchone()
        except psycopg.Error as error:
            raise _classify(error, "writing the scan run") from None
        assert row is not None
        return tuple(row)


def finding_rows(
    scan_id: int, findings: Sequence[Finding]
) -> Iterator[tuple[Any, ...]]:
    """One COPY row per finding (NUL characters, which text cannot hold, dropped)."""
    for f in findings:
        yield (
            scan_id,
            _text(f.target),
            _text(f.pkg_key),
            _text(f.pkg_path),
            _text(f.vulnerability_id),
            _text(f.pkg_name),
            _text(f.installed_version),
            _opt(f.fixed_version),
            _opt(f.status),
            f.severity,
            _opt(f.title),
            _opt(f.primary_url),
            f.cvss_score,
            _aware(f.published_at),
            _opt(f.result_class),
            _opt(f.result_type),
        )


def _text(value: str) -> str:
    return value.replace("\x00", "")


def _opt(value: str | None) -> str | None:
    return None if value is None else value.replace("\x00", "")


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


async def _upsert_run_image(
    conn: psycopg.AsyncConnection[Any],
    run_id: int,
    image: Image,
    status: str,
    detail: str,
    *,
    scan_id: int | None = None,
) -> None:
    await conn.execute(
        """
        INSERT INTO run_images (run_id, reference, repository, status, detail, uses,
                                scan_id)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (run_id, reference) DO UPDATE SET status = EXCLUDED.status,
            detail = EXCLUDED.detail, uses = EXCLUDED.uses,
            scan_id = EXCLUDED.scan_id
        """,
        (
            run_id,
            image.reference,
            image.repository,
            status,
            detail,
            json.dumps([use.model_dump() for use in image.uses]),
            scan_id,
        ),
    )


async def _upsert_skip(
    conn: psycopg.AsyncConnection[Any], run_id: int, skip: ImageSkip
) -> None:
    detail = f"{skip.reason.value}: {skip.detail}" if skip.detail else skip.reason.value
    await conn.execute(
        """
        INSERT INTO run_images (run_id, reference, repository, status, detail, uses)
        VALUES (%s, %s, '', 'skipped', %s, %s)
        ON CONFLICT (run_id, reference) DO UPDATE SET status = 'skipped',
            detail = EXCLUDED.detail
        """,
        (
            run_id,
            skip.reference,
            detail,
            json.dumps([use.model_dump() for use in skip.uses]),
        ),
    )


async def _record_failure(
    conn: psycopg.AsyncConnection[Any], run_id: int, failure: ImageFailure
) -> None:
    await conn.execute(
        """
        INSERT INTO scan_errors (run_id, reference, kind, reason, message)
        VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (run_id, reference) DO UPDATE SET kind = EXCLUDED.kind,
            reason = EXCLUDED.reason, message = EXCLUDED.message
        """,
        (
            run_id,
            failure.reference,
            failure.kind.value,
            failure.reason,
            failure.message,
        ),
    )
    # The last good scan of the same reference still stands for the image.
    await conn.execute(
        """
        UPDATE run_images SET status = 'failed', detail = %s,
            scan_id = (SELECT id FROM scans WHERE reference = %s AND run_id < %s
                       ORDER BY id DESC LIMIT 1)
        WHERE run_id = %s AND reference = %s
        """,
        (
            f"{failure.kind.value}: {failure.reason}",
            failure.reference,
            run_id,
            run_id,
            failure.reference,
        ),
    )


async def _previous_run(conn: psycopg.AsyncConnection[Any], run_id: int) -> int | None:
    cursor = await conn.execute(
        "SELECT id FROM scan_runs WHERE id < %s"
        " AND status IN ('completed', 'partial') ORDER BY id DESC LIMIT 1",
        (run_id,),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    value = row["id"] if isinstance(row, dict) else row[0]
    return int(value)


def _report_row(row: dict[str, Any]) -> ReportRow:
    return ReportRow(
        reference=row["reference"],
        uses=row["uses"],
        vulnerability_id=row["vulnerability_id"],
        severity=row["severity"],
        pkg_name=row["pkg_name"],
        installed_version=row["installed_version"],
        fixed_version=row["fixed_version"],
        status=row["status"],
        title=row["title"],
        target=row["target"],
        scanned_at=row["scanned_at"],
    )


def _classify(error: psycopg.Error | PoolTimeout, doing: str) -> Exception:
    detail = _first_line(error)
    if isinstance(error, psycopg.OperationalError | PoolTimeout):
        return StoreUnavailable(f"PostgreSQL unavailable while {doing}: {detail}")
    if isinstance(
        error, psycopg.errors.SerializationFailure | psycopg.errors.DeadlockDetected
    ):
        return StoreUnavailable(f"PostgreSQL conflict while {doing}: {detail}")
    return StoreRejected(f"PostgreSQL refused {doing}: {detail}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _span_attrs() -> dict[str, str]:
    return {"peer.service": "postgres", "db.system": "postgresql"}
