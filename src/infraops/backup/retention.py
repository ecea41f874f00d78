"""Which runs retention deletes and which one a full store evicts.

Pure functions over what the manifests say, so the rules are easy to test:

- Retention runs only after a good run. A run is deleted when it is older
  than the window, unless it is the current run or one of the newest
  `min_good_runs` good runs of any target it covers; age never removes those.
- Quota eviction takes the oldest whole run, never the current one and never
  the newest good run of any target; runs without a manifest (cut short,
  never committed) go first.

Ages come from the manifests' UTC `started_at`. A run without a readable
manifest is dated by its id, which encodes its UTC start; file mtimes and the
store's LastModified are never used.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from infraops.backup.models import ALL_TARGETS, Manifest, RunStatus, Target
from infraops.backup.naming import run_started


@dataclass(frozen=True)
class StoredRun:
    run_id: str
    manifest: Manifest | None

    @property
    def started(self) -> datetime:
        if self.manifest is not None and self.manifest.run_id == self.run_id:
            return self.manifest.started_at
        return run_started(self.run_id)

    def good_for(self, target: Target) -> bool:
        manifest = self.manifest
        return (
            manifest is not None
            and manifest.run_id == self.run_id
            and manifest.status is not RunStatus.FAILED
            and target in manifest.good_targets
        )

    @property
    def good(self) -> bool:
        return self.manifest is not None and self.manifest.status is RunStatus.GOOD


def newest_good(runs: Iterable[StoredRun], count: int) -> set[str]:
    """Ids of the newest `count` good runs of each target."""
    ordered = sorted(runs, key=lambda run: run.started, reverse=True)
    keep: set[str] = set()
    for target in ALL_TARGETS:
        good = [run.run_id for run in ordered if run.good_for(target)]
        keep.update(good[:count])
    return keep


def plan_retention(
    runs: Iterable[StoredRun],
    *,
    current: str,
    now: datetime,
    retention_days: float,
    min_good_runs: int,
) -> tuple[list[str], list[str]]:
    """(to delete, kept) among `runs`, oldest first."""
    if min_good_runs < 1:
        raise ValueError("min_good_runs must be at least 1")
    runs = list(runs)
    protected = newest_good(runs, min_good_runs) | {current}
    cutoff = now - timedelta(days=retention_days)
    delete, keep = [], []
    for run in sorted(runs, key=lambda run: run.started):
        if run.run_id not in protected and run.started < cutoff:
            delete.append(run.run_id)
        else:
            keep.append(run.run_id)
    return delete, keep


def choose_eviction(runs: Iterable[StoredRun], *, current: str) -> str | None:
    """The run a full store gives up first, or None when none may go."""
    runs = list(runs)
    protected = newest_good(runs, 1) | {current}
    candidates = [run for run in runs if run.run_id not in protected]
    if not candidates:
        return None
    candidates.sort(key=lambda run: (run.manifest is not None, run.started))
    return candidates[0].run_id
