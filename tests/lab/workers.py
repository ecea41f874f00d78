"""`infraops worker --role ROLE` as real processes, started and stopped cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from tests.lab._proc import PDEATHSIG_PREFIX, LabProcessError, log_tail

START_TIMEOUT = 30.0


def spawn_worker(
    role: str, queue: str, env: Mapping[str, str], log: Path
) -> WorkerProcess:
    """Start a worker; it dies with the thread that started it (PDEATHSIG)."""
    argv = [sys.executable, "-m", "infraops", "worker", "--role", role]
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [*PDEATHSIG_PREFIX, *argv],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return WorkerProcess(role, queue, process, log)


class WorkerProcess:
    """One worker process and its log."""

    def __init__(
        self, role: str, queue: str, process: subprocess.Popen[bytes], log: Path
    ) -> None:
        self.role = role
        self.queue = queue
        self.process = process
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_polling(self, timeout: float = START_TIMEOUT) -> None:
        """Wait for the worker's "polling QUEUE" line; fail if it exits first."""
        deadline = time.monotonic() + timeout
        while f"polling {self.queue}" not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise LabProcessError(
                    f"the {self.role} worker did not start (exit status "
                    f"{self.process.poll()}); log tail ({self.log}):\n"
                    f"{log_tail(self.log)}"
                )
            time.sleep(0.1)

    def stop(self, grace: float = 30.0) -> int:
        """SIGTERM (a graceful shutdown), SIGKILL after `grace`; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()
