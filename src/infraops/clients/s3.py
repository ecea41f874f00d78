"""The S3-compatible store the backup role copies runs to.

boto3 is blocking: every method here is meant to run on a worker thread
(`asyncio.to_thread`). One `S3Store` (one boto3 client, which is thread-safe)
serves the whole worker.

Errors are classified here and nowhere else:

- `S3QuotaExceeded` for each vendor's quota reply (../shared/notes/backup-facts.md):
  MinIO `XMinioAdminBucketQuotaExceeded` / `XMinioStorageFull`, Ceph RGW and
  Versity `QuotaExceeded`, NooBaa `ObjectQuotaExceeded`, Ozone
  `QUOTA_EXCEEDED`, Garage's `AccessDenied` whose message says the quota is
  reached, and SeaweedFS's `InternalError` when its message says the bucket
  is read-only. A plain `AccessDenied` (or a plain 500) is *not* a quota
  error: evicting good backups on an ambiguous answer would do harm.
- `S3Unavailable` (transient) for network trouble, throttling and 5xx;
- `S3Rejected` (permanent) for everything else the store refuses.

Checksums: botocore >= 1.36 sends CRC32 headers by default, which some stores
reject; both checksum settings are `when_required`, and integrity is checked
by our own SHA-256 in object metadata plus a HEAD after every upload.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from infraops.config import S3Settings
from infraops.errors import InfraopsError, PermanentError, TransientError

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

MiB = 1 << 20
MIN_PART = 8 * MiB
MAX_PARTS = 10_000
MULTIPART_THRESHOLD = 64 * MiB
QUOTA_CODES = frozenset(
    {
        "XMinioAdminBucketQuotaExceeded",
        "XMinioStorageFull",
        "QuotaExceeded",
        "ObjectQuotaExceeded",
        "QUOTA_EXCEEDED",
    }
)
_QUOTA_WORDS = ("quota", "read only", "read-only", "readonly")
_TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestTimeTooSkewed",
    }
)
_BULK_DELETE_REFUSED = frozenset(
    {"MissingContentMD5", "NotImplemented", "AccessDenied"}
)


class S3Unavailable(TransientError):
    """The store could not answer now."""


class S3Rejected(PermanentError):
    """The store refused the request; `code` is its error code."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class S3QuotaExceeded(S3Rejected):
    """The store says the bucket or the drive is full."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int


def part_size(size: int) -> int:
    """A multipart chunk size for a file of `size` bytes: at least 8 MiB, a
    whole number of MiB, and few enough parts (< 10,000) for any size."""
    needed = math.ceil(size / (MAX_PARTS - 100)) if size else MIN_PART
    return max(MIN_PART, math.ceil(needed / MiB) * MiB)


def classify(error: BaseException, what: str) -> InfraopsError:
    """The classified error for a boto3 failure of `what`."""
    client_error = _client_error(error)
    if client_error is not None:
        response: dict[str, Any] = client_error.response
        code = str(response.get("Error", {}).get("Code", ""))
        message = str(response.get("Error", {}).get("Message", ""))
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        text = f"{what}: {code or status} {message}".strip()
        lowered = message.lower()
        if code in QUOTA_CODES or (
            code in ("AccessDenied", "InternalError")
            and any(word in lowered for word in _QUOTA_WORDS)
        ):
            return S3QuotaExceeded(text, code)
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return S3Unavailable(text)
        return S3Rejected(text, code)
    if isinstance(error, BotoCoreError | OSError):
        return S3Unavailable(f"{what}: {type(error).__name__}: {error}")
    return S3Rejected(f"{what}: {type(error).__name__}: {error}")


def _client_error(error: BaseException | None) -> ClientError | None:
    # S3UploadFailedError has no .response; the ClientError is its context.
    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, ClientError):
            return error
        error = error.__cause__ or error.__context__
        seen += 1
    return None


class S3Store:
    """One bucket and prefix on an S3-compatible store."""

    def __init__(self, settings: S3Settings) -> None:
        if not settings.s3_bucket:
            raise ValueError("S3_BUCKET is not set")
        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix.strip("/")
        self._endpoint = settings.s3_endpoint or "aws"
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.s3_endpoint,
            region_name=settings.s3_region,
            aws_access_key_id=_secret(settings.s3_access_key),
            aws_secret_access_key=_secret(settings.s3_secret_key),
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=10,
                read_timeout=120,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                max_pool_connections=16,
            ),
        )

    # -- objects -----------------------------------------------------------

    def upload(self, path: Path, key: str, sha256: str, size: int) -> str:
        """Upload `path` to `key`, then HEAD it; returns the ETag."""
        chunk = part_size(size)
        config = TransferConfig(
            multipart_threshold=max(MULTIPART_THRESHOLD, chunk),
            multipart_chunksize=chunk,
            max_concurrency=4,
            use_threads=True,
        )
        with self._span("PutObject", key):
            try:
                self._client.upload_file(
                    str(path),
                    self.bucket,
                    key,
                    ExtraArgs={
                        "Metadata": {"sha256": sha256, "size": str(size)},
                        "ContentType": "application/octet-stream",
                    },
                    Config=config,
                )
            except (S3UploadFailedError, ClientError, BotoCoreError, OSError) as error:
                raise classify(error, f"upload of {key}") from None
        head = self.head(key)
        if head is None:
            raise S3Unavailable(f"upload of {key}: the object is not there afterwards")
        stored_sha = head.get("Metadata", {}).get("sha256")
        if head.get("ContentLength") != size or stored_sha != sha256:
            raise S3Unavailable(
                f"upload of {key}: the store holds {head.get('ContentLength')} bytes "
                f"with sha256 {stored_sha}, expected {size} bytes with {sha256}"
            )
        return str(head.get("ETag", "")).strip('"')

    def head(self, key: str) -> dict[str, Any] | None:
        with self._span("HeadObject", key):
            try:
                answer: dict[str, Any] = self._client.head_object(
                    Bucket=self.bucket, Key=key
                )
                return answer
            except ClientError as error:
                status = error.response.get("ResponseMetadata", {}).get(
                    "HTTPStatusCode"
                )
                if status == 404:
                    return None
                raise classify(error, f"HEAD {key}") from None
            except BotoCoreError as error:
                raise classify(error, f"HEAD {key}") from None

    def get_bytes(self, key: str, limit: int = 64 * MiB) -> bytes | None:
        with self._span("GetObject", key):
            try:
                answer = self._client.get_object(Bucket=self.bucket, Key=key)
                body: bytes = answer["Body"].read(limit + 1)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in (
                    "NoSuchKey",
                    "404",
                ):
                    return None
                raise classify(error, f"GET {key}") from None
            except BotoCoreError as error:
                raise classify(error, f"GET {key}") from None
        if len(body) > limit:
            raise S3Rejected(f"GET {key}: larger than {limit} bytes")
        return body

    def download(self, key: str, path: Path) -> None:
        with self._span("GetObject", key):
            try:
                self._client.download_file(self.bucket, key, str(path))
            except (ClientError, BotoCoreError, OSError) as error:
                raise classify(error, f"download of {key}") from None

    def put_bytes(self, key: str, data: bytes, sha256: str) -> str:
        with self._span("PutObject", key):
            try:
                answer = self._client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    Metadata={"sha256": sha256, "size": str(len(data))},
                    ContentType="application/json",
                )
            except (ClientError, BotoCoreError) as error:
                raise classify(error, f"upload of {key}") from None
        return str(answer.get("ETag", "")).strip('"')

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        """Every object under `prefix`, page by page (1,000 keys a page)."""
        paginator = self._client.get_paginator("list_objects_v2")
        with self._span("ListObjectsV2", prefix):
            try:
                for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                    for item in page.get("Contents", []):
                        yield StoredObject(item["Key"], int(item.get("Size", 0)))
            except (ClientError, BotoCoreError) as error:
                raise classify(error, f"listing {prefix}") from None

    def delete(self, keys: list[str]) -> int:
        """Delete `keys` (every version, on a versioned bucket); returns the count.

        Bulk DeleteObjects first; stores that refuse it get single deletes.
        """
        if not keys:
            return 0
        targets: list[dict[str, str]] = [{"Key": key} for key in keys]
        if self._versioned():
            targets = list(self._versions(keys))
        deleted = 0
        for start in range(0, len(targets), 1000):
            batch = targets[start : start + 1000]
            deleted += self._delete_batch(batch)
        return deleted

    def _delete_batch(self, batch: list[dict[str, str]]) -> int:
        with self._span("DeleteObjects", batch[0]["Key"]):
            try:
                answer = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code not in _BULK_DELETE_REFUSED:
                    raise classify(error, "bulk delete") from None
                log.info(
                    "the store refuses bulk deletes (%s); deleting one by one", code
                )
                return self._delete_singly(batch)
            except BotoCoreError as error:
                raise classify(error, "bulk delete") from None
        errors = answer.get("Errors", [])
        if errors:
            first = errors[0]
            raise S3Rejected(
                f"delete of {first.get('Key')}: {first.get('Code')} "
                f"{first.get('Message', '')}".strip(),
                str(first.get("Code", "")),
            )
        return len(batch)

    def _delete_singly(self, batch: list[dict[str, str]]) -> int:
        for target in batch:
            try:
                self._client.delete_object(Bucket=self.bucket, **target)
            except (ClientError, BotoCoreError) as error:
                raise classify(error, f"delete of {target['Key']}") from None
        return len(batch)

    def _versioned(self) -> bool:
        try:
            answer = self._client.get_bucket_versioning(Bucket=self.bucket)
        except (ClientError, BotoCoreError):
            return False  # not supported by the store: nothing is versioned
        return answer.get("Status") in ("Enabled", "Suspended")

    def _versions(self, keys: list[str]) -> Iterator[dict[str, str]]:
        wanted = set(keys)
        prefixes = sorted({key.rsplit("/", 1)[0] + "/" for key in keys})
        paginator = self._client.get_paginator("list_object_versions")
        try:
            for prefix in prefixes:
                for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                    for item in [
                        *page.get("Versions", []),
                        *page.get("DeleteMarkers", []),
                    ]:
                        if item["Key"] in wanted:
                            yield {"Key": item["Key"], "VersionId": item["VersionId"]}
        except (ClientError, BotoCoreError) as error:
            raise classify(error, "listing versions") from None

    # -- multipart uploads ---------------------------------------------------

    def abort_stale_uploads(
        self, prefix: str, now: datetime, older_than: timedelta, always: str
    ) -> int:
        """Abort incomplete multipart uploads under `prefix`: those started
        before `now - older_than`, and any at all under `always` (a run whose
        earlier attempts were cut short). They are invisible to listings but
        use quota."""
        aborted = 0
        paginator = self._client.get_paginator("list_multipart_uploads")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for upload in page.get("Uploads", []):
                    key, started = upload["Key"], upload.get("Initiated")
                    stale = started is not None and started < now - older_than
                    if stale or key.startswith(always):
                        self._client.abort_multipart_upload(
                            Bucket=self.bucket, Key=key, UploadId=upload["UploadId"]
                        )
                        aborted += 1
        except (ClientError, BotoCoreError) as error:
            raise classify(error, "aborting stale multipart uploads") from None
        return aborted

    def _span(self, operation: str, key: str) -> Any:
        return tracer.start_as_current_span(
            f"s3 {operation}",
            kind=SpanKind.CLIENT,
            attributes={
                "peer.service": "s3",
                "rpc.method": operation,
                "aws.s3.bucket": self.bucket,
                "aws.s3.key": key,
            },
        )


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None
