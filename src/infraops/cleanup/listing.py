"""Listing a node's data directory in one SSH command, and reading the answer.

The remote side is bash with GNU find and du, safe for any file name: every
field it prints ends in a NUL byte, and names are never parsed by the shell.
The listing reports the node's clock, its mount table and, per top-level
entry, the type (links are not followed) and the device. In the same command,
one du walks the local directories not known to be kept, without leaving
their filesystem, for their size and the newest modification time beneath.
"""

from __future__ import annotations

from dataclasses import dataclass

LIST_SCRIPT = r"""
set -u
cd -P -- "$1" 2>/dev/null || { echo "infraops: cannot enter $1" >&2; exit 3; }
shift  # the rest: names kept whatever their age, never walked
printf 'clock\0%s\0root\0%s\0' "$(date +%s)" "$(pwd -P)"
printf 'mountinfo\0'; cat /proc/self/mountinfo; printf '\0'
root_dev=$(stat -c %d .)
walk=()
while IFS= read -r -d '' name && IFS= read -r -d '' kind && IFS= read -r -d '' dev
do
    printf 'entry\0%s\0%s\0%s\0' "$name" "$kind" "$dev"
    [ "$kind" = d ] && [ "$dev" = "$root_dev" ] || continue
    for kept in "$@"; do [ "$kept" = "$name" ] && continue 2; done
    walk+=("./$name")
done < <(find . -mindepth 1 -maxdepth 1 -printf '%P\0%y\0%D\0')
case $(stat -f -c %T .) in  # never walk a network filesystem
    nfs*|cifs|smb*|fuse*|9p|ceph*|gluster*|lustre|afs|gpfs|ocfs2|gfs2) walk=() ;;
esac
printf 'usage\0'
if [ ${#walk[@]} -gt 0 ]; then
    du -0 -sx -B1 --time --time-style=+%s -- "${walk[@]}" 2>/dev/null
fi
exit 0
"""

REMOVE_SCRIPT = r"""
set -u
cd -P -- "$1" 2>/dev/null || { echo "infraops: cannot enter $1" >&2; exit 3; }
shift
for name in "$@"; do
    case $name in ''|.|..|*/*) printf 'refused\0%s\0' "$name"; continue ;; esac
    if [ -L "./$name" ] || [ ! -d "./$name" ]; then
        printf 'vanished\0%s\0' "$name"; continue
    fi
    before=$(du -sxB1 -- "./$name" | head -n1 | cut -f1)
    err=$(rm -rf --one-file-system -- "./$name" 2>&1 | head -c 400)
    after=0
    if [ -e "./$name" ]; then after=$(du -sxB1 -- "./$name" | head -n1 | cut -f1); fi
    printf 'removed\0%s\0%s\0%s\0%s\0' "$name" "$before" "$after" "$err"
done
"""

NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "beegfs",
        "ocfs2",
        "gfs2",
        "afs",
        "davfs",
        "fuse.sshfs",
        "fuse.glusterfs",
        "fuse.ceph",
        "fuse.cephfs",
        "fuse.s3fs",
        "fuse.rclone",
        "fuse.juicefs",
        "fuse.gcsfuse",
        "fuse.mfs",
    }
)


class ListingError(ValueError):
    """The node's answer does not have the shape the script prints."""


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str

    @property
    def network(self) -> bool:
        return self.fstype in NETWORK_FILESYSTEMS


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # find's %y: d directory, f file, l symlink, ...
    device: int
    odd_name: bool = False  # not UTF-8: shown escaped, never acted upon


@dataclass(frozen=True)
class Usage:
    """What du found beneath an entry: bytes on disk and the newest mtime."""

    size_bytes: int
    newest_mtime: float


@dataclass(frozen=True)
class Listing:
    clock: float
    root: str
    mounts: tuple[Mount, ...]
    entries: tuple[Entry, ...]
    usage: dict[str, Usage]


def parse_listing(output: bytes) -> Listing:
    """Read what LIST_SCRIPT printed."""
    fields = output.split(b"\0")
    if fields and fields[-1] == b"":
        fields.pop()
    try:
        head = dict(zip(fields[0:6:2], fields[1:6:2], strict=True))
        clock = float(head[b"clock"])
        root = _text(head[b"root"])
        mounts = parse_mountinfo(_text(head[b"mountinfo"]))
        entries = []
        at = 6
        while fields[at] == b"entry":
            _, name, kind, device = fields[at : at + 4]
            entries.append(Entry(_text(name), _text(kind), int(device), _odd(name)))
            at += 4
        if fields[at] != b"usage":
            raise ListingError(f"unexpected record {fields[at][:20]!r}")
        usage = parse_usage(b"\0".join(fields[at + 1 :]))
    except (KeyError, IndexError, ValueError) as error:
        raise ListingError(f"malformed listing from the node: {error}") from None

    return Listing(clock, root, mounts, tuple(entries), usage)


def parse_mountinfo(text: str) -> tuple[Mount, ...]:
    """Mount points and filesystem types from /proc/self/mountinfo."""
    mounts = []
    for line in text.splitlines():
        before, sep, after = line.partition(" - ")
        fields = before.split(" ")
        if not sep or len(fields) < 5:
            continue
        mounts.append(Mount(_unescape(fields[4]), after.split(" ")[0]))

    return tuple(mounts)


def parse_usage(output: bytes) -> dict[str, Usage]:
    """du's NUL-terminated `SIZE<TAB>MTIME<TAB>./NAME` lines, by name."""
    usage = {}
    for record in output.split(b"\0"):
        parts = record.split(b"\t", 2)
        if len(parts) != 3 or not parts[2].startswith(b"./"):
            continue
        size, newest, path = parts
        try:
            usage[_text(path[2:])] = Usage(int(size), float(newest))
        except ValueError:
            continue

    return usage


def _unescape(path: str) -> str:
    # The kernel writes space, tab, newline and backslash as octal escapes.
    for code in ("040", "011", "012", "134"):
        path = path.replace("\\" + code, chr(int(code, 8)))
    return path


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="backslashreplace")


def _odd(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
