"""The settings a role's worker reads, built from the lab's parts.

Shared by the role tests and the full lab (tests/lab/full_lab.py), so both
configure the backup and trivy roles the same way.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from infraops.config import TrivySettings
from tests.lab.postgres import PostgresCluster
from tests.lab.s3_quota import ACCESS_KEY, SECRET_KEY
from tests.lab.trivy_server import TrivyServerStub


def settings_env(settings: BaseSettings) -> dict[str, str]:
    """The settings as the worker's environment variables."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[name.upper()] = str(value)
    return env


def trivy_settings(
    pg: PostgresCluster,
    database: str,
    server: TrivyServerStub,
    directory: Path,
    *,
    user: str,
    password: str,
    token: str,
) -> TrivySettings:
    """The trivy role against the stub server, its stand-in CLI and `database`."""
    return TrivySettings(
        trivy_server_addr=server.url,
        trivy_token=SecretStr(token),
        trivy_bin=str(server.write_cli(directory)),
        trivy_cache_dir=directory / "trivy-cache",
        trivy_timeout=30,
        trivy_db_host=pg.host,
        trivy_db_port=pg.port,
        trivy_db_user=user,
        trivy_db_password=SecretStr(password),
        trivy_db_name=database,
        db_sslmode="disable",
    )


def backup_env(
    *,
    local: Path,
    pg: PostgresCluster,
    nomad_url: str,
    nomad_token: str,
    consul_url: str,
    consul_token: str,
    s3_url: str,
    bucket: str,
    prefix: str,
    dump_concurrency: int = 3,
    lock_wait_timeout: float = 1,
) -> dict[str, str]:
    """The backup role's variables: local directory, PostgreSQL, Nomad, Consul, S3."""
    return {
        "BACKUP_LOCAL_DIR": str(local),
        "NOMAD_ADDR": nomad_url,
        "NOMAD_TOKEN": nomad_token,
        "CONSUL_HTTP_ADDR": consul_url,
        "CONSUL_HTTP_TOKEN": consul_token,
        "PG_HOST": pg.host,
        "PG_PORT": str(pg.port),
        "PG_USER": pg.user,
        "PGPASSWORD": pg.password,
        "PG_DUMP_CONCURRENCY": str(dump_concurrency),
        "PG_LOCK_WAIT_TIMEOUT": str(lock_wait_timeout),
        "S3_ENDPOINT": s3_url,
        "S3_BUCKET": bucket,
        "S3_PREFIX": prefix,
        "S3_ACCESS_KEY": ACCESS_KEY,
        "S3_SECRET_KEY": SECRET_KEY,
        "S3_REGION": "us-east-1",
    }
