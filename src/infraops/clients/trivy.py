"""Running the Trivy CLI in client mode against the shared Trivy server.

One `trivy image` process per scan, with JSON written to a file, the remote
registry as the only image source, and a cache directory of its own for each
concurrent scan (so the bbolt cache lock never bites). The server token travels
in the child's environment (`TRIVY_TOKEN`, which Trivy reads), never in argv.
The child gets a short allow-list of the worker's environment, so database
passwords and other tokens never reach it.

Failures are classified here and nowhere else (see `infraops.trivy.classify`):
transient ones raise `TrivyUnavailable`, image problems `TrivyImageError`,
unusable output `TrivyOutputError`, and configuration faults (bad token, wrong
server URL) `TrivyConfigFault`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from infraops.config import TrivySettings
from infraops.errors import ConfigError, PermanentError, TransientError
from infraops.trivy.classify import Classification, classify_failure
from infraops.trivy.models import FailureKind
from infraops.trivy.report import Report, ReportError, db_version_label, parse_report

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

PASSED_ENV = (
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "DOCKER_CONFIG",
    "TRIVY_USERNAME",
    "TRIVY_PASSWORD",
    "TRIVY_REGISTRY_TOKEN",
    "TRIVY_INSECURE",
)
STDERR_LIMIT = 256 * 1024
KILL_GRACE = 5.0


class TrivyFailure:
    """Mixed into each Trivy error: what kind of failure, and why."""

    kind: FailureKind
    reason: str


class TrivyUnavailable(TransientError, TrivyFailure):
    """The server, the registry or the run itself failed in a passing way."""

    kind = FailureKind.TRANSIENT

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class TrivyImageError(PermanentError, TrivyFailure):
    """The image cannot be scanned: not found, unknown manifest, no access."""

    kind = FailureKind.PERMANENT

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class TrivyOutputError(PermanentError, TrivyFailure):
    """Trivy said it succeeded but wrote no usable report."""

    kind = FailureKind.PERMANENT
    reason = "invalid-output"


class TrivyConfigFault(ConfigError, TrivyFailure):
    """The worker's Trivy settings are wrong; every image would fail alike."""

    kind = FailureKind.CONFIG

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ScanOutput:
    report: Report
    seconds: float


