"""The restore drill: prove that the newest dump of a database restores.

The dump is restored into a scratch database on the same server, with the
database-level settings, grants, comment and owner that only come back with
`pg_restore --create` (applied to the scratch name instead). Row counts per
table are compared with the archive's own COPY data, the database-level
properties with the live source database; then the scratch database is
dropped, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from temporalio import activity

from infraops.activity_support import classified
from infraops.backup import pgtools, processes
from infraops.backup.activities import local_runs
from infraops.backup.archive import sha256_file
from infraops.backup.models import (
    Artifact,
    DrillConfig,
    DrillResult,
    Kind,
    RunStatus,
    TableCount,
)
from infraops.clients.postgres import PostgresClient
from infraops.config import BackupSettings
from infraops.errors import PermanentError, TransientError

log = logging.getLogger(__name__)

_CREATE = re.compile(r'^CREATE DATABASE (?P<ident>"(?:[^"]|"")*"|\S+) ')
_DB_LEVEL = re.compile(
    r"^(ALTER DATABASE |COMMENT ON DATABASE |ALTER ROLE .* IN DATABASE |"
    r"(GRANT|REVOKE) .* ON DATABASE )",
    re.S,
)
_IDENT = r'(?:"(?:[^"]|"")*"|[^\s."(]+)'
_COPY = re.compile(rf"^COPY (?P<table>{_IDENT}\.{_IDENT}) .*FROM stdin;$")


class DrillActivities:
    def __init__(self, settings: BackupSettings, postgres: PostgresClient) -> None:
        self._settings = settings
        self._postgres = postgres

    @activity.defn(name="RestoreDrill")
    @classified
    async def restore_drill(self, config: DrillConfig) -> DrillResult:
        return await run_drill(self._settings, self._postgres, config, _beat)


def _beat(detail: str) -> None:
    activity.heartbeat(detail)


def find_dump(root: Path, database: str, run_id: str | None) -> tuple[str, Artifact]:
    """The newest committed, non-failed run holding a dump of `database`."""
    runs = sorted(local_runs(root), key=lambda run: run.started, reverse=True)
    for run in runs:
        manifest = run.manifest
        if manifest is None or (run_id and run.run_id != run_id):
            continue
        if manifest.status is RunStatus.FAILED and not run_id:
            continue
        for artifact in manifest.artifacts:
            if artifact.kind is Kind.PG_DATABASE and artifact.database == database:
                return run.run_id, artifact
    where = f"run {run_id}" if run_id else f"any good run under {root}"
    raise PermanentError(f"no dump of database {database!r} in {where}")


async def run_drill(
    settings: BackupSettings,
    postgres: PostgresClient,
    config: DrillConfig,
    beat: Any = None,
) -> DrillResult:
    started = time.monotonic()
    tick = (lambda: beat("drill")) if beat else (lambda: None)
    run_id, artifact = find_dump(
        settings.backup_local_dir, config.database, config.run_id
    )
    path = settings.backup_local_dir / run_id / artifact.name
    sha256, _ = await asyncio.to_thread(sha256_file, path)
    if sha256 != artifact.sha256:
        raise PermanentError(
            f"{path} does not match its manifest (sha256 {sha256}, "
            f"expected {artifact.sha256}): the dump is damaged"
        )
    server = await postgres.server()
    tools = await asyncio.to_thread(
        pgtools.choose, server.major, server.version, postgres.settings.pg_bindirs
    )
    env = processes.child_env(postgres.child_env())
    create, properties = await _database_statements(tools, path, env, tick)
    archive_counts = await _archive_counts(tools, path, env, tick)
    scratch = f"infraops_drill_{uuid.uuid4().hex[:8]}"
    differences: list[str] = []
    try:
        async with postgres.connect("postgres") as admin:
            await _execute(admin, _rename(create, scratch))
            for statement in properties:
                await _execute(admin, _rename(statement, scratch))
        done = await processes.run(
            [
                tools.tool("pg_restore"),
                "--no-password",
                "--exit-on-error",
                f"--dbname={pgtools.conninfo(scratch)}",
                str(path),
            ],
            env,
            tick=tick,
        )
        if done.returncode != 0:
            differences.append(f"pg_restore failed: {processes.last_line(done.stderr)}")
        tables = await _compare_rows(postgres, config.database, scratch, archive_counts)
        for table in tables:
            if table.restored_rows != table.archive_rows:
                differences.append(
                    f"{table.table}: {table.restored_rows} rows restored, "
                    f"{table.archive_rows} in the archive"
                )
        settings_ok, grants_ok, more = await _compare_database(
            postgres, config.database, scratch
        )
        differences += more
    finally:
        with contextlib.suppress(Exception):
            async with postgres.connect("postgres") as admin:
                await admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(scratch)
                    )
                )
    return DrillResult(
        database=config.database,
        run_id=run_id,
        artifact=artifact.name,
        scratch_database=scratch,
        ok=not differences,
        tables=tables,
        settings_match=settings_ok,
        grants_match=grants_ok,
        differences=differences,
        duration_seconds=round(time.monotonic() - started, 3),
    )


async def _database_statements(
    tools: pgtools.Toolset, path: Path, env: dict[str, str], tick: Any
) -> tuple[str, list[str]]:
    """The archive's CREATE DATABASE and its database-level statements."""
    script = bytearray()

    async def take(chunk: bytes) -> None:
        script.extend(chunk)

    done = await processes.run(
        [tools.tool("pg_restore"), "--create", "--schema-only", "--file=-", str(path)],
        env,
        tick=tick,
        stdout=take,
    )
    if done.returncode != 0:
        raise PermanentError(
            f"pg_restore cannot read {path.name}: {processes.last_line(done.stderr)}"
        )
    create = ""
    ident = ""
    properties = []
    for statement in _statements(script.decode("utf-8", "replace")):
        match = _CREATE.match(statement)
        if match and not create:
            create, ident = statement, match.group("ident")
        elif ident and _DB_LEVEL.match(statement) and f"DATABASE {ident}" in statement:
            properties.append(statement)
    if not create:
        raise PermanentError(f"{path.name} holds no CREATE DATABASE entry")
    return create.replace(f"DATABASE {ident}", "DATABASE {scratch}", 1), [
        s.replace(f"DATABASE {ident}", "DATABASE {scratch}", 1) for s in properties
    ]


