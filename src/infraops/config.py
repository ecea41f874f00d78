"""Settings read from the environment, one model per concern.

Every field is named after its environment variable, so an error can name the
variable the operator has to fix. Secrets are `SecretStr` and print redacted.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, TypeVar, get_args

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infraops.errors import ConfigError


class Settings(BaseSettings):
    """Base of every settings model: env names, secrets kept out of errors."""

    model_config = SettingsConfigDict(
        case_sensitive=False,
        extra="ignore",
        hide_input_in_errors=True,
        allow_inf_nan=False,
    )

    # Variables a deployment must set: their defaults only suit a laptop.
    required: ClassVar[frozenset[str]] = frozenset()

    def check(self) -> None:
        """Checks beyond the values' syntax, such as files that must exist."""

    @classmethod
    def env_names(cls) -> set[str]:
        """The environment variables this model reads."""
        return {(info.alias or name).upper() for name, info in cls.model_fields.items()}

    @classmethod
    def secret_names(cls) -> set[str]:
        """The variables holding secrets, which are never printed."""
        return {
            (info.alias or name).upper()
            for name, info in cls.model_fields.items()
            if info.annotation is SecretStr or SecretStr in get_args(info.annotation)
        }


class TemporalSettings(Settings):
    required = frozenset({"TEMPORAL_ADDRESS"})

    temporal_address: str = Field(default="localhost:7233", min_length=1)
    temporal_namespace: str = Field(default="default", min_length=1)


class TelemetrySettings(Settings):
    otel_exporter_otlp_endpoint: str = "tempo.service.consul:4317"
    metrics_listen: str = ":9090"
    log_level: str = Field(default="INFO", alias="INFRAOPS_LOG_LEVEL")

    @field_validator("metrics_listen")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        _, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected [HOST]:PORT, for example :9090")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @property
    def metrics_bind_address(self) -> str:
        """`METRICS_LISTEN` with an empty host meaning every interface."""
        host, _, port = self.metrics_listen.rpartition(":")
        return f"{host or '0.0.0.0'}:{port}"  # noqa: S104 (an exporter serves all)


class WorkerSettings(Settings):
    worker_shutdown_grace: float = Field(default=30.0, ge=0)


class NomadSettings(Settings):
    required = frozenset({"NOMAD_ADDR", "NOMAD_TOKEN"})

    nomad_addr: str = "http://127.0.0.1:4646"
    nomad_token: SecretStr | None = None
    nomad_namespace: str | None = None
    nomad_cacert: Path | None = None
    nomad_client_cert: Path | None = None
    nomad_client_key: Path | None = None

    @field_validator("nomad_addr")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected a URL such as https://nomad.service.consul:4646")
        return value.rstrip("/")

    @field_validator("nomad_cacert", "nomad_client_cert", "nomad_client_key")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        return _existing_file(value)


class SSHSettings(Settings):
    required = frozenset({"SSH_KEY_PATH", "SSH_CERT_PATH", "SSH_HOST_CA_PATH"})

    ssh_user: str = "root"
    ssh_port: int = Field(default=22, gt=0, lt=65536)
    ssh_key_path: Path = Path("/root/.ssh/id_ed25519")
    ssh_cert_path: Path = Path("/root/.ssh/id_ed25519-cert.pub")
    ssh_host_ca_path: Path = Path("/root/.ssh/ssh-host-ca.pub")
    ssh_connect_timeout: float = Field(default=10.0, gt=0)

    def check(self) -> None:
        self.require_files()

    def require_files(self) -> None:
        """Fail with the variable's name unless every key file exists."""
        for name in ("ssh_key_path", "ssh_cert_path", "ssh_host_ca_path"):
            path: Path = getattr(self, name)
            if not path.is_file():
                raise ConfigError(
                    f"{name.upper()}: {path} is not a readable file; point it at "
                    "the worker's SSH key material"
                )


def _existing_file(value: Path | None) -> Path | None:
    if value is not None and not value.is_file():
        raise ValueError(f"{value} is not a readable file")
    return value


S = TypeVar("S", bound=BaseSettings)


def load(model: type[S], **overrides: Any) -> S:
    """Read `model` from the environment, turning errors into `ConfigError`.

    The message names each variable and what is wrong with it; the value
    itself is never repeated, since it may be a secret.
    """
    try:
        return model(**overrides)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, env=True)) from None


