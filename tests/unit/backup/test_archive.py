from __future__ import annotations

import base64
import gzip
import hashlib
import io
import re
import tarfile

import pytest

from infraops.backup.archive import (
    ArchiveError,
    GlobalsVerifier,
    SnapshotVerifier,
    check_digest,
)
from tests.lab.snapshots import BROKEN, FIXTURE_ERRORS, build_tar, fixture_tar, gzipped


def verify(data: bytes, step: int = 1000) -> object:
    verifier = SnapshotVerifier()
    for start in range(0, len(data), step):
        verifier.feed(data[start : start + step])
    return verifier.finish()


def test_a_good_archive_reports_index_and_term() -> None:
    meta = verify(gzipped(build_tar(index=77, term=5)), step=7)
    assert (meta.index, meta.term, meta.version) == (77, 5, 1)  # type: ignore[attr-defined]


@pytest.mark.parametrize("broken", BROKEN)
def test_each_broken_archive_is_refused(broken: str) -> None:
    with pytest.raises(ArchiveError):
        verify(gzipped(build_tar(broken=broken)))


@pytest.mark.parametrize("name", sorted(FIXTURE_ERRORS))
def test_upstream_fixtures_fail_with_nomads_words(name: str) -> None:
    tar = fixture_tar(name)
    if tar is None:
        pytest.skip("the shared snapshot fixtures are not here (optional set)")
    with pytest.raises(ArchiveError, match=re.escape(FIXTURE_ERRORS[name])):
        verify(gzipped(tar))


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.99])
def test_truncated_streams_fail(fraction: float) -> None:
    data = gzipped(build_tar(state=bytes(range(256)) * 400))
    with pytest.raises(ArchiveError, match=r"truncated|ends early"):
        verify(data[: int(len(data) * fraction)])


def test_data_after_the_gzip_stream_fails() -> None:
    with pytest.raises(ArchiveError, match="after the end of the gzip"):
        verify(gzipped(build_tar()) + b"\x81\xa5Error")


def test_two_gzip_members_fail() -> None:
    with pytest.raises(ArchiveError, match="after the end of the gzip"):
        verify(gzipped(build_tar()) + gzipped(b"more"))


def test_not_gzip_fails() -> None:
    with pytest.raises(ArchiveError, match="gzip"):
        verify(build_tar())


def test_empty_body_fails() -> None:
    with pytest.raises(ArchiveError, match="empty"):
        SnapshotVerifier().finish()


def test_corrupt_tar_header_fails() -> None:
    tar = bytearray(build_tar())
    tar[10] ^= 0xFF  # inside the first header's name
    with pytest.raises(ArchiveError):
        verify(gzip.compress(bytes(tar)))


def test_pax_long_names_are_read() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("n" * 150)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ArchiveError, match='unexpected file "nnnn'):
        verify(gzip.compress(out.getvalue()))


def test_digest_header() -> None:
    digest = hashlib.sha256(b"body").digest()
    good = "sha-256=" + base64.b64encode(digest).decode()
    assert check_digest(good, digest) is True
    assert (
        check_digest("sha-256=" + base64.b64encode(b"x" * 32).decode(), digest) is False
    )
    assert check_digest(None, digest) is None
    assert check_digest("md5=abc", digest) is None


def test_globals_need_header_and_completion_marker() -> None:
    complete = (
        b"--\n-- PostgreSQL database cluster dump\n--\n\nCREATE ROLE x;\n"
        b"--\n-- PostgreSQL database cluster dump complete\n--\n\n"
    )
    verifier = GlobalsVerifier()
    verifier.feed(complete)
    verifier.finish()
    cut = GlobalsVerifier()
    cut.feed(complete[:-20])
    with pytest.raises(ArchiveError, match="ends early"):
        cut.finish()
