"""One lab fleet and one real worker process for the cleanup tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.lab.fleet import EXCLUDE, Fleet
from tests.lab.otlp_collector import Collector
from tests.lab.temporal import TemporalDevServer

HEALTHY = ["node-1", "node-2"]
BROKEN = {
    "node-sshd-down": "cannot connect",
    "node-wrong-ca": "host certificate rejected",
    "node-no-cert": "host not enrolled",
}
SKIPPED = {"node-draining": "node is draining", "node-down": "node is down"}


@dataclass
class Lab:
    fleet: Fleet
    collector: Collector
    worker: subprocess.Popen[bytes]
    worker_log: Path
    env: dict[str, str]

    def run(
        self, *args: str, config: dict[str, Any] | None = None, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        """`infraops run cleanup ARGS` with the lab's config as --input."""
        document = {"data_dir": self.fleet.data_dir, "exclude": EXCLUDE} | (
            config or {}
        )
        return infraops(
            "run",
            "cleanup",
            "--input",
            "-",
            *args,
            env=self.env,
            input=json.dumps(document),
            **kw,
        )


def infraops(
    *args: str, env: dict[str, str], input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infraops", *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="package")
def lab(
    tmp_path_factory: pytest.TempPathFactory, temporal_server: TemporalDevServer
) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("cleanup-lab")
    fleet = Fleet(root, temporal=temporal_server)
    for name in HEALTHY:
        fleet.add_client(name)
    fleet.add_client("node-sshd-down")
    fleet.add_client("node-wrong-ca", host_cert="wrong-ca")
    fleet.add_client("node-no-cert", host_cert="none")
    fleet.add_client("node-draining", drain=True, standard=False)
    fleet.add_client("node-down", status="down", standard=False)
    with fleet, Collector() as collector:
        fleet.ssh.stop(fleet.clients["node-sshd-down"].ssh)
        env = fleet.env(
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_BSP_SCHEDULE_DELAY="200",
        )
        log = root / "worker.log"
        with log.open("wb") as sink:
            worker = subprocess.Popen(
                [sys.executable, "-m", "infraops", "worker", "--role", "cleanup"],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_log(log, "polling cleanup-task-queue", worker)
            yield Lab(fleet, collector, worker, log, env)
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    worker.kill()


def _wait_for_log(log: Path, text: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"worker did not start:\n{log.read_text()[-3000:]}")


@pytest.fixture
def clean_env() -> dict[str, str]:
    """The test process's environment without any infraops settings."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("NOMAD_", "SSH_", "TEMPORAL_", "OTEL_", "METRICS_"))
    }
