"""Deciding, entry by entry, what may be removed from a node's data directory.

Pure functions: the same listing and keep-set always give the same verdicts,
which is what makes the re-check before deletion meaningful. The first rule
that matches wins, and only `candidate` entries are ever removed.
"""

from __future__ import annotations

from collections.abc import Iterable

from infraops.cleanup.listing import Entry, Listing, Mount
from infraops.cleanup.models import SYSTEM_ENTRIES, Reason, Verdict

SECONDS_PER_DAY = 86400.0


def classify(
    listing: Listing,
    keep: Iterable[str],
    *,
    grace_days: float,
    exclude: Iterable[str] = (),
) -> list[Verdict]:
    """One verdict per entry of `listing`, sorted by name."""
    keep = frozenset(keep)
    exclude = frozenset(exclude)
    verdicts = [
        _judge(entry, listing, keep, exclude, grace_days) for entry in listing.entries
    ]

    return sorted(verdicts, key=lambda verdict: verdict.name)


def _judge(
    entry: Entry,
    listing: Listing,
    keep: frozenset[str],
    exclude: frozenset[str],
    grace_days: float,
) -> Verdict:
    age_days = max(0.0, (listing.clock - entry.newest_mtime) / SECONDS_PER_DAY)
    path = f"{listing.root.rstrip('/')}/{entry.name}"
    own_mount = _mount_at(listing.mounts, path)
    home = _mount_holding(listing.mounts, path)

    def verdict(reason: Reason, detail: str = "") -> Verdict:
        return Verdict(
            name=entry.name, reason=reason, age_days=round(age_days, 2), detail=detail
        )

    if entry.name in SYSTEM_ENTRIES:
        return verdict(Reason.SYSTEM)
    if entry.name in exclude:
        return verdict(Reason.EXCLUDED)
    if entry.odd_name:
        return verdict(Reason.ODD_NAME)
    if entry.kind == "l":
        return verdict(Reason.SYMLINK)
    if entry.kind != "d":
        return verdict(Reason.NOT_DIRECTORY, f"type {entry.kind}")
    if own_mount is not None:
        if own_mount.network:
            return verdict(Reason.NETWORK_FS, own_mount.fstype)
        return verdict(Reason.MOUNT, own_mount.fstype)
    if home is not None and home.network:
        return verdict(Reason.NETWORK_FS, home.fstype)
    inner = [m.point for m in listing.mounts if m.point.startswith(path + "/")]
    if inner:
        return verdict(Reason.CONTAINS_MOUNT, inner[0])
    if entry.name in keep:
        return verdict(Reason.IN_USE)
    if age_days < grace_days:
        return verdict(Reason.RECENT, f"modified {age_days:.1f} days ago")

    return verdict(Reason.CANDIDATE)


def _mount_at(mounts: tuple[Mount, ...], path: str) -> Mount | None:
    # The last mount on a point is the one in effect.
    found = [mount for mount in mounts if mount.point == path]
    return found[-1] if found else None


def _mount_holding(mounts: tuple[Mount, ...], path: str) -> Mount | None:
    """The filesystem `path` lives on: the longest mount point above it."""
    best: Mount | None = None
    for mount in mounts:
        prefix = mount.point.rstrip("/") + "/"
        if path.startswith(prefix) and (
            best is None or len(mount.point) >= len(best.point)
        ):
            best = mount

    return best
