"""The Trivy client against the stand-in CLI and the lab's server stub."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from infraops.clients.trivy import (
    TrivyClient,
    TrivyConfigFault,
    TrivyImageError,
    TrivyOutputError,
    TrivyUnavailable,
)
from infraops.config import TrivySettings
from infraops.trivy.models import FailureKind
from tests.lab._proc import free_port
from tests.lab.trivy_server import TrivyServerStub
from tests.unit.trivy.conftest import OWN

TOKEN = "lab-trivy-token-5f1c"
IMAGE = "docker.io/library/app:1"
APP = OWN / "app-1.4-debian-java.json"


@pytest.fixture
def server() -> Iterator[TrivyServerStub]:
    with TrivyServerStub(token=TOKEN) as stub:
        yield stub


def settings(
    tmp_path: Path, server: TrivyServerStub, **overrides: object
) -> TrivySettings:
    values: dict[str, object] = {
        "trivy_server_addr": server.url,
        "trivy_token": SecretStr(TOKEN),
        "trivy_bin": str(server.write_cli(tmp_path)),
        "trivy_cache_dir": tmp_path / "cache",
        "trivy_timeout": 10,
    }
    values.update(overrides)
    return TrivySettings(**values)  # type: ignore[arg-type]


async def scan(client: TrivyClient, image: str = IMAGE) -> int:
    output = await client.scan(image, lambda: None)
    return len(output.report.findings)


async def test_scan_reads_the_report(tmp_path: Path, server: TrivyServerStub) -> None:
    server.plan(IMAGE, "ok", report=APP)
    client = TrivyClient(settings(tmp_path, server))

    assert await scan(client) == 8
    await client.aclose()


@pytest.mark.parametrize(
    ("outcome", "error", "kind", "reason"),
    [
        ("reset", TrivyUnavailable, FailureKind.TRANSIENT, "connection-reset"),
        ("unavailable", TrivyUnavailable, FailureKind.TRANSIENT, "server-unavailable"),
        ("throttled", TrivyUnavailable, FailureKind.TRANSIENT, "registry-throttled"),
        (
            "registry_down",
            TrivyUnavailable,
            FailureKind.TRANSIENT,
            "registry-unreachable",
        ),
        ("analyzer_timeout", TrivyUnavailable, FailureKind.TRANSIENT, "timeout"),
        ("java_db", TrivyUnavailable, FailureKind.TRANSIENT, "db-download-failed"),
        ("crash", TrivyUnavailable, FailureKind.TRANSIENT, "killed"),
        ("not_found", TrivyImageError, FailureKind.PERMANENT, "manifest-unknown"),
        ("unauthorized", TrivyImageError, FailureKind.PERMANENT, "unauthorized"),
        ("name_unknown", TrivyImageError, FailureKind.PERMANENT, "name-unknown"),
        ("denied", TrivyImageError, FailureKind.PERMANENT, "denied"),
        ("bad_name", TrivyImageError, FailureKind.PERMANENT, "invalid-reference"),
        ("invalid_output", TrivyOutputError, FailureKind.PERMANENT, "invalid-output"),
        ("empty_output", TrivyOutputError, FailureKind.PERMANENT, "invalid-output"),
        ("list_output", TrivyOutputError, FailureKind.PERMANENT, "invalid-output"),
        (
            "cache_missing",
            TrivyConfigFault,
            FailureKind.CONFIG,
            "server-cache-not-shared",
        ),
        (
            "version_skew",
            TrivyConfigFault,
            FailureKind.CONFIG,
            "client-server-version-skew",
        ),
    ],
)
async def test_failure_modes(
    tmp_path: Path,
    server: TrivyServerStub,
    outcome: str,
    error: type[Exception],
    kind: FailureKind,
    reason: str,
) -> None:
    server.plan(IMAGE, outcome, report=APP)
    client = TrivyClient(settings(tmp_path, server))

    with pytest.raises(error) as caught:
        await scan(client)

    assert (caught.value.kind, caught.value.reason) == (kind, reason)  # type: ignore[attr-defined]
    await client.aclose()


async def test_timeout_of_the_cli(tmp_path: Path, server: TrivyServerStub) -> None:
    server.plan(IMAGE, "slow")
    client = TrivyClient(settings(tmp_path, server, trivy_timeout=1))

    with pytest.raises(TrivyUnavailable) as caught:
        await scan(client)

    assert caught.value.reason == "timeout"
    await client.aclose()


async def test_server_down_is_transient(
    tmp_path: Path, server: TrivyServerStub
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    client = TrivyClient(settings(tmp_path, server, trivy_server_addr=down))

    with pytest.raises(TrivyUnavailable) as caught:
        await scan(client)
    assert caught.value.reason == "server-unreachable"
    assert "connection refused" in str(caught.value)
    with pytest.raises(TrivyUnavailable):
        await client.preflight()
    await client.aclose()


async def test_missing_image_fails_before_server_contact(
    tmp_path: Path, server: TrivyServerStub
) -> None:
    """Trivy resolves the image first: not found wins even with the server down."""
    server.plan(IMAGE, "not_found")
    down = f"http://127.0.0.1:{free_port()}"
    client = TrivyClient(settings(tmp_path, server, trivy_server_addr=down))

    with pytest.raises(TrivyImageError):
        await scan(client)
    await client.aclose()


async def test_bad_token_is_a_config_fault(
    tmp_path: Path, server: TrivyServerStub
) -> None:
    client = TrivyClient(settings(tmp_path, server, trivy_token=SecretStr("wrong")))

    with pytest.raises(TrivyConfigFault) as caught:
        await scan(client)

    assert caught.value.reason == "bad-server-token"
    assert "wrong" not in str(caught.value) and TOKEN not in str(caught.value)
    await client.aclose()


async def test_wrong_server_url_is_a_config_fault(
    tmp_path: Path, server: TrivyServerStub
) -> None:
    client = TrivyClient(
        settings(tmp_path, server, trivy_server_addr=server.url + "/x")
    )

    with pytest.raises(TrivyConfigFault) as caught:
        await scan(client)
    assert caught.value.reason == "wrong-server-url"
    with pytest.raises(TrivyConfigFault, match="TRIVY_SERVER_ADDR"):
        await client.preflight()
    await client.aclose()


async def test_preflight_reads_the_db_version(
    tmp_path: Path, server: TrivyServerStub
) -> None:
    client = TrivyClient(settings(tmp_path, server))

    assert await client.preflight() == "v2@2026-12-03T00:00:00Z"
    await client.aclose()


async def test_missing_binary_is_a_config_fault(
    tmp_path: Path, server: TrivyServerStub
) -> None:
    client = TrivyClient(
        settings(tmp_path, server, trivy_bin=str(tmp_path / "no-such-trivy"))
    )

    with pytest.raises(TrivyConfigFault, match="TRIVY_BIN"):
        await scan(client)
    await client.aclose()


async def test_secrets_stay_out_of_argv_and_child_env(
    tmp_path: Path, server: TrivyServerStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIVY_DB_PASSWORD", "db-secret-77")
    monkeypatch.setenv("NOMAD_TOKEN", "nomad-secret-88")
    monkeypatch.setenv("TRIVY_TOKEN", "stale-env-token")
    client = TrivyClient(settings(tmp_path, server))

    await scan(client)

    (call,) = server.invocations
    assert not any(TOKEN in arg for arg in call.argv)
    assert "--token" not in call.argv
    assert call.token == TOKEN  # Trivy reads TRIVY_TOKEN from its environment
    assert "TRIVY_DB_PASSWORD" not in call.env and "NOMAD_TOKEN" not in call.env
    await client.aclose()


async def test_heartbeats_while_running_and_kill_on_cancel(
    tmp_path: Path, server: TrivyServerStub
) -> None:
    server.plan(IMAGE, "slow")
    client = TrivyClient(settings(tmp_path, server), heartbeat_every=0.1)
    beats: list[float] = []
    task = asyncio.ensure_future(client.scan(IMAGE, lambda: beats.append(1)))
    while len(beats) < 3:
        await asyncio.sleep(0.05)
    (call,) = server.invocations

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    with pytest.raises(ProcessLookupError):
        os.kill(call.pid, 0)
    await client.aclose()


async def test_concurrent_scans_get_their_own_cache_dirs(
    tmp_path: Path, server: TrivyServerStub
) -> None:
    server.latency = 0.3
    client = TrivyClient(settings(tmp_path, server))

    counts = await asyncio.gather(
        *(scan(client, f"docker.io/library/a:{n}") for n in range(4))
    )

    assert counts == [0, 0, 0, 0]
    assert server.max_in_flight == 4
    cache_dirs = {c.argv[c.argv.index("--cache-dir") + 1] for c in server.invocations}
    assert len(cache_dirs) == 4
    await client.aclose()


async def test_bom_report_through_the_cli(
    tmp_path: Path, server: TrivyServerStub, shared_dir: Path
) -> None:
    server.plan(IMAGE, "ok", report=shared_dir / "debian12-python-bom-crlf.json")
    client = TrivyClient(settings(tmp_path, server))

    assert await scan(client) == 34
    await client.aclose()
