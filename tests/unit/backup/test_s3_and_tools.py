from __future__ import annotations

import stat
from pathlib import Path

import pytest
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError, EndpointConnectionError

from infraops.backup.pgtools import choose
from infraops.clients.postgres import Problem, classify_text
from infraops.clients.s3 import (
    MAX_PARTS,
    S3QuotaExceeded,
    S3Rejected,
    S3Unavailable,
    classify,
    part_size,
)
from infraops.errors import PermanentError


def client_error(code: str, status: int, message: str = "") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "PutObject",
    )


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("XMinioAdminBucketQuotaExceeded", 400, "Bucket quota exceeded"),
        ("XMinioStorageFull", 507, "Storage backend has reached..."),
        ("QuotaExceeded", 403, ""),
        ("ObjectQuotaExceeded", 403, ""),
        ("QUOTA_EXCEEDED", 403, ""),
        ("AccessDenied", 403, "Forbidden: Bucket quota is reached"),
        ("InternalError", 500, "bucket is read only"),
    ],
)
def test_quota_replies(code: str, status: int, message: str) -> None:
    assert isinstance(
        classify(client_error(code, status, message), "x"), S3QuotaExceeded
    )


def test_non_quota_replies() -> None:
    denied = classify(client_error("AccessDenied", 403, "Access Denied."), "x")
    assert type(denied) is S3Rejected
    assert isinstance(
        classify(client_error("InternalError", 500, "try again"), "x"), S3Unavailable
    )
    assert isinstance(classify(client_error("SlowDown", 503), "x"), S3Unavailable)
    assert isinstance(
        classify(EndpointConnectionError(endpoint_url="http://x"), "x"), S3Unavailable
    )


def test_upload_failed_error_is_unwrapped_from_its_context() -> None:
    outer = S3UploadFailedError("Failed to upload")
    outer.__context__ = client_error("QuotaExceeded", 403)
    assert isinstance(classify(outer, "x"), S3QuotaExceeded)


@pytest.mark.parametrize("size", [0, 1, 5 << 20, 80 << 30, 5 << 40])
def test_part_size_fits_any_file(size: int) -> None:
    chunk = part_size(size)
    assert chunk >= 8 << 20 and chunk % (1 << 20) == 0
    assert -(-size // chunk) <= MAX_PARTS


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('FATAL:  database "x" does not exist', Problem.GONE),
        (
            'FATAL:  database "x" is not currently accepting connections',
            Problem.REFUSES,
        ),
        ('FATAL:  cannot connect to invalid database "x"', Problem.INVALID),
        ('FATAL:  password authentication failed for user "u"', Problem.AUTH),
        ("fe_sendauth: no password supplied", Problem.AUTH),
        ("ERROR:  canceling statement due to statement timeout", Problem.LOCK),
        ("could not write to output file: No space left on device", Problem.DISK),
        (
            "pg_dump: error: aborting because of server version mismatch",
            Problem.VERSION,
        ),
        (
            'connection to server at "h", port 1 failed: Connection refused',
            Problem.UNREACHABLE,
        ),
        ("something new", Problem.OTHER),
    ],
)
def test_pg_text_classification(text: str, problem: Problem) -> None:
    assert classify_text(text) is problem


def fake_bindir(root: Path, version: str) -> Path:
    bindir = root / version / "bin"
    bindir.mkdir(parents=True)
    for tool in ("pg_dump", "pg_dumpall", "pg_restore"):
        script = bindir / tool
        script.write_text(f"#!/bin/sh\necho '{tool} (PostgreSQL) {version}'\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bindir


def test_choose_prefers_the_servers_major_then_the_next_newer(tmp_path: Path) -> None:
    b14, b16, b17 = (fake_bindir(tmp_path, v) for v in ("14.9", "16.4", "17.1"))
    extra = ":".join(map(str, (b14, b16, b17)))
    assert choose(16, "16.2", extra).bindir == b16
    assert choose(16, "16.0", f"{b14}:{b17}").bindir == b17  # no 16: next newer
    with pytest.raises(PermanentError, match="no pg_dump of major version 18"):
        choose(18, "18.0", extra)
