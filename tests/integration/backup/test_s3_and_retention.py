"""S3 through moto over HTTP and the quota stand-in; eviction and retention."""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from infraops.backup.models import BackupConfig, BackupResult, RunStatus, Target
from infraops.backup.naming import run_id
from infraops.clients.s3 import S3QuotaExceeded, S3Rejected, S3Store, S3Unavailable
from infraops.config import S3Settings
from tests.integration.backup.conftest import Lab
from tests.integration.backup.helpers import fake_manifest, write_local, write_s3
from tests.lab.s3_quota import QUOTA_VENDORS, VENDORS

pytestmark = pytest.mark.lab


def store(lab: Lab) -> S3Store:
    return S3Store(S3Settings())


@pytest.mark.parametrize("vendor", QUOTA_VENDORS)
def test_each_vendor_quota_reply_is_a_quota_error(
    lab: Lab, tmp_path: Path, vendor: str
) -> None:
    path = tmp_path / "a"
    path.write_bytes(b"x" * 1000)
    lab.proxy.always = VENDORS[vendor]
    with pytest.raises(S3QuotaExceeded) as error:
        store(lab).upload(
            path, f"{lab.prefix}/a", hashlib.sha256(b"x" * 1000).hexdigest(), 1000
        )
    assert VENDORS[vendor].code in str(error.value)


def test_plain_access_denied_and_a_plain_500_are_not_quota(
    lab: Lab, tmp_path: Path
) -> None:
    path = tmp_path / "a"
    path.write_bytes(b"x")
    sha = hashlib.sha256(b"x").hexdigest()
    lab.proxy.always = VENDORS["denied"]
    with pytest.raises(S3Rejected) as denied:
        store(lab).upload(path, f"{lab.prefix}/a", sha, 1)
    assert not isinstance(denied.value, S3QuotaExceeded)
    lab.proxy.always = VENDORS["seaweedfs"]
    with pytest.raises(S3Unavailable):
        store(lab).upload(path, f"{lab.prefix}/a", sha, 1)
    assert lab.proxy.rejections >= 3  # botocore retried the 500


