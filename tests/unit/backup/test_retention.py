from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from infraops.backup.models import RunStatus
from infraops.backup.naming import run_id
from infraops.backup.retention import StoredRun, choose_eviction, plan_retention
from tests.integration.backup.helpers import fake_manifest

NOW = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)


def run(days: float, status: RunStatus | None) -> StoredRun:
    started = NOW - timedelta(days=days)
    if status is None:
        return StoredRun(run_id(started, uuid.uuid4().hex), None)
    manifest = fake_manifest(started, status, uuid.uuid4().hex)
    return StoredRun(manifest.run_id, manifest)


def plan(runs: list[StoredRun], current: StoredRun, days: float = 7, keep: int = 2):
    return plan_retention(
        runs, current=current.run_id, now=NOW, retention_days=days, min_good_runs=keep
    )


def test_old_good_runs_are_kept_when_they_are_the_last_good_ones() -> None:
    old = [run(100, RunStatus.GOOD), run(90, RunStatus.GOOD), run(80, RunStatus.GOOD)]
    current = run(0, RunStatus.GOOD)
    delete, _ = plan([*old, current], current, keep=3)
    assert delete == [old[0].run_id]


def test_failed_and_uncommitted_runs_never_count_as_good() -> None:
    good = run(60, RunStatus.GOOD)
    failed = [run(d, RunStatus.FAILED) for d in (20, 30)]
    loose = run(40, None)
    current = run(0, RunStatus.GOOD)
    delete, keep = plan([good, *failed, loose, current], current)
    assert set(delete) == {f.run_id for f in failed} | {loose.run_id}
    assert good.run_id in keep and current.run_id in keep


def test_recent_runs_stay_whatever_their_status() -> None:
    recent = [
        run(d, s) for d, s in ((1, RunStatus.FAILED), (2, None), (3, RunStatus.GOOD))
    ]
    current = run(0, RunStatus.GOOD)
    delete, _ = plan([*recent, current], current)
    assert delete == []


def test_zero_day_window_still_keeps_the_floor() -> None:
    runs = [run(d, RunStatus.GOOD) for d in (3, 2, 1)]
    current = run(0, RunStatus.GOOD)
    _, keep = plan([*runs, current], current, days=0, keep=2)
    assert set(keep) == {current.run_id, runs[2].run_id}
    with pytest.raises(ValueError, match="at least 1"):
        plan([current], current, keep=0)


def test_eviction_takes_uncommitted_then_oldest_never_newest_good_or_current() -> None:
    oldest, middle, newest = (run(d, RunStatus.GOOD) for d in (30, 20, 10))
    loose = run(5, None)
    current = run(0, None)  # this run: not yet committed
    runs = [oldest, middle, newest, loose, current]
    assert choose_eviction(runs, current=current.run_id) == loose.run_id
    runs.remove(loose)
    assert choose_eviction(runs, current=current.run_id) == oldest.run_id
    assert choose_eviction([newest, current], current=current.run_id) is None
