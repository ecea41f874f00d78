"""The PostgreSQL server the backup role dumps, seen through libpq.

Connections are short-lived (a probe, a listing); the dumps themselves run
as pg_dump processes that receive `child_env()`. The password lives only in
that environment and in libpq's connection parameters, never in argv, a log
line, an error or a span.

libpq reports connection failures as text only (psycopg has no SQLSTATE
before the session exists), so `classify_text` reads the stable inner parts
of the messages listed in ../shared/notes/backup-facts.md; it serves pg_dump's
stderr too.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import psycopg
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from infraops.config import PostgresSettings
from infraops.errors import PermanentError, TransientError

tracer = trace.get_tracer(__name__)
PEER = "postgres-primary"


class Problem(StrEnum):
    GONE = "database does not exist"
    REFUSES = "database does not accept connections"
    INVALID = "database is invalid (an interrupted DROP DATABASE)"
    AUTH = "authentication failed"
    LOCK = "lock wait timed out"
    DISK = "disk full"
    VERSION = "pg_dump is older than the server"
    TERMINATED = "terminated"
    UNREACHABLE = "server unreachable"
    OTHER = "failed"


_PATTERNS: list[tuple[re.Pattern[str], Problem]] = [
    (re.compile(r'database ".*" does not exist', re.S), Problem.GONE),
    (re.compile(r"is not currently accepting connections"), Problem.REFUSES),
    (re.compile(r"cannot connect to invalid database"), Problem.INVALID),
    (
        re.compile(
            r"password authentication failed|no password supplied|"
            r'role ".*" does not exist|pg_hba\.conf rejects|'
            r"permission denied for database",
            re.S,
        ),
        Problem.AUTH,
    ),
    (
        re.compile(
            r"canceling statement due to (statement|lock) timeout|"
            r"could not obtain lock|lock timeout"
        ),
        Problem.LOCK,
    ),
    (re.compile(r"No space left on device"), Problem.DISK),
    (re.compile(r"server version mismatch"), Problem.VERSION),
    (re.compile(r"terminated by user"), Problem.TERMINATED),
    (
        re.compile(
            r"Connection refused|could not translate host name|timeout expired|"
            r"server closed the connection|terminating connection|"
            r"Connection reset|could not connect to server|the database system is"
        ),
        Problem.UNREACHABLE,
    ),
]


def classify_text(text: str) -> Problem:
    for pattern, problem in _PATTERNS:
        if pattern.search(text):
            return problem
    return Problem.OTHER


class PostgresUnavailable(TransientError):
    """The server could not answer now."""


class PostgresRejected(PermanentError):
    """The server refused us (authentication, permissions)."""


class DatabaseUnavailable(PermanentError):
    """This database cannot be dumped: gone, refusing or invalid."""

    def __init__(self, message: str, problem: Problem) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True)
class Server:
    version: str
    version_num: int
    superuser: bool

    @property
    def major(self) -> int:
        return self.version_num // 10000


@dataclass(frozen=True)
class DatabaseRow:
    name: str
    allow_connections: bool
    connection_limit: int
    is_template: bool
    size: int


class PostgresClient:
    """libpq access to one server with the worker's credentials."""

    def __init__(self, settings: PostgresSettings) -> None:
        self.settings = settings

    def child_env(self) -> dict[str, str]:
        """libpq variables for pg_dump and friends (merged into a copy of the
        worker's environment by the caller)."""
        env = {
            "PGHOST": self.settings.pg_host,
            "PGPORT": str(self.settings.pg_port),
            "PGUSER": self.settings.pg_user,
            "PGCONNECT_TIMEOUT": "15",
            "PGAPPNAME": "infraops-backup",
        }
        if self.settings.pgpassword is not None:
            env["PGPASSWORD"] = self.settings.pgpassword.get_secret_value()
        return env

    @asynccontextmanager
    async def connect(self, dbname: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection to `dbname`, its failure classified."""
        password = self.settings.pgpassword
        try:
            connection = await psycopg.AsyncConnection.connect(
                host=self.settings.pg_host,
                port=self.settings.pg_port,
                user=self.settings.pg_user,
                password=password.get_secret_value() if password else None,
                dbname=dbname,
                connect_timeout=15,
                application_name="infraops-backup",
                autocommit=True,
            )
        except psycopg.Error as error:
            raise _classify(error, dbname) from None
        try:
            yield connection
        finally:
            await connection.close()

    async def server(self) -> Server:
        with _span("SELECT server"):
            async with self.connect("postgres") as connection:
                row = await _one(
                    connection,
                    "SELECT current_setting('server_version'), "
                    "current_setting('server_version_num')::int, "
                    "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
                )
        return Server(version=row[0], version_num=row[1], superuser=bool(row[2]))

    async def databases(self) -> list[DatabaseRow]:
        """Every row of pg_database, by name."""
        with _span("SELECT pg_database"):
            async with self.connect("postgres") as connection:
                try:
                    cursor = await connection.execute(
                        "SELECT datname, datallowconn, datconnlimit, datistemplate, "
                        "CASE WHEN datallowconn AND datconnlimit <> -2 "
                        "AND has_database_privilege(oid, 'CONNECT') "
                        "THEN pg_database_size(oid) ELSE 0 END "
                        "FROM pg_database ORDER BY datname"
                    )
                    rows = await cursor.fetchall()
                except psycopg.Error as error:
                    raise _classify(error, "postgres") from None
        return [
            DatabaseRow(r[0], bool(r[1]), int(r[2]), bool(r[3]), int(r[4] or 0))
            for r in rows
        ]

    async def probe(self, dbname: str) -> None:
        """Connect to `dbname` and leave: raises why it cannot be dumped."""
        with _span("connect"):
            async with self.connect(dbname):
                return


async def _one(connection: psycopg.AsyncConnection[Any], sql: str) -> Any:
    try:
        cursor = await connection.execute(sql)
        return await cursor.fetchone()
    except psycopg.Error as error:
        raise _classify(error, "postgres") from None


def _classify(error: psycopg.Error, dbname: str) -> Exception:
    # The first line carries the reason; libpq never echoes the password.
    text = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    problem = classify_text(text)
    if problem in (Problem.GONE, Problem.REFUSES, Problem.INVALID):
        return DatabaseUnavailable(f"database {dbname!r}: {text}", problem)
    if problem is Problem.AUTH:
        return PostgresRejected(f"PostgreSQL refused us: {text}")
    if isinstance(error, psycopg.OperationalError) or problem in (
        Problem.UNREACHABLE,
        Problem.LOCK,
    ):
        return PostgresUnavailable(f"PostgreSQL: {text}")
    return PostgresRejected(f"PostgreSQL: {text}")


def _span(name: str) -> Any:
    return tracer.start_as_current_span(
        f"postgres {name}",
        kind=SpanKind.CLIENT,
        attributes={"peer.service": PEER, "db.system": "postgresql"},
    )