def describe_validation_error(error: ValidationError, *, env: bool = False) -> str:
    """One line per problem, naming the field (or variable) and the fix."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "(document)"
        if env:
            where = where.upper()
        lines.append(f"{where}: {problem['msg']}")
    return "; ".join(lines)


class TrivySettings(Settings):
    required = frozenset(
        {"TRIVY_SERVER_ADDR", "TRIVY_DB_HOST", "TRIVY_DB_USER", "TRIVY_DB_PASSWORD"}
    )

    """The trivy role: the Trivy server, the CLI and the results database."""

    trivy_server_addr: str = "http://trivy-server.service.consul:4954"
    trivy_token: SecretStr | None = None
    trivy_token_header: str = "Trivy-Token"  # noqa: S105 (a header name)
    trivy_bin: str = "trivy"
    trivy_cache_dir: Path = Path("/var/cache/infraops-trivy")
    trivy_timeout: float = Field(default=25 * 60, gt=0)
    trivy_db_host: str = "postgres-shared.service.consul"
    trivy_db_port: int = Field(default=5432, gt=0, lt=65536)
    trivy_db_user: str | None = None
    trivy_db_password: SecretStr | None = None
    trivy_db_name: str = "trivy"
    db_sslmode: str = "verify-ca"
    db_sslrootcert: Path | None = None

    @field_validator("trivy_server_addr")
    @classmethod
    def _server_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected a URL such as http://trivy-server:4954")
        return value.rstrip("/")

    @field_validator("db_sslmode")
    @classmethod
    def _sslmode(cls, value: str) -> str:
        modes = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
        if value not in modes:
            raise ValueError(f"expected one of {', '.join(modes)}")
        return value

    @field_validator("db_sslrootcert")
    @classmethod
    def _ca_readable(cls, value: Path | None) -> Path | None:
        return _existing_file(value)


class BackupSettings(Settings):
    required = frozenset({"BACKUP_LOCAL_DIR"})

    """The backup role: where runs are kept and how many dumps run at once."""

    backup_local_dir: Path = Path("/mnt/backups")

    @field_validator("backup_local_dir", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty; set it to the mounted backup volume")
        return value

    pg_dump_concurrency: int = Field(default=4, ge=1, le=64)
    backup_age_recipients: str | None = None

    @field_validator("backup_age_recipients")
    @classmethod
    def _age_keys(cls, value: str | None) -> str | None:
        if value is not None and not all(
            key.startswith("age1") for key in value.replace(",", " ").split()
        ):
            raise ValueError("expected age recipients (age1...), comma separated")
        return value or None

    @property
    def age_recipients(self) -> list[str]:
        return (self.backup_age_recipients or "").replace(",", " ").split()

    def check(self) -> None:
        if not self.backup_local_dir.is_dir():
            raise ConfigError(
                f"BACKUP_LOCAL_DIR: {self.backup_local_dir} is not a directory; "
                "point it at the mounted backup volume"
            )


class PostgresSettings(Settings):
    required = frozenset({"PG_HOST", "PGPASSWORD"})

    """The server the backup role dumps; the password reaches only pg_dump."""

    pg_host: str = "postgres-primary.service.consul"
    pg_port: int = Field(default=5432, gt=0, lt=65536)
    pg_user: str = "postgres"
    pgpassword: SecretStr | None = None
    pg_lock_wait_timeout: float = Field(default=60.0, gt=0)
    pg_bindirs: str = ""


class S3Settings(Settings):
    required = frozenset({"S3_ENDPOINT", "S3_BUCKET", "S3_ACCESS_KEY", "S3_SECRET_KEY"})

    """Off-site copies; without S3_BUCKET the backup role keeps runs locally."""

    s3_endpoint: str | None = None
    s3_bucket: str | None = None
    s3_prefix: str = "backups"
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    s3_region: str = "us-east-1"

    @field_validator("s3_endpoint")
    @classmethod
    def _endpoint_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("expected a URL such as https://s3.example.org")
        return value or None

    @property
    def enabled(self) -> bool:
        return bool(self.s3_bucket)


class ConsulSettings(Settings):
    required = frozenset({"CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN"})

    consul_http_addr: str = "http://127.0.0.1:8500"
    consul_http_token: SecretStr | None = None

    @field_validator("consul_http_addr")
    @classmethod
    def _url(cls, value: str) -> str:
        if "://" not in value:
            value = f"http://{value}"
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected host:port or a URL such as http://consul:8500")
        return value.rstrip("/")


def env_names(models: Iterable[type[Settings]]) -> set[str]:
    """Every environment variable the given settings models read."""
    return {name for model in models for name in model.env_names()}
