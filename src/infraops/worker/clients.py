"""The clients a worker process shares between all activity invocations."""

from __future__ import annotations

from functools import cached_property

from infraops.clients.nomad import NomadClient
from infraops.clients.ssh import SSHClient
from infraops.config import NomadSettings, SSHSettings, load


class Clients:
    """Builds each client on first use from its settings; closes them all."""

    @cached_property
    def nomad(self) -> NomadClient:
        return NomadClient(load(NomadSettings))

    @cached_property
    def ssh(self) -> SSHClient:
        return SSHClient(load(SSHSettings))

    async def aclose(self) -> None:
        if "nomad" in self.__dict__:
            await self.nomad.aclose()
        if "ssh" in self.__dict__:
            await self.ssh.aclose()