def test_large_file_goes_multipart_and_is_checked(lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "big"
    size = 72 * 1024 * 1024
    with path.open("wb") as out:
        for _ in range(size // (8 << 20) + 1):
            out.write(os.urandom(8 << 20))
        out.truncate(size)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    etag = store(lab).upload(path, f"{lab.prefix}/big", digest, size)
    assert etag.endswith("-9")  # 9 parts of 8 MiB
    head = lab.moto.client().head_object(
        Bucket=lab.moto.bucket, Key=f"{lab.prefix}/big"
    )
    assert head["ContentLength"] == size and head["Metadata"]["sha256"] == digest


def test_stale_multipart_uploads_are_aborted(lab: Lab) -> None:
    client = lab.moto.client()
    mine = client.create_multipart_upload(
        Bucket=lab.moto.bucket, Key=f"{lab.prefix}/r/x"
    )
    other = client.create_multipart_upload(Bucket=lab.moto.bucket, Key="elsewhere/x")
    s3 = store(lab)
    aborted = s3.abort_stale_uploads(
        f"{lab.prefix}", datetime.now(UTC) + timedelta(hours=2), timedelta(hours=1), "-"
    )
    assert aborted == 1
    left = {
        u["UploadId"]
        for u in client.list_multipart_uploads(Bucket=lab.moto.bucket).get(
            "Uploads", []
        )
    }
    assert mine["UploadId"] not in left and other["UploadId"] in left
    client.abort_multipart_upload(
        Bucket=lab.moto.bucket, Key="elsewhere/x", UploadId=other["UploadId"]
    )


async def test_quota_evicts_oldest_runs_never_the_newest_good(
    backup_worker: tuple[Client, str], lab: Lab
) -> None:
    now = datetime.now(UTC)
    client = lab.moto.client()
    size = 200_000
    runs = {}
    for days, status in (
        (40, RunStatus.GOOD),
        (30, RunStatus.GOOD),
        (20, RunStatus.GOOD),
        (1, RunStatus.GOOD),
    ):
        manifest = fake_manifest(
            now - timedelta(days=days), status, uuid.uuid4().hex, size
        )
        write_s3(client, lab.moto.bucket, lab.prefix, manifest, manifest.run_id, size)
        runs[days] = manifest.run_id
    incomplete = run_id(now - timedelta(days=5), uuid.uuid4().hex)
    write_s3(client, lab.moto.bucket, lab.prefix, None, incomplete, size)
    usage = lab.moto.usage()
    # room for nothing new until two runs (the incomplete one, then the
    # oldest good one) have gone
    lab.proxy.set_quota(usage - size, vendor="minio-quota")
    result = await _backup_nomad(backup_worker)
    assert result.evictions == [incomplete, runs[40]]
    assert all(a.s3_etag for a in result.manifest.artifacts)
    keys = lab.moto.object_keys()
    assert any(runs[1] in key for key in keys)  # the newest good run stays
    assert not any(runs[40] in key or incomplete in key for key in keys)


async def test_quota_gives_up_after_three_evictions(
    backup_worker: tuple[Client, str], lab: Lab
) -> None:
    now = datetime.now(UTC)
    client = lab.moto.client()
    for days in (50, 40, 30, 20, 10):
        manifest = fake_manifest(
            now - timedelta(days=days), RunStatus.GOOD, uuid.uuid4().hex
        )
        write_s3(client, lab.moto.bucket, lab.prefix, manifest, manifest.run_id)
    lab.proxy.always = VENDORS["ceph"]
    result = await _backup_nomad(backup_worker)
    assert len(result.evictions) == 3
    assert result.status is RunStatus.GOOD  # S3 trouble only warns
    assert any("after 3 evictions" in w for w in result.manifest.warnings)
    lab.proxy.always = None
    remaining = {
        k.split("/")[1] for k in lab.moto.object_keys() if k.startswith(lab.prefix)
    }
    assert len(remaining) == 2  # the newest good run and one more survived


async def test_access_denied_does_not_evict(
    backup_worker: tuple[Client, str], lab: Lab
) -> None:
    now = datetime.now(UTC)
    manifest = fake_manifest(now - timedelta(days=60), RunStatus.GOOD, uuid.uuid4().hex)
    write_s3(lab.moto.client(), lab.moto.bucket, lab.prefix, manifest, manifest.run_id)
    lab.proxy.always = VENDORS["denied"]
    result = await _backup_nomad(backup_worker)
    assert result.evictions == []
    assert any("AccessDenied" in w for w in result.manifest.warnings)


async def test_retention_keeps_min_good_runs_whatever_their_age(
    backup_worker: tuple[Client, str], lab: Lab
) -> None:
    now = datetime.now(UTC)
    client = lab.moto.client()
    made = {}
    for days, status in (
        (90, RunStatus.GOOD),
        (80, RunStatus.GOOD),
        (70, RunStatus.FAILED),
        (60, RunStatus.GOOD),
        (50, RunStatus.PARTIAL),
        (3, RunStatus.FAILED),
    ):
        manifest = fake_manifest(now - timedelta(days=days), status, uuid.uuid4().hex)
        write_local(lab.local, manifest, manifest.run_id)
        write_s3(client, lab.moto.bucket, lab.prefix, manifest, manifest.run_id)
        made[days] = manifest.run_id
    # a run without a manifest, dated by its id; mtimes say "new"
    old_uncommitted = run_id(now - timedelta(days=100), uuid.uuid4().hex)
    write_local(lab.local, None, old_uncommitted)
    # the snapshot leg fails: retention must not run at all
    lab.nomad.set_leader(False)
    partial = await _backup_nomad(backup_worker)
    assert partial.status is RunStatus.PARTIAL
    assert partial.local_deleted == [] and partial.s3_deleted == []
    lab.nomad.set_leader(True)
    result = await _backup_nomad(backup_worker, min_good_runs=3)
    assert result.status is RunStatus.GOOD
    # the 3 newest good runs for nomad: this one, 50 (partial overall, but
    # nomad was good in it) and 60; the stale run above was not good
    kept_good = {made[60], made[50]}
    deleted = set(result.local_deleted)
    assert deleted == {made[90], made[80], made[70], old_uncommitted}
    assert set(result.s3_deleted) == {made[90], made[80], made[70]}
    left = {p.name for p in lab.local.iterdir()}
    assert kept_good <= left and made[3] in left and result.run_id in left


async def _backup_nomad(
    worker: tuple[Client, str], min_good_runs: int = 2
) -> BackupResult:
    client, queue = worker
    return await client.execute_workflow(
        "Backup",
        BackupConfig(targets=[Target.NOMAD], min_good_runs=min_good_runs),
        id=f"backup-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        result_type=BackupResult,
    )
