"""Backup activities one at a time against the simulators and PostgreSQL:
every broken archive, streams cut short, tokens, and cancellation."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from infraops.backup.activities import BackupActivities
from infraops.backup.models import (
    Database,
    DumpRequest,
    RunRef,
    SnapshotRequest,
    Target,
)
from infraops.backup.naming import dump_file_name
from infraops.worker.clients import Clients
from tests.integration.backup.conftest import Lab
from tests.lab.nomad_sim.snapshot import snapshot_state
from tests.lab.snapshots import BROKEN, FIXTURE_ERRORS, build_tar, fixture_tar, gzipped

pytestmark = pytest.mark.lab
RUN = "20261203T010000Z-0badcafe"


@pytest.fixture
async def acts(lab: Lab) -> AsyncIterator[BackupActivities]:
    clients = Clients()
    activities = BackupActivities(
        clients.backup_settings, clients.postgres, clients.nomad, clients.consul, None
    )
    await ActivityEnvironment().run(activities.prepare_run, RunRef(run_id=RUN))
    yield activities
    await clients.aclose()


async def snapshot(acts: BackupActivities, target: Target) -> object:
    return await ActivityEnvironment().run(
        acts.snapshot, SnapshotRequest(run_id=RUN, target=target)
    )


BROKEN_TEXT = {
    "empty": "file missing",
    "extra": 'unexpected file "nope"',
    "missing-meta": 'hash check failed for "meta.json"',
    "missing-state": 'hash check failed for "state.bin"',
    "missing-sha": "file missing",
    "corrupt-meta": 'hash check failed for "meta.json"',
    "corrupt-state": 'hash check failed for "state.bin"',
    "corrupt-sha": 'list missing hash for "nope"',
}


@pytest.mark.parametrize("broken", BROKEN)
@pytest.mark.parametrize("target", [Target.NOMAD, Target.CONSUL])
async def test_broken_archives_never_land(
    acts: BackupActivities, lab: Lab, broken: str, target: Target
) -> None:
    archive = gzipped(build_tar(broken=broken))
    _serve(lab, target, archive)
    with pytest.raises(ApplicationError) as error:
        await snapshot(acts, target)
    assert BROKEN_TEXT[broken] in error.value.message
    assert not error.value.non_retryable  # the next attempt may stream a good one
    assert os.listdir(lab.local / RUN) == []


@pytest.mark.parametrize("name", sorted(FIXTURE_ERRORS))
async def test_upstream_fixture_archives(
    acts: BackupActivities, lab: Lab, name: str
) -> None:
    tar = fixture_tar(name)
    if tar is None:
        pytest.skip("the shared snapshot fixtures are not here (optional set)")
    _serve(lab, Target.CONSUL, gzipped(tar))
    with pytest.raises(ApplicationError) as error:
        await snapshot(acts, Target.CONSUL)
    assert FIXTURE_ERRORS[name] in error.value.message


async def test_upstream_good_fixture_is_accepted(
    acts: BackupActivities, lab: Lab
) -> None:
    tar = fixture_tar("spaces-meta.tar")
    if tar is None:
        pytest.skip("the shared snapshot fixtures are not here (optional set)")
    _serve(lab, Target.NOMAD, gzipped(tar))
    artifact = await snapshot(acts, Target.NOMAD)
    assert (artifact.index, artifact.term) == (10, 2)  # type: ignore[attr-defined]


@pytest.mark.parametrize("target", [Target.NOMAD, Target.CONSUL])
async def test_stream_cut_short_after_200(
    acts: BackupActivities, lab: Lab, target: Target
) -> None:
    archive = gzipped(build_tar(state=os.urandom(200_000)))
    if target is Target.NOMAD:
        snapshot_state(lab.nomad).archive = archive
        snapshot_state(lab.nomad).truncate_after = len(archive) // 2
    else:
        lab.consul.state.archive = archive
        lab.consul.state.truncate_after = len(archive) // 2
    with pytest.raises(ApplicationError) as error:
        await snapshot(acts, target)
    assert "cut short" in error.value.message or "truncated" in error.value.message
    assert os.listdir(lab.local / RUN) == []


async def test_nomad_error_appended_after_200_fails_the_digest(
    acts: BackupActivities, lab: Lab
) -> None:
    snapshot_state(lab.nomad).append_error = "read tcp: connection reset by peer"
    with pytest.raises(ApplicationError) as error:
        await snapshot(acts, Target.NOMAD)
    assert "after the end of the gzip stream" in error.value.message


async def test_bad_tokens_are_permanent_and_not_echoed(
    acts: BackupActivities, lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.consul.state.token = "another"
    with pytest.raises(ApplicationError) as error:
        await snapshot(acts, Target.CONSUL)
    assert error.value.non_retryable and "403" in error.value.message
    assert "consul-lab-token" not in error.value.message


async def test_cancel_ends_pg_dumps_process_group(
    acts: BackupActivities, lab: Lab
) -> None:
    lab.monkeypatch.setenv("PG_LOCK_WAIT_TIMEOUT", "120")
    clients = Clients()
    slow = BackupActivities(
        clients.backup_settings, clients.postgres, clients.nomad, clients.consul, None
    )
    ready = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with psycopg.connect(lab.pg.dsn("locked")) as conn:
            conn.execute("BEGIN")
            conn.execute("LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
            ready.set()
            release.wait(30)
            conn.execute("COMMIT")

    holder = threading.Thread(target=hold)
    holder.start()
    ready.wait(10)
    env = ActivityEnvironment()
    request = DumpRequest(
        run_id=RUN,
        database=Database(name="locked", file_name=dump_file_name("locked")),
        bindir=str(_bindir()),
        tool_version="15.0",
        server_version="15",
    )
    task = asyncio.ensure_future(env.run(slow.dump_database, request))
    pid = await _wait_for_pg_dump(lab)
    env.cancel()
    with pytest.raises((asyncio.CancelledError, ApplicationError, Exception)):
        await task
    release.set()
    holder.join()
    await clients.aclose()
    assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    assert not any(p.name.endswith(".dump") for p in (lab.local / RUN).iterdir())


def _serve(lab: Lab, target: Target, archive: bytes) -> None:
    if target is Target.NOMAD:
        snapshot_state(lab.nomad).archive = archive
    else:
        lab.consul.state.archive = archive


def _bindir() -> Path:
    from infraops.backup.pgtools import choose

    return choose(15, "15").bindir


async def _wait_for_pg_dump(lab: Lab) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if (
                argv
                and argv[0].endswith(b"pg_dump")
                and any(RUN.encode() in a for a in argv)
            ):
                return int(entry.name)
        await asyncio.sleep(0.05)
    raise AssertionError("pg_dump did not start")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


async def test_retention_refuses_a_run_that_is_not_committed_good(
    acts: BackupActivities,
) -> None:
    """Retention never runs on behalf of a run without a good manifest."""
    from datetime import UTC, datetime

    from temporalio.exceptions import ApplicationError

    from infraops.backup.models import RetentionRequest

    request = RetentionRequest(
        run_id=RUN, now=datetime.now(UTC), retention_days=0, min_good_runs=0
    )

    with pytest.raises(ApplicationError, match="not a committed good run"):
        await ActivityEnvironment().run(acts.local_retention, request)