class TrivyClient:
    """Runs `trivy image` for one image at a time, many at once."""

    def __init__(
        self,
        settings: TrivySettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        heartbeat_every: float = 1.0,
    ) -> None:
        self._settings = settings
        self._busy: set[int] = set()
        self._heartbeat_every = heartbeat_every
        self._http = httpx.AsyncClient(
            base_url=settings.trivy_server_addr,
            timeout=httpx.Timeout(10.0, connect=5.0),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def preflight(self) -> str | None:
        """Check the server answers as a Trivy server; its DB version label.

        `/healthz` and `/version` skip the token check, so a bad token is only
        found by the first scan.
        """
        address = self._settings.trivy_server_addr
        with tracer.start_as_current_span(
            "trivy GET /healthz",
            kind=SpanKind.CLIENT,
            attributes={"peer.service": "trivy-server"},
        ) as span:
            try:
                health = await self._http.get("/healthz")
            except httpx.TransportError as error:
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                raise TrivyUnavailable(
                    f"Trivy server {address} unreachable: {type(error).__name__}: "
                    f"{error or 'no detail'}",
                    "server-unreachable",
                ) from None
            if health.status_code >= 500:
                raise TrivyUnavailable(
                    f"Trivy server {address}/healthz answered {health.status_code}",
                    "server-unavailable",
                )
            if health.status_code != 200 or health.text.strip() != "ok":
                raise TrivyConfigFault(
                    f"TRIVY_SERVER_ADDR: {address} is not a Trivy server "
                    f"(/healthz answered {health.status_code})",
                    "wrong-server-url",
                )
        try:
            version = (await self._http.get("/version")).json()
        except (httpx.HTTPError, ValueError):
            return None
        db = version.get("VulnerabilityDB") if isinstance(version, dict) else None
        return db_version_label(db) if isinstance(db, dict) else None

    async def scan(self, image: str, heartbeat: Callable[[], None]) -> ScanOutput:
        """Scan `image`; heartbeat while the CLI runs, kill it if cancelled."""
        if image.startswith("-"):
            raise TrivyImageError(
                f"{image!r} is not an image name", "invalid-reference"
            )
        slot = self._take_slot()
        try:
            cache = self._settings.trivy_cache_dir / f"slot-{slot}"
            await asyncio.to_thread(cache.mkdir, parents=True, exist_ok=True)
            output = cache / "report.json"
            with contextlib.suppress(FileNotFoundError):
                output.unlink()
            with tracer.start_as_current_span(
                "trivy image",
                kind=SpanKind.CLIENT,
                attributes={
                    "peer.service": "trivy-server",
                    "container.image.name": image,
                },
            ) as span:
                started = time.monotonic()
                code, stdout, stderr = await self._run(
                    self.argv(image, cache, output), heartbeat
                )
                seconds = time.monotonic() - started
                span.set_attribute("process.exit.code", code)
                try:
                    report = self._read(image, code, output, stdout, stderr)
                except (TrivyUnavailable, TrivyImageError, TrivyConfigFault) as error:
                    span.set_status(Status(StatusCode.ERROR, error.reason))
                    raise
                except TrivyOutputError:
                    span.set_status(Status(StatusCode.ERROR, "invalid-output"))
                    raise
        finally:
            self._busy.discard(slot)

        return ScanOutput(report=report, seconds=seconds)

    def argv(self, image: str, cache: Path, output: Path) -> list[str]:
        settings = self._settings
        return [
            settings.trivy_bin,
            "image",
            "--server",
            settings.trivy_server_addr,
            "--token-header",
            settings.trivy_token_header,
            "--format",
            "json",
            "--output",
            str(output),
            "--scanners",
            "vuln",
            "--image-src",
            "remote",
            "--cache-dir",
            str(cache),
            "--timeout",
            f"{int(settings.trivy_timeout)}s",
            "--quiet",
            image,
        ]

    def environment(self) -> dict[str, str]:
        env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
        if self._settings.trivy_token is not None:
            env["TRIVY_TOKEN"] = self._settings.trivy_token.get_secret_value()
        return env

    def _take_slot(self) -> int:
        slot = 0
        while slot in self._busy:
            slot += 1
        self._busy.add(slot)
        return slot

    async def _run(
        self, argv: list[str], heartbeat: Callable[[], None]
    ) -> tuple[int, bytes, bytes]:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.environment(),
                start_new_session=True,
            )
        except OSError as error:
            raise TrivyConfigFault(
                f"TRIVY_BIN: cannot run {argv[0]}: {error.strerror}", "trivy-missing"
            ) from None
        talk = asyncio.ensure_future(proc.communicate())
        deadline = time.monotonic() + self._settings.trivy_timeout + 60
        try:
            while True:
                done, _ = await asyncio.wait({talk}, timeout=self._heartbeat_every)
                if done:
                    break
                heartbeat()
                if time.monotonic() > deadline:
                    await _stop(proc)
                    raise TrivyUnavailable(
                        "trivy ran past its own --timeout by a minute; killed it",
                        "timeout",
                    )
        except BaseException:
            await _stop(proc)
            talk.cancel()
            raise
        stdout, stderr = talk.result()
        assert proc.returncode is not None

        return proc.returncode, stdout, stderr[-STDERR_LIMIT:]

    def _read(
        self, image: str, code: int, output: Path, stdout: bytes, stderr: bytes
    ) -> Report:
        if code != 0:
            raise _failure(
                image, classify_failure(code, stderr.decode(errors="replace"))
            )
        try:
            data = output.read_bytes()
        except FileNotFoundError:
            data = stdout
        try:
            return parse_report(data)
        except ReportError as error:
            raise TrivyOutputError(f"{image}: {error}") from None


def _failure(image: str, found: Classification) -> Exception:
    message = f"{image}: {found.message}"
    if found.kind is FailureKind.CONFIG:
        return TrivyConfigFault(message, found.reason)
    if found.kind is FailureKind.PERMANENT:
        return TrivyImageError(message, found.reason)
    return TrivyUnavailable(message, found.reason)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the CLI's process group, then SIGKILL after a grace period."""
    if proc.returncode is not None:
        return
    for signum, grace in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
            return
        except TimeoutError:
            continue
