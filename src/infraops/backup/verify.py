"""Re-reading a committed run: every artifact against its manifest.

Used by `infraops backup verify RUN` and `infraops backup list`.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infraops.backup import naming, pgtools, processes
from infraops.backup.activities import local_runs, read_manifest
from infraops.backup.archive import (
    ArchiveError,
    GlobalsVerifier,
    SnapshotVerifier,
    read_chunks,
    sha256_file,
)
from infraops.backup.models import MANIFEST_NAME, Artifact, Kind
from infraops.errors import ConfigError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def list_local(root: Path) -> list[dict[str, Any]]:
    rows = []
    for run in local_runs(root):
        size = sum(
            p.stat().st_size for p in (root / run.run_id).iterdir() if p.is_file()
        )
        manifest = run.manifest
        rows.append(
            {
                "run_id": run.run_id,
                "status": manifest.status.value if manifest else "uncommitted",
                "targets": [t.value for t in manifest.targets] if manifest else [],
                "size": size,
                "started_at": run.started.isoformat(),
            }
        )
    return rows


def verify_run(root: Path, run_id: str) -> list[Check]:
    if not naming.is_run_id(run_id):
        raise ConfigError(
            f"RUN: {run_id!r} is not a run id (YYYYMMDDTHHMMSSZ-xxxxxxxx)"
        )
    directory = root / run_id
    manifest = read_manifest(directory / MANIFEST_NAME)
    if manifest is None:
        return [Check(MANIFEST_NAME, False, "missing or unreadable: run not committed")]
    checks = [Check(MANIFEST_NAME, True, f"status {manifest.status.value}")]
    listed = {artifact.name for artifact in manifest.artifacts} | {MANIFEST_NAME}
    for artifact in manifest.artifacts:
        checks.append(_verify_artifact(directory / artifact.name, artifact))
    for extra in sorted(p.name for p in directory.iterdir()):
        if extra not in listed:
            checks.append(Check(extra, False, "not in the manifest"))
    return checks


def _verify_artifact(path: Path, artifact: Artifact) -> Check:
    if not path.is_file():
        return Check(artifact.name, False, "missing")
    sha256, size = sha256_file(path)
    if sha256 != artifact.sha256 or size != artifact.size:
        return Check(
            artifact.name,
            False,
            f"sha256/size differ from the manifest ({size} bytes, {sha256[:12]})",
        )
    if artifact.encrypted:
        return Check(artifact.name, True, "sha256 matches (encrypted: content unread)")
    try:
        if artifact.kind in (Kind.NOMAD_SNAPSHOT, Kind.CONSUL_SNAPSHOT):
            snapshot = SnapshotVerifier()
            for chunk in read_chunks(path):
                snapshot.feed(chunk)
            meta = snapshot.finish()
            return Check(
                artifact.name, True, f"sha256 and archive ok (index {meta.index})"
            )
        if artifact.kind is Kind.PG_GLOBALS:
            globals_ = GlobalsVerifier()
            for chunk in read_chunks(path):
                globals_.feed(chunk)
            globals_.finish()
            return Check(artifact.name, True, "sha256 ok, globals dump complete")
    except ArchiveError as error:
        return Check(artifact.name, False, str(error))
    return _verify_dump(path, artifact)


def _verify_dump(path: Path, artifact: Artifact) -> Check:
    major = int((artifact.tool_version or "0").split(".")[0])
    toolsets = [t for t in map(pgtools.probe, pgtools.candidates()) if t]
    usable = sorted((t for t in toolsets if t.major >= major), key=lambda t: t.major)
    if not usable:
        return Check(artifact.name, False, f"no pg_restore {major} or newer installed")
    done = subprocess.run(
        [usable[0].tool("pg_restore"), "--file=/dev/null", str(path)],
        env=processes.child_env({}),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return Check(artifact.name, False, processes.last_line(done.stderr))
    return Check(artifact.name, True, "sha256 ok, pg_restore read it all")