def _statements(script: str) -> list[str]:
    """SQL statements of a pg_restore script, meta-commands and SETs left out."""
    statements: list[str] = []
    current: list[str] = []
    quotes = 0
    for line in script.splitlines():
        if not current and (
            not line.strip() or line.startswith(("--", "\\", "SET ", "SELECT "))
        ):
            continue
        current.append(line)
        quotes += line.count("'")
        if line.rstrip().endswith(";") and quotes % 2 == 0:
            statements.append("\n".join(current))
            current, quotes = [], 0
    return statements


def _rename(statement: str, scratch: str) -> str:
    quoted = '"' + scratch.replace('"', '""') + '"'
    return statement.replace("DATABASE {scratch}", f"DATABASE {quoted}")


async def _execute(connection: psycopg.AsyncConnection[Any], statement: str) -> None:
    try:
        await connection.execute(statement.encode())
    except psycopg.Error as error:
        raise TransientError(f"restore drill: {str(error).strip()}") from None


async def _archive_counts(
    tools: pgtools.Toolset, path: Path, env: dict[str, str], tick: Any
) -> dict[str, int]:
    """Rows per table in the archive's COPY data, counted as it streams."""
    counts: dict[str, int] = {}
    state: dict[str, Any] = {"table": None, "rest": b""}

    async def take(chunk: bytes) -> None:
        data = state["rest"] + chunk
        lines = data.split(b"\n")
        state["rest"] = lines.pop()
        for line in lines:
            table = state["table"]
            if table is None:
                if line.startswith(b"COPY "):
                    match = _COPY.match(line.decode("utf-8", "replace"))
                    if match:
                        state["table"] = match.group("table")
                        counts.setdefault(state["table"], 0)
            elif line == b"\\.":
                state["table"] = None
            else:
                counts[table] += 1

    done = await processes.run(
        [tools.tool("pg_restore"), "--data-only", "--file=-", str(path)],
        env,
        tick=tick,
        stdout=take,
    )
    if done.returncode != 0:
        raise PermanentError(
            f"pg_restore cannot read {path.name}: {processes.last_line(done.stderr)}"
        )
    return counts


async def _compare_rows(
    postgres: PostgresClient, source: str, scratch: str, archive: dict[str, int]
) -> list[TableCount]:
    restored = await _count(postgres, scratch, archive)
    try:
        live: dict[str, int | None] = dict(await _count(postgres, source, archive))
    except Exception:  # the source may be gone: the drill still stands
        live = {}
    return [
        TableCount(
            table=table,
            archive_rows=archive[table],
            restored_rows=restored.get(table, -1),
            source_rows=live.get(table),
        )
        for table in sorted(archive)
    ]


async def _count(
    postgres: PostgresClient, dbname: str, tables: dict[str, int]
) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with postgres.connect(dbname) as connection:
        for table in tables:
            # `table` is pg_dump's own quoted, qualified name from the archive.
            query = f"SELECT count(*) FROM {table}".encode()  # noqa: S608
            try:
                cursor = await connection.execute(query)
                row = await cursor.fetchone()
                counts[table] = int(row[0]) if row else -1
            except psycopg.Error:
                counts[table] = -1
    return counts


_PROPERTIES = """
SELECT pg_get_userbyid(d.datdba),
       coalesce(shobj_description(d.oid, 'pg_database'), ''),
       d.datconnlimit,
       coalesce((SELECT array_agg(x ORDER BY x) FROM unnest(d.datacl::text[]) x),
                '{}'),
       coalesce((SELECT array_agg(coalesce(s.setrole::regrole::text, '*') || ':' ||
                                  array_to_string(s.setconfig, ',')
                                  ORDER BY 1)
                 FROM pg_db_role_setting s WHERE s.setdatabase = d.oid), '{}')
FROM pg_database d WHERE d.datname = %s
"""


async def _compare_database(
    postgres: PostgresClient, source: str, scratch: str
) -> tuple[bool, bool, list[str]]:
    async with postgres.connect("postgres") as connection:
        rows = {}
        for name in (source, scratch):
            cursor = await connection.execute(_PROPERTIES, (name,))
            rows[name] = await cursor.fetchone()
    mine, theirs = rows[scratch], rows[source]
    if theirs is None:
        return False, False, [f"source database {source!r} is gone: nothing to compare"]
    if mine is None:
        return False, False, [f"scratch database {scratch!r} is missing"]
    differences = []
    names = ("owner", "comment", "connection limit", "grants", "settings")
    for label, restored, original in zip(names, mine, theirs, strict=True):
        if restored != original:
            differences.append(
                f"database {label}: restored {restored!r}, source {original!r}"
            )
    settings_ok = mine[4] == theirs[4] and mine[1] == theirs[1] and mine[2] == theirs[2]
    grants_ok = mine[3] == theirs[3] and mine[0] == theirs[0]
    return settings_ok, grants_ok, differences
