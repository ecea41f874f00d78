"""Deciding, entry by entry, what may be removed from a node's data directory.

Pure functions: the same listing, keep-set and usage always give the same
verdicts, which is what makes the re-check before deletion meaningful. The
first rule that matches wins, and only `candidate` entries are ever removed.

The node measures (with du) only the local directories not known to be kept;
an entry that reaches the age rule without a measurement is kept as vanished.
"""

from __future__ import annotations

from collections.abc import Iterable

from infraops.cleanup.listing import Entry, Listing, Mount, Usage
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
    keep, exclude = frozenset(keep), frozenset(exclude)
    verdicts = []
    for entry in listing.entries:
        found = _rule(entry, listing, keep, exclude)
        if found is not None:
            reason, detail = found
            verdicts.append(Verdict(name=entry.name, reason=reason, detail=detail))
        else:
            usage = listing.usage.get(entry.name)
            verdicts.append(_by_age(entry.name, usage, listing, grace_days))

    return sorted(verdicts, key=lambda verdict: verdict.name)


def _by_age(
    name: str, usage: Usage | None, listing: Listing, grace_days: float
) -> Verdict:
    if usage is None:
        return Verdict(
            name=name, reason=Reason.VANISHED, detail="could not be measured"
        )
    age_days = max(0.0, (listing.clock - usage.newest_mtime) / SECONDS_PER_DAY)
    reason = Reason.RECENT if age_days < grace_days else Reason.CANDIDATE
    detail = f"modified {age_days:.1f} days ago" if reason is Reason.RECENT else ""

    return Verdict(
        name=name,
        reason=reason,
        age_days=round(age_days, 2),
        size_bytes=usage.size_bytes,
        detail=detail,
    )


def _rule(
    entry: Entry, listing: Listing, keep: frozenset[str], exclude: frozenset[str]
) -> tuple[Reason, str] | None:
    """The reason an entry is kept whatever its age, or None."""
    path = f"{listing.root.rstrip('/')}/{entry.name}"
    if entry.name in SYSTEM_ENTRIES:
        return Reason.SYSTEM, ""
    if entry.name in exclude:
        return Reason.EXCLUDED, ""
    if entry.odd_name:
        return Reason.ODD_NAME, ""
    if entry.kind == "l":
        return Reason.SYMLINK, ""
    if entry.kind != "d":
        return Reason.NOT_DIRECTORY, f"type {entry.kind}"
    own = _mount_at(listing.mounts, path)
    if own is not None:
        return (Reason.NETWORK_FS if own.network else Reason.MOUNT), own.fstype
    home = _mount_holding(listing.mounts, path)
    if home is not None and home.network:
        return Reason.NETWORK_FS, home.fstype
    inner = [m.point for m in listing.mounts if m.point.startswith(path + "/")]
    if inner:
        return Reason.CONTAINS_MOUNT, inner[0]
    if entry.name in keep:
        return Reason.IN_USE, ""

    return None


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
