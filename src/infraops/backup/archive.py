"""Reading snapshot archives and globals dumps back, strictly, as a stream.

A Consul or Nomad snapshot is one gzip member holding a tar of exactly
`meta.json`, `state.bin` and `SHA256SUMS`. The verifier is fed the bytes as
they arrive (or as they are read back from disk), so a snapshot is checked in
one pass with bounded memory, before anything is renamed into place:

- the gzip stream is inflated to its end marker, and nothing may follow it
  (Nomad appends an error to a 200 that failed mid-stream);
- every tar header checksum is checked, and no other member is allowed;
- the sums in `SHA256SUMS` must cover both files and match them.

The error texts follow Nomad's `helper/snapshot/archive.go`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BLOCK = 512
CHUNK = 1 << 20
_EXPECTED = ("meta.json", "state.bin", "SHA256SUMS")
_SMALL_LIMIT = 4 << 20  # meta.json and SHA256SUMS are kept whole to parse
GLOBALS_HEAD = b"--\n-- PostgreSQL database cluster dump\n--\n"
GLOBALS_TAIL = b"--\n-- PostgreSQL database cluster dump complete\n--\n\n"


class ArchiveError(ValueError):
    """The bytes are not a complete, intact archive of the expected shape."""


@dataclass(frozen=True)
class SnapshotMeta:
    index: int | None
    term: int | None
    version: int | None
    snapshot_id: str | None
    state_bytes: int


def read_chunks(path: Path, size: int = CHUNK) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(size):
            yield chunk


# -- gzip + tar ----------------------------------------------------------------


@dataclass
class _Member:
    name: str
    remaining: int
    kind: str  # "file", "pax", "gnu-name", "skip"
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    keep: bytearray | None = None
    size: int = 0


class _TarReader:
    """A push parser for ustar/PAX/GNU tar, as Go's archive/tar writes them."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._member: _Member | None = None
        self._padding = 0
        self._zero_blocks = 0
        self._pending_name: str | None = None
        self._pending_size: int | None = None
        self.files: dict[str, _Member] = {}
        self.ended = False

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if self._member is not None:
                if not self._consume_member():
                    return
                continue
            if self._padding:
                take = min(self._padding, len(self._buffer))
                del self._buffer[:take]
                self._padding -= take
                if self._padding:
                    return
                continue
            if len(self._buffer) < BLOCK:
                return
            block = bytes(self._buffer[:BLOCK])
            del self._buffer[:BLOCK]
            self._header(block)

    def _consume_member(self) -> bool:
        member = self._member
        assert member is not None
        take = min(member.remaining, len(self._buffer))
        if take:
            piece = bytes(self._buffer[:take])
            del self._buffer[:take]
            member.remaining -= take
            member.digest.update(piece)
            if member.keep is not None:
                if len(member.keep) + len(piece) > _SMALL_LIMIT:
                    raise ArchiveError(f"{member.name!r} is implausibly large")
                member.keep += piece
        if member.remaining:
            return False
        self._finish_member(member)
        self._member = None
        return True

    def _header(self, block: bytes) -> None:
        if self.ended:
            if block.strip(b"\0"):
                raise ArchiveError("data after the end of the tar archive")
            return
        if not block.strip(b"\0"):
            self._zero_blocks += 1
            if self._zero_blocks == 2:
                self.ended = True
            return
        if self._zero_blocks:
            raise ArchiveError("a lone zero block inside the tar archive")
        _check_header_sum(block)
        typeflag = chr(block[156]) if block[156] else "0"
        name = _cstring(block[0:100])
        if block[257:262] == b"ustar" and block[345]:
            name = f"{_cstring(block[345:500])}/{name}"
        size = _number(block[124:136])
        if self._pending_name is not None:
            name, self._pending_name = self._pending_name, None
        if self._pending_size is not None:
            size, self._pending_size = self._pending_size, None
        if typeflag in "07":
            kind = "file"
            if name not in _EXPECTED:
                raise ArchiveError(f'unexpected file "{name}" in snapshot')
            if name in self.files:
                raise ArchiveError(f'file "{name}" appears twice in snapshot')
        elif typeflag == "x":
            kind = "pax"
        elif typeflag == "L":
            kind = "gnu-name"
        elif typeflag == "g":
            kind = "skip"
        else:
            raise ArchiveError(f'unexpected entry "{name}" (type {typeflag!r})')
        keep = bytearray() if kind != "file" or name != "state.bin" else None
        self._member = _Member(name=name, remaining=size, kind=kind, keep=keep)
        self._member.size = size
        self._padding = (-size) % BLOCK
        if size == 0:
            self._finish_member(self._member)
            self._member = None

    def _finish_member(self, member: _Member) -> None:
        if member.kind == "file":
            self.files[member.name] = member
        elif member.kind == "pax":
            for key, value in _pax_records(bytes(member.keep or b"")):
                if key == "path":
                    self._pending_name = value
                elif key == "size":
                    self._pending_size = int(value)
        elif member.kind == "gnu-name":
            self._pending_name = _cstring(bytes(member.keep or b""))

    def finish(self) -> None:
        if self._member is not None or self._padding:
            raise ArchiveError("tar archive ends inside a file (truncated)")
        if not self.ended:
            raise ArchiveError("tar archive has no end marker (truncated)")


