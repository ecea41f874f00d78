"""The classifier decides what may be removed; only candidates ever are."""

from __future__ import annotations

import pytest

from infraops.cleanup.classify import SECONDS_PER_DAY, classify
from infraops.cleanup.listing import Entry, Listing, Mount, Usage
from infraops.cleanup.models import Reason, Verdict

NOW = 1_800_000_000.0
ROOT = "/opt/nomad/data"
BASE_MOUNTS = (Mount("/", "ext4"),)


def listing(
    *entries: Entry,
    mounts: tuple[Mount, ...] = BASE_MOUNTS,
    measured: bool = True,
) -> Listing:
    """A listing in which du measured every directory, unless told otherwise."""
    usage = {
        entry.name: Usage(4096, NOW - AGES.get(entry.name, 30) * SECONDS_PER_DAY)
        for entry in entries
        if measured and entry.kind == "d"
    }
    return Listing(clock=NOW, root=ROOT, mounts=mounts, entries=entries, usage=usage)


AGES: dict[str, float] = {}


def old_dir(name: str, days: float = 30, kind: str = "d") -> Entry:
    AGES[name] = days
    return Entry(name, kind, 2049)


def reasons(result: list[Verdict]) -> dict[str, Reason]:
    return {verdict.name: verdict.reason for verdict in result}


class TestClassify:
    def test_old_unreferenced_directory_is_a_candidate(self) -> None:
        """A directory nobody uses, older than the grace period, is a candidate."""
        result = classify(listing(old_dir("stale-job")), set(), grace_days=7)

        assert reasons(result) == {"stale-job": Reason.CANDIDATE}
        assert result[0].age_days == pytest.approx(30)

    @pytest.mark.parametrize("name", ["alloc", "client", "plugins", "host_volumes"])
    def test_system_directories_are_never_candidates(self, name: str) -> None:
        """Nomad's own directories are kept whatever their age."""
        result = classify(listing(old_dir(name, 999)), set(), grace_days=0)

        assert reasons(result) == {name: Reason.SYSTEM}

    def test_excluded_names_are_kept(self) -> None:
        """Names in `exclude` are kept with their own reason."""
        result = classify(
            listing(old_dir("keepme")), set(), grace_days=7, exclude=("keepme",)
        )

        assert reasons(result) == {"keepme": Reason.EXCLUDED}

    def test_symlinks_and_files_are_not_followed_or_removed(self) -> None:
        """A symlink or a plain file is reported, never a candidate."""
        result = classify(
            listing(old_dir("link", kind="l"), old_dir("file", kind="f")),
            set(),
            grace_days=7,
        )

        assert reasons(result) == {
            "file": Reason.NOT_DIRECTORY,
            "link": Reason.SYMLINK,
        }

    def test_mount_points_and_directories_holding_mounts_are_kept(self) -> None:
        """Anything that is, or contains, a mount point is left alone."""
        mounts = (
            *BASE_MOUNTS,
            Mount(f"{ROOT}/mounted", "ext4"),
            Mount(f"{ROOT}/holder/inner/deep", "tmpfs"),
        )
        result = classify(
            listing(old_dir("mounted"), old_dir("holder"), mounts=mounts),
            set(),
            grace_days=7,
        )

        assert reasons(result) == {
            "holder": Reason.CONTAINS_MOUNT,
            "mounted": Reason.MOUNT,
        }

    def test_a_prefix_of_a_mount_name_is_not_a_mount(self) -> None:
        """`job` is not affected by a mount at `job2`."""
        mounts = (*BASE_MOUNTS, Mount(f"{ROOT}/job2", "ext4"))
        result = classify(listing(old_dir("job"), mounts=mounts), set(), grace_days=7)

        assert reasons(result) == {"job": Reason.CANDIDATE}

    def test_network_filesystems_are_kept(self) -> None:
        """Entries on, or mounted from, a network filesystem are never removed."""
        on_nfs = listing(
            old_dir("a"),
            mounts=(*BASE_MOUNTS, Mount(ROOT, "nfs4")),
        )
        sshfs_mount = listing(
            old_dir("b"),
            mounts=(*BASE_MOUNTS, Mount(f"{ROOT}/b", "fuse.sshfs")),
        )

        assert reasons(classify(on_nfs, set(), grace_days=7)) == {
            "a": Reason.NETWORK_FS
        }
        assert reasons(classify(sshfs_mount, set(), grace_days=7)) == {
            "b": Reason.NETWORK_FS
        }

    def test_names_nomad_still_uses_are_kept(self) -> None:
        """A directory named after a live job, allocation or volume is in use."""
        result = classify(listing(old_dir("web")), {"web"}, grace_days=7)

        assert reasons(result) == {"web": Reason.IN_USE}

    def test_recent_by_newest_descendant_on_node_clock(self) -> None:
        """Age comes from the newest file beneath, against the node's clock."""
        result = classify(listing(old_dir("busy", days=6.9)), set(), grace_days=7)

        assert reasons(result) == {"busy": Reason.RECENT}

    def test_names_that_are_not_utf8_are_never_acted_upon(self) -> None:
        """A name we cannot show faithfully is reported, not removed."""
        odd = Entry("bad\\xff", "d", 1, odd_name=True)
        result = classify(listing(odd), set(), grace_days=7)

        assert reasons(result) == {"bad\\xff": Reason.ODD_NAME}


class TestMeasuring:
    def test_an_entry_du_could_not_measure_is_not_removed(self) -> None:
        """If du has nothing to say about an entry it is kept as vanished."""
        result = classify(
            listing(old_dir("stale"), measured=False), set(), grace_days=7
        )

        assert reasons(result) == {"stale": Reason.VANISHED}
