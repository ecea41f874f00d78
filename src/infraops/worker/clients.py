"""The clients a worker process shares between all activity invocations."""

from __future__ import annotations

from functools import cached_property

from infraops.clients.consul import ConsulClient
from infraops.clients.nomad import NomadClient
from infraops.clients.postgres import PostgresClient
from infraops.clients.s3 import S3Store
from infraops.clients.ssh import SSHClient
from infraops.clients.trivy import TrivyClient
from infraops.config import (
    BackupSettings,
    ConsulSettings,
    NomadSettings,
    PostgresSettings,
    S3Settings,
    SSHSettings,
    TrivySettings,
    load,
)
from infraops.trivy.store import TrivyStore


class Clients:
    """Builds each client on first use from its settings; closes them all."""

    @cached_property
    def nomad(self) -> NomadClient:
        return NomadClient(load(NomadSettings))

    @cached_property
    def ssh(self) -> SSHClient:
        return SSHClient(load(SSHSettings))

    @cached_property
    def trivy(self) -> TrivyClient:
        return TrivyClient(load(TrivySettings))

    @cached_property
    def trivy_store(self) -> TrivyStore:
        return TrivyStore(load(TrivySettings))

    @cached_property
    def backup_settings(self) -> BackupSettings:
        return load(BackupSettings)

    @cached_property
    def postgres(self) -> PostgresClient:
        return PostgresClient(load(PostgresSettings))

    @cached_property
    def consul(self) -> ConsulClient:
        return ConsulClient(load(ConsulSettings))

    @cached_property
    def s3(self) -> S3Store | None:
        """The off-site store, or None without S3_BUCKET."""
        settings = load(S3Settings)
        return S3Store(settings) if settings.enabled else None

    async def aclose(self) -> None:
        if "consul" in self.__dict__:
            await self.consul.aclose()
        if "trivy" in self.__dict__:
            await self.trivy.aclose()
        if "trivy_store" in self.__dict__:
            await self.trivy_store.aclose()
        if "nomad" in self.__dict__:
            await self.nomad.aclose()
        if "ssh" in self.__dict__:
            await self.ssh.aclose()