def _cstring(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _number(raw: bytes) -> int:
    if raw and raw[0] & 0x80:  # base-256, for sizes beyond 8 GiB
        return int.from_bytes(raw[1:], "big")
    text = raw.split(b"\0", 1)[0].strip(b" ").decode("ascii", "replace")
    try:
        return int(text or "0", 8)
    except ValueError:
        raise ArchiveError(f"bad number {text!r} in a tar header") from None


def _check_header_sum(block: bytes) -> None:
    stored = _number(block[148:156])
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:])
    if stored != computed:
        raise ArchiveError("tar header checksum mismatch (corrupt archive)")


def _pax_records(data: bytes) -> Iterator[tuple[str, str]]:
    while data:
        length_text, _, _ = data.partition(b" ")
        try:
            length = int(length_text)
        except ValueError:
            raise ArchiveError("malformed PAX header") from None
        record, data = data[:length], data[length:]
        _, _, body = record.rstrip(b"\n").partition(b" ")
        key, _, value = body.partition(b"=")
        yield key.decode("utf-8", "replace"), value.decode("utf-8", "replace")


class SnapshotVerifier:
    """Feed the gzipped bytes of a snapshot; `finish()` says what was in it."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(wbits=31)
        self._tar = _TarReader()
        self._ended = False
        self.compressed = hashlib.sha256()
        self.compressed_bytes = 0

    def feed(self, chunk: bytes) -> None:
        self.compressed.update(chunk)
        self.compressed_bytes += len(chunk)
        if self._ended:
            if chunk:
                raise ArchiveError("data after the end of the gzip stream")
            return
        data = chunk
        try:
            while data:
                out = self._inflate.decompress(data, CHUNK)
                self._tar.feed(out)
                data = self._inflate.unconsumed_tail
            if self._inflate.eof:
                self._ended = True
                if self._inflate.unused_data:
                    raise ArchiveError("data after the end of the gzip stream")
        except zlib.error as error:
            raise ArchiveError(f"not a valid gzip stream: {error}") from None

    def finish(self) -> SnapshotMeta:
        if self.compressed_bytes == 0:
            raise ArchiveError("the snapshot is empty")
        if not self._ended:
            raise ArchiveError("gzip stream ends early (truncated snapshot)")
        self._tar.finish()
        return _check_sums(self._tar.files)


def _check_sums(files: dict[str, _Member]) -> SnapshotMeta:
    prefix = "failed checking integrity of snapshot"
    sums_member = files.get("SHA256SUMS")
    if sums_member is None:
        raise ArchiveError(f"{prefix}: file missing")
    listed: dict[str, str] = {}
    for line in bytes(sums_member.keep or b"").decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        digest, _, name = line.partition(" ")
        listed[name.strip().lstrip("*")] = digest.strip().lower()
    for name in listed:
        if name not in ("meta.json", "state.bin"):
            raise ArchiveError(f'{prefix}: list missing hash for "{name}"')
    for name in ("meta.json", "state.bin"):
        member = files.get(name)
        actual = (member.digest if member else hashlib.sha256()).hexdigest()
        if listed.get(name) != actual:
            raise ArchiveError(f'{prefix}: hash check failed for "{name}"')
    meta_member = files["meta.json"]
    try:
        meta = json.loads(bytes(meta_member.keep or b""))
    except ValueError:
        raise ArchiveError("meta.json is not valid JSON") from None
    if not isinstance(meta, dict):
        raise ArchiveError("meta.json is not a JSON object")

    return SnapshotMeta(
        index=_int_or_none(meta.get("Index")),
        term=_int_or_none(meta.get("Term")),
        version=_int_or_none(meta.get("Version")),
        snapshot_id=str(meta["ID"]) if meta.get("ID") is not None else None,
        state_bytes=files["state.bin"].size,
    )


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def verify_snapshot_file(path: Path) -> SnapshotMeta:
    verifier = SnapshotVerifier()
    for chunk in read_chunks(path):
        verifier.feed(chunk)
    return verifier.finish()


def check_digest(header: str | None, sha256: bytes) -> bool | None:
    """Nomad's `Digest: sha-256=<base64>`: True/False, None when absent."""
    if not header:
        return None
    for part in header.split(","):
        algorithm, _, value = part.strip().partition("=")
        if algorithm.lower() == "sha-256":
            try:
                return base64.b64decode(value, validate=True) == sha256
            except ValueError:
                return False
    return None


# -- globals -----------------------------------------------------------------


class GlobalsVerifier:
    """pg_dumpall output: it must start and end as a complete dump does."""

    def __init__(self) -> None:
        self._head = bytearray()
        self._tail = b""
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if len(self._head) < 256:
            self._head += chunk[: 256 - len(self._head)]
        self._tail = (self._tail + chunk)[-256:]

    def finish(self) -> None:
        if not bytes(self._head).startswith(GLOBALS_HEAD):
            raise ArchiveError("not a pg_dumpall dump (no header)")
        if not self._tail.endswith(GLOBALS_TAIL):
            raise ArchiveError("pg_dumpall output ends early (no completion marker)")


def sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in read_chunks(path):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size
