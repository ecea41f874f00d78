"""The listing script, run for real with bash on a local tree, and its parser."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from infraops.cleanup.listing import (
    LIST_SCRIPT,
    REMOVE_SCRIPT,
    ListingError,
    parse_listing,
    parse_mountinfo,
)

AWKWARD = [
    "plain",
    "with space",
    "new\nline",
    "tab\there",
    "-dash",
    "qu'ote",
    "$(x)",
    "entry",
    "usage",
]


def run(script: str, *args: str | bytes) -> bytes:
    return subprocess.run(
        ["bash", "-c", script, "test", *args], check=True, capture_output=True
    ).stdout


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    for name in AWKWARD:
        (root / name).mkdir()
        (root / name / "file").write_bytes(b"x" * 5000)
    old = time.time() - 10 * 86400
    for path in root.rglob("*"):
        os.utime(path, (old, old), follow_symlinks=False)
    newest = root / "plain" / "deep"
    newest.mkdir()
    (newest / "recent").write_text("new")
    os.utime(root / "plain", (old, old))
    (root / "link").symlink_to("/etc")
    (root / "afile").write_text("hello")

    return root


class TestListScript:
    def test_lists_every_awkward_name_exactly(self, tree: Path) -> None:
        """Names with spaces, newlines and shell syntax come back intact."""
        listing = parse_listing(run(LIST_SCRIPT, str(tree)))

        names = {entry.name for entry in listing.entries}
        assert names == {*AWKWARD, "link", "afile"}
        kinds = {entry.name: entry.kind for entry in listing.entries}
        assert kinds["link"] == "l"
        assert kinds["afile"] == "f"
        assert kinds["new\nline"] == "d"

    def test_measures_what_is_not_kept(self, tree: Path) -> None:
        """du measures size and newest mtime beneath, skipping kept names."""
        listing = parse_listing(run(LIST_SCRIPT, str(tree), "qu'ote", "-dash"))
        usage = listing.usage

        assert set(usage) == {*AWKWARD} - {"qu'ote", "-dash"}
        assert usage["new\nline"].size_bytes >= 5000
        assert time.time() - usage["plain"].newest_mtime < 60
        assert time.time() - usage["with space"].newest_mtime > 9 * 86400

    def test_reports_node_clock_root_and_mounts(self, tree: Path) -> None:
        """The listing carries the node's clock, the real root and its mounts."""
        listing = parse_listing(run(LIST_SCRIPT, str(tree)))

        assert abs(listing.clock - time.time()) < 60
        assert listing.root == str(tree.resolve())
        assert any(mount.point == "/" for mount in listing.mounts)

    def test_missing_root_fails_with_a_message(self, tmp_path: Path) -> None:
        """A data_dir that does not exist is an error, not an empty listing."""
        done = subprocess.run(
            ["bash", "-c", LIST_SCRIPT, "t", str(tmp_path / "nope")],
            capture_output=True,
            check=False,
        )

        assert done.returncode == 3
        assert b"cannot enter" in done.stderr


class TestRemoveScript:
    def test_removes_only_named_plain_directories(self, tree: Path) -> None:
        """Removal measures what it freed and refuses names that climb out."""
        outside = tree.parent / "outside"
        outside.mkdir()
        out = run(REMOVE_SCRIPT, str(tree), "with space", "../outside", "..", "link")
        fields = out.split(b"\0")

        assert not (tree / "with space").exists()
        assert outside.exists()
        assert (tree / "link").is_symlink()
        assert fields[:2] == [b"removed", b"with space"]
        assert int(fields[2]) >= 5000
        assert fields[3] == b"0"
        assert b"refused" in fields
        assert b"vanished" in fields


class TestParsers:
    def test_mountinfo_unescapes_octal(self) -> None:
        """Spaces in mount points arrive as \\040 and are decoded."""
        text = (
            "36 35 98:0 /mnt1 /mnt\\040point rw,noatime master:1 - ext3 /dev/root rw\n"
            "37 35 0:50 / /srv/share rw shared:2 - nfs4 server:/export rw\n"
        )
        mounts = parse_mountinfo(text)

        assert [(m.point, m.fstype, m.network) for m in mounts] == [
            ("/mnt point", "ext3", False),
            ("/srv/share", "nfs4", True),
        ]

    def test_truncated_output_is_an_error(self) -> None:
        """A listing cut short is rejected rather than read as fewer entries."""
        with pytest.raises(ListingError):
            parse_listing(
                b"clock\x00123\x00root\x00/x\x00mountinfo\x00\x00entry\x00a\x00d\x00"
            )
