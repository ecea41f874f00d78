"""The lab's Trivy server stub, and the control plane of the `trivy` stand-in.

    with TrivyServerStub(token="lab-trivy-token", latency=0.05) as server:
        server.plan("docker.io/library/nginx:1.25", ["reset", "ok"], report=path)
        cli = server.write_cli(tmp_path)          # the TRIVY_BIN to use
        ... TRIVY_SERVER_ADDR=server.url ...

The server speaks the parts of Trivy's API a client touches: `GET /healthz`
(`ok`), `GET /version`, and the twirp `Cache/MissingBlobs` and `Scanner/Scan`
POSTs, checking the token header as Trivy does (401 twirp `unauthenticated:
invalid token`). `Scan` answers with the planned report after `latency`.
With `cli_latency`, each CLI run lasts that long in all, counted from its
process start (interpreter start-up included): a stand-in of fixed latency.

Each CLI run first asks `/lab/resolve` what happens to its image on this
attempt: the next planned outcome (the last one repeats), so "reset, then ok"
is a transient failure followed by success. Outcomes:

    ok                     the report (the image's fixture, else a clean one)
    not_found unauthorized name_unknown denied throttled registry_down
    bad_name analyzer_timeout java_db          failures before server contact
    reset unavailable cache_missing version_skew slow   server-side failures
    invalid_output empty_output list_output crash       broken output
"""

from __future__ import annotations

import json
import socket
import stat
import struct
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

STUB = Path(__file__).with_name("trivy_stub.py")
DB = {
    "Version": 2,
    "NextUpdate": "2026-12-04T00:00:00Z",
    "UpdatedAt": "2026-12-03T00:00:00Z",
    "DownloadedAt": "2026-12-03T01:00:00Z",
}


@dataclass
class Invocation:
    image: str
    argv: list[str]
    env: list[str]
    token: str | None
    outcome: str
    pid: int = 0
    started: float = 0.0  # wall clock of the CLI process start
    at: float = field(default_factory=time.monotonic)
    wall: float = field(default_factory=time.time)


