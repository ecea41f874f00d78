"""SSH to client nodes with certificates on both sides, through asyncssh.

The worker logs in with its key and user certificate; each node must present a
host certificate signed by the host CA, checked against the node's name. There
is deliberately no way to accept an unknown host key. Connections are reused
across activities, bounded per node and overall.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncssh
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from infraops.config import SSHSettings
from infraops.errors import (
    ConfigError,
    HostKeyRejected,
    HostNotEnrolled,
    PermanentError,
    TransientError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
tracer = trace.get_tracer(__name__)

_CERT_HOST_KEY_ALGS = [
    "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
]


@dataclass(frozen=True)
class Host:
    """A node as Nomad names it: the certificate must carry `name`."""

    name: str
    address: str


@dataclass(frozen=True)
class Completed:
    exit_status: int
    stdout: bytes
    stderr: bytes


class SSHClient:
    """Runs argv commands on nodes over verified, pooled SSH connections."""

    def __init__(
        self, settings: SSHSettings, *, per_host: int = 4, total: int = 64
    ) -> None:
        settings.require_files()
        self._settings = settings
        self._keys = [
            (
                _read(asyncssh.read_private_key, "SSH_KEY_PATH", settings.ssh_key_path),
                _read(
                    asyncssh.read_certificate, "SSH_CERT_PATH", settings.ssh_cert_path
                ),
            )
        ]
        self._trusted_ca = [
            _read(
                asyncssh.read_public_key, "SSH_HOST_CA_PATH", settings.ssh_host_ca_path
            )
        ]
        self._per_host = per_host
        self._total = asyncio.Semaphore(total)
        self._slots: dict[Host, asyncio.Semaphore] = {}
        self._connections: dict[Host, asyncssh.SSHClientConnection] = {}
        self._connecting: dict[Host, asyncio.Lock] = {}

    async def run(
        self, host: Host, argv: list[str], *, time_limit: float = 300.0
    ) -> Completed:
        """Run `argv` on `host`, each argument quoted for the remote shell."""
        command = shlex.join(argv)
        slot = self._slots.setdefault(host, asyncio.Semaphore(self._per_host))
        with tracer.start_as_current_span(
            f"ssh {argv[0]}",
            kind=SpanKind.CLIENT,
            attributes={
                "peer.service": host.name,
                "server.address": host.address,
                "server.port": self._settings.ssh_port,
            },
        ) as span:
            async with self._total, slot:
                connection = await self._connection(host)
                try:
                    result = await connection.run(
                        command, encoding=None, check=False, timeout=time_limit
                    )
                except asyncssh.TimeoutError:
                    span.set_status(Status(StatusCode.ERROR, "timeout"))
                    late = f"{argv[0]} did not finish within {time_limit:.0f} s"
                    raise TransientError(f"{host.name}: {late}") from None
                except (OSError, asyncssh.Error) as error:
                    self._forget(host)
                    span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                    raise TransientError(
                        f"{host.name}: connection lost while running {argv[0]}: "
                        f"{type(error).__name__}"
                    ) from None
            status = result.exit_status if result.exit_status is not None else -1
            span.set_attribute("process.exit.code", status)

            return Completed(status, _as_bytes(result.stdout), _as_bytes(result.stderr))

    async def aclose(self) -> None:
        for connection in self._connections.values():
            connection.close()
        for connection in self._connections.values():
            await connection.wait_closed()
        self._connections.clear()

    async def _connection(self, host: Host) -> asyncssh.SSHClientConnection:
        lock = self._connecting.setdefault(host, asyncio.Lock())
        async with lock:
            connection = self._connections.get(host)
            if connection is None or connection.is_closed():
                connection = await self._connect(host)
                self._connections[host] = connection

            return connection

    def _forget(self, host: Host) -> None:
        connection = self._connections.pop(host, None)
        if connection is not None:
            connection.close()

    async def _connect(self, host: Host) -> asyncssh.SSHClientConnection:
        settings = self._settings
        try:
            return await asyncssh.connect(
                host.address,
                settings.ssh_port,
                username=settings.ssh_user,
                client_keys=self._keys,
                known_hosts=([], self._trusted_ca, []),
                host_key_alias=host.name,
                connect_timeout=settings.ssh_connect_timeout,
                agent_path=None,
                config=None,
                keepalive_interval=30,
            )
        except asyncssh.HostKeyNotVerifiable as error:
            raise HostKeyRejected(
                f"{host.name} ({host.address}): host certificate rejected: {error}; "
                "re-issue the node's host certificate from the host CA"
            ) from None
        except asyncssh.PermissionDenied:
            raise PermanentError(
                f"{host.name} ({host.address}): the node refused our user certificate "
                f"for {settings.ssh_user}; check SSH_CERT_PATH and the node's "
                "TrustedUserCAKeys"
            ) from None
        except (OSError, asyncssh.Error) as error:
            if await self._offers_only_plain_keys(host):
                raise HostNotEnrolled(
                    f"{host.name} ({host.address}): host not enrolled: it offers no "
                    "host certificate; configure HostCertificate in its sshd"
                ) from None
            raise TransientError(
                f"{host.name} ({host.address}): cannot connect on port "
                f"{settings.ssh_port}: {type(error).__name__}: {error}"
            ) from None

    async def _offers_only_plain_keys(self, host: Host) -> bool:
        """Tell a node without host certificate from a network failure.

        Our client offers only certificate host-key algorithms, so such a node
        drops the connection during key exchange, which looks like a reset.
        Asking for its key both ways, without logging in, tells the two apart.
        """
        port = self._settings.ssh_port
        timeout = self._settings.ssh_connect_timeout
        try:
            async with asyncio.timeout(timeout):
                plain = await asyncssh.get_server_host_key(host.address, port)
        except (OSError, asyncssh.Error, TimeoutError):
            return False
        try:
            async with asyncio.timeout(timeout):
                await asyncssh.get_server_host_key(
                    host.address, port, server_host_key_algs=_CERT_HOST_KEY_ALGS
                )
        except (OSError, asyncssh.Error, TimeoutError):
            return plain is not None
        return False


def _read(reader: Callable[[str], T], variable: str, path: Path) -> T:
    try:
        return reader(str(path))
    except (asyncssh.KeyImportError, ValueError) as error:
        raise ConfigError(
            f"{variable}: {path} is not usable: {error}; point it at the "
            "worker's key material (private key, its certificate, the host CA)"
        ) from None


def _as_bytes(data: object) -> bytes:
    if data is None:
        return b""
    if isinstance(data, bytes):
        return data
    return str(data).encode()
