"""A real PostgreSQL cluster and the Trivy server stub for the trivy tests."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from infraops.config import TrivySettings
from infraops.trivy.store import TrivyStore
from tests.lab.postgres import PostgresCluster
from tests.lab.role_env import trivy_settings
from tests.lab.trivy_server import TrivyServerStub

OWN = Path(__file__).parents[2] / "fixtures" / "trivy"
SHARED = Path("/work/shared/fixtures/trivy")
TRIVY_TOKEN = "lab-trivy-token-3e9a"
DB_USER = "scanner"
DB_PASSWORD = "lab-db-password-71c4"
_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresCluster]:
    # Not under pytest's own temporary root: a concurrent pytest session resets
    # that to 0700, which locks the postgres user out of its data directory.
    root = Path(tempfile.mkdtemp(prefix="infraops-trivy-pg-"))
    try:
        with PostgresCluster(root / "cluster") as cluster:
            cluster.psql(f"CREATE ROLE {DB_USER} LOGIN PASSWORD '{DB_PASSWORD}'")
            yield cluster
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def database(pg: PostgresCluster) -> str:
    """A fresh, empty database owned by the scanner role."""
    name = f"trivy_{next(_numbers)}"
    pg.psql(f"CREATE DATABASE {name} OWNER {DB_USER}")
    return name


@pytest.fixture
def trivy_server() -> Iterator[TrivyServerStub]:
    with TrivyServerStub(token=TRIVY_TOKEN) as server:
        yield server


@pytest.fixture
def settings(
    pg: PostgresCluster, database: str, trivy_server: TrivyServerStub, tmp_path: Path
) -> TrivySettings:
    return trivy_settings(
        pg,
        database,
        trivy_server,
        tmp_path,
        user=DB_USER,
        password=DB_PASSWORD,
        token=TRIVY_TOKEN,
    )


@pytest.fixture
async def store(settings: TrivySettings) -> AsyncIterator[TrivyStore]:
    store = TrivyStore(settings)
    await store.migrate()
    yield store
    await store.aclose()


def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not present (the shared real Trivy reports)")
    return SHARED