class TrivyServerStub:
    """A threaded HTTP server on 127.0.0.1 (random port)."""

    def __init__(
        self,
        *,
        token: str | None = None,
        latency: float = 0.0,
        cli_latency: float = 0.0,
        default_report: Path | None = None,
        db: dict[str, Any] | None = None,
    ) -> None:
        self.token = token
        self.latency = latency
        self.cli_latency = cli_latency
        self.default_report = default_report
        self.db = dict(db or DB)
        self.invocations: list[Invocation] = []
        self.scans_served = 0
        self._plans: dict[str, list[str]] = {}
        self._reports: dict[str, bytes] = {}
        self._attempts: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> str:
        stub = self

        class Handler(_Handler):
            server_stub = stub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="trivy-server-stub",
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> TrivyServerStub:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("TrivyServerStub is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- planning ----------------------------------------------------------------

    def plan(
        self,
        image: str,
        outcomes: list[str] | str = "ok",
        *,
        report: Path | bytes | None = None,
    ) -> None:
        with self._lock:
            self._plans[image] = [outcomes] if isinstance(outcomes, str) else outcomes
            if report is not None:
                self._reports[image] = (
                    report if isinstance(report, bytes) else Path(report).read_bytes()
                )

    def attempts(self, image: str) -> int:
        with self._lock:
            return self._attempts[image]

    def write_cli(self, directory: Path, name: str = "trivy") -> Path:
        """An executable that runs the stand-in with this server as control."""
        path = directory / name
        path.write_text(
            "#!/bin/sh\n"
            f"TRIVY_STUB_CONTROL='{self.url}' exec '{sys.executable}' -S '{STUB}' \"$@\"\n"
        )
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path

    # -- used by the handler -----------------------------------------------------

    def resolve(self, image: str, record: dict[str, Any]) -> str:
        with self._lock:
            plan = self._plans.get(image, ["ok"])
            attempt = self._attempts[image]
            self._attempts[image] += 1
            outcome = plan[min(attempt, len(plan) - 1)]
            self.invocations.append(
                Invocation(
                    image=image,
                    argv=list(record.get("argv", [])),
                    env=list(record.get("env", [])),
                    token=record.get("token"),
                    outcome=outcome,
                    pid=int(record.get("pid", 0)),
                    started=time.time() - float(record.get("age", 0.0)),
                )
            )
            return outcome

    def report_for(self, image: str) -> bytes:
        with self._lock:
            if image in self._reports:
                return self._reports[image]
        if self.default_report is not None:
            return self.default_report.read_bytes()
        return clean_report(image, self.db)


def clean_report(image: str, db: dict[str, Any]) -> bytes:
    """A report for an image with no vulnerabilities, as client mode writes it."""
    report = {
        "SchemaVersion": 2,
        "Trivy": {
            "Version": "0.58.1",
            "Server": {"Version": "0.58.1", "VulnerabilityDB": db},
        },
        "CreatedAt": "2026-12-03T03:00:00.123456789Z",
        "ArtifactName": image,
        "ArtifactType": "container_image",
        "Metadata": {
            "OS": {"Family": "alpine", "Name": "3.20.3"},
            "ImageID": "sha256:" + "0" * 64,
            "RepoTags": [image],
        },
        "Results": [
            {
                "Target": f"{image} (alpine 3.20.3)",
                "Class": "os-pkgs",
                "Type": "alpine",
            }
        ],
    }
    return (json.dumps(report, indent=2) + "\n").encode()


class _Handler(BaseHTTPRequestHandler):
    server_stub: TrivyServerStub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._reply(200, b"ok", "text/plain")
        elif path == "/version":
            body = {"Version": "0.58.1", "VulnerabilityDB": self.server_stub.db}
            self._reply(200, json.dumps(body).encode(), "application/json")
        else:
            self._reply(404, b"404 page not found\n", "text/plain")

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        stub = self.server_stub
        if parts.path == "/lab/resolve":
            image = parse_qs(parts.query)["image"][0]
            outcome = stub.resolve(image, body)
            answer = {"outcome": outcome, "total_latency": stub.cli_latency}
            self._reply(200, json.dumps(answer).encode(), "application/json")
            return
        if not parts.path.startswith("/twirp/trivy."):
            self._reply(404, b"404 page not found\n", "text/plain")
            return
        if stub.token is not None and self.headers.get("Trivy-Token") != stub.token:
            self._twirp(401, "unauthenticated", "invalid token")
            return
        outcome = self.headers.get("X-Lab-Outcome", "ok")
        if parts.path.endswith("/MissingBlobs"):
            self._reply(200, b'{"MissingArtifact": false}', "application/json")
            return
        self._scan(stub, body.get("Target", ""), outcome)

    def _scan(self, stub: TrivyServerStub, image: str, outcome: str) -> None:
        with stub._lock:
            stub.in_flight += 1
            stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
        try:
            if stub.latency:
                time.sleep(stub.latency)
            if outcome == "reset":
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                self.close_connection = True
                return
            if outcome == "unavailable":
                self._reply(503, b"Service Unavailable", "text/plain")
                return
            if outcome == "cache_missing":
                self._twirp(
                    500,
                    "internal",
                    f"failed scan, {image}: failed to apply layers: layer cache "
                    "missing: sha256:9f1b4b9b5a7b8c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d",
                )
                return
            if outcome == "version_skew":
                self._twirp(
                    500,
                    "internal",
                    f"failed scan, {image}: failed to detect vulnerabilities: failed "
                    "to scan application libraries: failed vulnerability detection of "
                    "libraries: failed to new driver: unsupported type node-pkg",
                )
                return
            if outcome == "slow":
                time.sleep(120)
            with stub._lock:
                stub.scans_served += 1
            self._reply(200, stub.report_for(image), "application/json")
        finally:
            with stub._lock:
                stub.in_flight -= 1

    def _twirp(self, status: int, code: str, msg: str) -> None:
        body = json.dumps({"code": code, "msg": msg}).encode()
        self._reply(status, body, "application/json")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
