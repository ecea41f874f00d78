"""Fabricated runs for retention and eviction tests."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from infraops.backup.models import (
    Artifact,
    Kind,
    Manifest,
    RunStatus,
    Target,
)
from infraops.backup.naming import run_id


def fake_manifest(
    started: datetime, status: RunStatus, unique: str, size: int = 1000
) -> Manifest:
    rid = run_id(started, unique)
    good = [Target.NOMAD] if status is not RunStatus.FAILED else []
    return Manifest(
        run_id=rid,
        started_at=started,
        finished_at=started,
        status=status,
        targets=[Target.NOMAD],
        good_targets=good,
        artifacts=[
            Artifact(
                name="nomad.snap",
                kind=Kind.NOMAD_SNAPSHOT,
                target=Target.NOMAD,
                size=size,
                sha256=hashlib.sha256(b"x" * size).hexdigest(),
                verification="fabricated",
            )
        ],
    )


def write_local(
    root: Path, manifest: Manifest | None, rid: str, size: int = 1000
) -> None:
    directory = root / rid
    directory.mkdir()
    (directory / "nomad.snap").write_bytes(b"x" * size)
    if manifest is not None:
        (directory / "manifest.json").write_text(manifest.model_dump_json())


def write_s3(
    client: Any,
    bucket: str,
    prefix: str,
    manifest: Manifest | None,
    rid: str,
    size: int = 1000,
) -> None:
    client.put_object(Bucket=bucket, Key=f"{prefix}/{rid}/nomad.snap", Body=b"x" * size)
    if manifest is not None:
        client.put_object(
            Bucket=bucket,
            Key=f"{prefix}/{rid}/manifest.json",
            Body=manifest.model_dump_json().encode(),
        )
