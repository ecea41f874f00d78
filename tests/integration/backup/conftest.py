"""Real parts for the backup role: a PostgreSQL cluster with awkward
databases, moto's S3 behind a quota stand-in, Nomad and Consul simulators."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from tests.lab.consul_sim import ConsulSim
from tests.lab.nomad_sim import NomadSim
from tests.lab.postgres import PostgresCluster
from tests.lab.role_env import backup_env
from tests.lab.s3_quota import MotoS3, QuotaProxy

NOMAD_TOKEN = "nomad-lab-token-5e1f"
CONSUL_TOKEN = "consul-lab-token-77aa"
RO_PASSWORD = "ro-lab-password-3c9d"

# Names the server accepts and a careless tool mangles.
AWKWARD = [
    "Weird db",
    "weird db",
    "ünïcödé-db",
    'quo"ted',
    "it's",
    "a=b",
    "postgresql://evil",
    "semi;colon",
    "back\\slash",
    "dot.and-dash",
    "-leading-dash",
    "x" * 63,
]


def seed(pg: PostgresCluster) -> None:
    pg.psql("CREATE ROLE app LOGIN PASSWORD 'app-lab-password'")
    pg.psql(
        f"CREATE ROLE backup_ro LOGIN PASSWORD '{RO_PASSWORD}' IN ROLE pg_read_all_data"
    )
    for name in AWKWARD:
        quoted = '"' + name.replace('"', '""') + '"'
        pg.psql(f"CREATE DATABASE {quoted} OWNER app")
    pg.psql("CREATE TABLE t (id int primary key, note text)", dbname="Weird db")
    pg.psql(
        "INSERT INTO t SELECT g, repeat('n', g % 50) FROM generate_series(1, 2500) g",
        dbname="Weird db",
    )
    pg.psql(
        'CREATE SCHEMA "Odd Schema"; CREATE TABLE "Odd Schema"."Tab le" (v text); '
        "INSERT INTO \"Odd Schema\".\"Tab le\" VALUES ('a\nb'), (E'tab\\there'), "
        "('back\\\\slash'), (NULL)",
        dbname="Weird db",
    )
    pg.psql(
        "ALTER DATABASE \"Weird db\" SET work_mem = '7MB'; "
        'REVOKE CONNECT ON DATABASE "Weird db" FROM PUBLIC; '
        'GRANT CONNECT ON DATABASE "Weird db" TO backup_ro; '
        "COMMENT ON DATABASE \"Weird db\" IS 'awkward, on purpose'; "
        'ALTER ROLE app IN DATABASE "Weird db" SET search_path = public'
    )
    pg.psql("CREATE DATABASE big")
    pg.psql(
        "CREATE TABLE blob (id int, payload text); INSERT INTO blob "
        "SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 60000) g",
        dbname="big",
    )
    pg.psql("CREATE DATABASE locked")
    pg.psql("CREATE TABLE held (id int); INSERT INTO held VALUES (1)", dbname="locked")
    pg.psql("CREATE DATABASE noconn")
    pg.psql("ALTER DATABASE noconn ALLOW_CONNECTIONS false")
    pg.psql("CREATE DATABASE user_template")
    pg.psql(
        "CREATE TABLE seed (v int); INSERT INTO seed VALUES (42)",
        dbname="user_template",
    )
    pg.psql("ALTER DATABASE user_template IS_TEMPLATE true")
    pg.psql("CREATE DATABASE broken_drop")
    pg.psql("UPDATE pg_database SET datconnlimit = -2 WHERE datname = 'broken_drop'")


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresCluster]:
    # Not under pytest's 0700 tmp tree: the server runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="infraops-backup-pg-"))
    try:
        with PostgresCluster(root) as cluster:
            seed(cluster)
            yield cluster
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoS3]:
    with MotoS3() as server:
        yield server


@pytest.fixture(scope="session")
def s3_proxy(moto: MotoS3) -> Iterator[QuotaProxy]:
    with QuotaProxy(moto) as proxy:
        yield proxy


@pytest.fixture
def nomad() -> Iterator[NomadSim]:
    with NomadSim(token=NOMAD_TOKEN) as sim:
        yield sim


@pytest.fixture
def consul() -> Iterator[ConsulSim]:
    with ConsulSim(token=CONSUL_TOKEN) as sim:
        yield sim


@dataclass
class Lab:
    local: Path
    prefix: str
    pg: PostgresCluster
    nomad: NomadSim
    consul: ConsulSim
    moto: MotoS3
    proxy: QuotaProxy
    monkeypatch: pytest.MonkeyPatch

    def use_role(self, user: str, password: str) -> None:
        self.monkeypatch.setenv("PG_USER", user)
        self.monkeypatch.setenv("PGPASSWORD", password)


@pytest.fixture
def lab(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pg: PostgresCluster,
    nomad: NomadSim,
    consul: ConsulSim,
    moto: MotoS3,
    s3_proxy: QuotaProxy,
) -> Iterator[Lab]:
    local = tmp_path / "backups"
    local.mkdir()
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    for key in [k for k in os.environ if k.startswith("PG")]:
        monkeypatch.delenv(key)
    env = backup_env(
        local=local,
        pg=pg,
        nomad_url=nomad.url,
        nomad_token=NOMAD_TOKEN,
        consul_url=consul.url,
        consul_token=CONSUL_TOKEN,
        s3_url=s3_proxy.url,
        bucket=moto.bucket,
        prefix=prefix,
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s3_proxy.set_quota(None)
    s3_proxy.always = None
    yield Lab(local, prefix, pg, nomad, consul, moto, s3_proxy, monkeypatch)
    s3_proxy.set_quota(None)
    s3_proxy.always = None


@pytest.fixture
async def backup_worker(
    temporal_client: Client, lab: Lab
) -> AsyncIterator[tuple[Client, str]]:
    """A backup worker on a private task queue, built from the lab's env."""
    from infraops.worker.clients import Clients
    from infraops.worker.roles import BACKUP
    from infraops.worker.run import build_worker

    clients = Clients()
    queue = f"backup-{uuid.uuid4().hex[:8]}"
    worker: Worker = build_worker(temporal_client, BACKUP, clients, task_queue=queue)
    async with worker:
        yield temporal_client, queue
    await clients.aclose()
