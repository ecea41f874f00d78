"""The Backup workflow's side effects: snapshots, dumps, S3, retention.

Every public method is an activity. Errors are classified by the clients and
here (a snapshot that fails verification is transient: the next attempt may
stream a good one); the `classified` wrapper hands them to Temporal.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from temporalio import activity

from infraops.activity_support import classified
from infraops.backup import metrics, naming, pgtools, processes
from infraops.backup.archive import (
    ArchiveError,
    GlobalsVerifier,
    SnapshotVerifier,
    check_digest,
    read_chunks,
)
from infraops.backup.models import (
    MANIFEST_NAME,
    Artifact,
    Database,
    DumpOutcome,
    DumpRequest,
    Eviction,
    EvictRequest,
    GlobalsRequest,
    Kind,
    Manifest,
    ManifestWritten,
    PgPlan,
    PlanRequest,
    PreparedRun,
    RetentionOutcome,
    RetentionRequest,
    RunRef,
    Skipped,
    SnapshotRequest,
    Target,
    UploadOutcome,
    UploadRequest,
)
from infraops.backup.retention import StoredRun, choose_eviction, plan_retention
from infraops.backup.sinks import Sink, fsync_dir
from infraops.clients._stream import Stream
from infraops.clients.consul import ConsulClient
from infraops.clients.nomad import NomadClient
from infraops.clients.postgres import (
    DatabaseUnavailable,
    PostgresClient,
    Problem,
    classify_text,
)
from infraops.clients.s3 import S3QuotaExceeded, S3Store
from infraops.config import BackupSettings
from infraops.errors import InfraopsError, PermanentError, TransientError

log = logging.getLogger(__name__)

NO_LEADER = ("No cluster leader", "Not ready to serve consistent reads")
STALE_UPLOAD_AGE = timedelta(hours=1)


class BackupActivities:
    """Activities of the backup role, sharing the worker's clients."""

    def __init__(
        self,
        settings: BackupSettings,
        postgres: PostgresClient,
        nomad: NomadClient,
        consul: ConsulClient,
        s3: S3Store | None,
    ) -> None:
        self._settings = settings
        self._postgres = postgres
        self._nomad = nomad
        self._consul = consul
        self._s3 = s3

    @property
    def root(self) -> Path:
        return self._settings.backup_local_dir

    def run_dir(self, run_id: str) -> Path:
        if not naming.is_run_id(run_id):
            raise PermanentError(f"{run_id!r} is not a run id")
        return self.root / run_id

    # -- the run -----------------------------------------------------------

    @activity.defn(name="PrepareBackupRun")
    @classified
    async def prepare_run(self, ref: RunRef) -> PreparedRun:
        """Create the run's own directory; a committed run is never reused."""
        directory = self.run_dir(ref.run_id)
        if (directory / MANIFEST_NAME).exists():
            raise PermanentError(f"run {ref.run_id} is already committed")
        try:
            directory.mkdir(mode=0o750, exist_ok=True)
            fsync_dir(self.root)
        except OSError as error:
            raise TransientError(
                f"cannot create {directory}: {error.strerror}"
            ) from None
        return PreparedRun(
            run_id=ref.run_id,
            s3_enabled=self._s3 is not None,
            dump_concurrency=self._settings.pg_dump_concurrency,
            encrypted=bool(self._settings.age_recipients),
        )

    @activity.defn(name="WriteBackupManifest")
    @classified
    async def write_manifest(self, manifest: Manifest) -> ManifestWritten:
        """Write manifest.json last, atomically: it commits the run."""
        directory = self.run_dir(manifest.run_id)
        data = manifest.model_dump_json(indent=2).encode()
        temp = directory / f"{naming.TEMP_PREFIX}{MANIFEST_NAME}"
        final = directory / MANIFEST_NAME
        if final.exists():
            raise PermanentError(f"run {manifest.run_id} is already committed")

        def write() -> None:
            with temp.open("wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temp, final)
            fsync_dir(directory)

        try:
            await asyncio.to_thread(write)
        except OSError as error:
            raise TransientError(f"cannot write {final}: {error.strerror}") from None
        return ManifestWritten(
            path=str(final), size=len(data), sha256=hashlib.sha256(data).hexdigest()
        )

    # -- snapshots -----------------------------------------------------------

    @activity.defn(name="SnapshotCluster")
    @classified
    async def snapshot(self, request: SnapshotRequest) -> Artifact:
        """Stream a Raft snapshot from the leader (stale only without one),
        verify it completely, and rename it into place."""
        try:
            return await self._snapshot(request, stale=False)
        except TransientError as error:
            if not any(text in str(error) for text in NO_LEADER):
                raise
            log.warning(
                "%s has no leader; taking a stale snapshot: %s", request.target, error
            )
            return await self._snapshot(request, stale=True)

    async def _snapshot(self, request: SnapshotRequest, *, stale: bool) -> Artifact:
        started = time.monotonic()
        nomad = request.target is Target.NOMAD
        base = naming.NOMAD_FILE if nomad else naming.CONSUL_FILE
        recipients = self._settings.age_recipients
        name = base + (naming.AGE_SUFFIX if recipients else "")
        directory = self.run_dir(request.run_id)
        params = {"stale": "true"} if stale else {}
        path = "/v1/operator/snapshot" if nomad else "/v1/snapshot"
        client: NomadClient | ConsulClient = self._nomad if nomad else self._consul
        sink = Sink(
            directory / f"{naming.TEMP_PREFIX}{name}", directory / name, recipients
        )
        try:
            async with client.stream(path, params) as stream:
                verifier = await self._receive(stream, sink)
                headers = stream.headers
            meta = _finish_snapshot(verifier)
            notes = []
            digest_ok = check_digest(
                headers.get("Digest"), verifier.compressed.digest()
            )
            if nomad and digest_ok is False:
                raise TransientError(
                    "snapshot failed verification: mismatch checksum "
                    "(the Digest header does not match the body)"
                )
            if nomad and digest_ok is None:
                notes.append("Nomad sent no Digest header")
            sha256, size = await asyncio.to_thread(sink.commit)
        except BaseException:
            await asyncio.to_thread(sink.discard)
            raise
        index = meta.index
        if not nomad and headers.get("X-Consul-Index", "").isdigit():
            index = int(headers["X-Consul-Index"])
        if stale:
            product = "Nomad" if nomad else "Consul"
            known = headers.get(f"X-{product}-KnownLeader", "?")
            contact = headers.get(f"X-{product}-LastContact", "?")
            notes.append(
                f"stale: taken without a leader (KnownLeader={known}, "
                f"LastContact={contact} ms); it may lag the cluster"
            )
        verification = (
            "gzip read to its end; tar holds exactly meta.json, state.bin, "
            "SHA256SUMS; sums match" + ("; Digest matches" if digest_ok else "")
        )
        artifact = Artifact(
            name=name,
            kind=Kind.NOMAD_SNAPSHOT if nomad else Kind.CONSUL_SNAPSHOT,
            target=request.target,
            size=size,
            sha256=sha256,
            server_version=await self._server_version(request.target),
            index=index,
            term=meta.term,
            stale=stale,
            encrypted=sink.encrypted,
            plain_sha256=sink.plain.hexdigest(),
            verification=verification,
            notes=notes,
            duration_seconds=round(time.monotonic() - started, 3),
        )
        metrics.record_artifact(activity.metric_meter(), artifact)
        log.info(
            "%s snapshot verified: %d bytes, index %s, term %s%s",
            request.target,
            size,
            index,
            meta.term,
            " (stale)" if stale else "",
        )
        return artifact

    async def _receive(self, stream: Stream, sink: Sink) -> SnapshotVerifier:
        verifier = SnapshotVerifier()

        def take(chunk: bytes) -> None:
            verifier.feed(chunk)
            sink.write(chunk)

        received = 0
        async for chunk in stream.chunks():
            try:
                await asyncio.to_thread(take, chunk)
            except ArchiveError as error:
                raise TransientError(f"snapshot failed verification: {error}") from None
            received += len(chunk)
            activity.heartbeat(received)
        return verifier

    async def _server_version(self, target: Target) -> str | None:
        try:
            if target is Target.NOMAD:
                data = (await self._nomad.get("/v1/agent/self")).data
                return str(data["config"]["Version"]["Version"])
            data = await self._consul.get_json("/v1/agent/self")
            return str(data["Config"]["Version"])
        except (InfraopsError, KeyError, TypeError, ValueError) as error:
            log.warning("cannot read the %s server version: %s", target, error)
            return None

    # -- PostgreSQL ------------------------------------------------------------

    @activity.defn(name="PlanPostgresBackup")
    @classified
    async def plan_postgres(self, request: PlanRequest) -> PgPlan:
        """The server, the tools to use, and which databases to dump."""
        server = await self._postgres.server()
        tools = await asyncio.to_thread(
            pgtools.choose,
            server.major,
            server.version,
            self._postgres.settings.pg_bindirs,
        )
        rows = await self._postgres.databases()
        wanted = set(request.databases)
        databases: list[Database] = []
        skipped: list[Skipped] = []
        for row in rows:
            if wanted and row.name not in wanted:
                continue
            reason = None
            if row.name == "template0":
                reason = "template0 is never dumped (it is rebuilt by initdb)"
            elif row.connection_limit == -2:
                reason = "invalid database (an interrupted DROP DATABASE)"
            elif not row.allow_connections:
                reason = "does not accept connections (datallowconn is false)"
            if reason:
                skipped.append(
                    Skipped(target=Target.POSTGRES, name=row.name, reason=reason)
                )
            else:
                databases.append(
                    Database(
                        name=row.name,
                        file_name=naming.dump_file_name(row.name),
                        size=row.size,
                    )
                )
        known = {row.name for row in rows}
        skipped += [
            Skipped(target=Target.POSTGRES, name=name, reason="no such database")
            for name in sorted(wanted - known)
        ]
        # Largest first: the longest dumps start early, the tail is short.
        databases.sort(key=lambda db: (-db.size, db.name))
        return PgPlan(
            server_version=server.version,
            bindir=str(tools.bindir),
            tool_version=tools.version,
            superuser=server.superuser,
            databases=databases,
            skipped=skipped,
        )

    @activity.defn(name="DumpPostgresGlobals")
    @classified
    async def dump_globals(self, request: GlobalsRequest) -> Artifact:
        """pg_dumpall --globals-only, verified and hashed on its way to disk.

        Without superuser the role passwords cannot be read: the dump is
        taken with --no-role-passwords and marked partial.
        """
        started = time.monotonic()
        plan = request.plan
        partial = not plan.superuser
        try:
            sha256, size, plain = await self._globals(request, no_passwords=partial)
        except _PermissionDenied:
            partial = True
            sha256, size, plain = await self._globals(request, no_passwords=True)
        notes = (
            [
                "not a superuser: dumped with --no-role-passwords, "
                "so the role passwords are missing"
            ]
            if partial
            else []
        )
        recipients = self._settings.age_recipients
        artifact = Artifact(
            name=naming.GLOBALS_FILE + (naming.AGE_SUFFIX if recipients else ""),
            kind=Kind.PG_GLOBALS,
            target=Target.POSTGRES,
            size=size,
            sha256=sha256,
            server_version=plan.server_version,
            tool_version=plan.tool_version,
            partial=partial,
            encrypted=bool(recipients),
            plain_sha256=plain,
            verification="pg_dumpall header and completion marker present",
            notes=notes,
            duration_seconds=round(time.monotonic() - started, 3),
        )
        metrics.record_artifact(activity.metric_meter(), artifact)
        return artifact

    async def _globals(
        self, request: GlobalsRequest, *, no_passwords: bool
    ) -> tuple[str, int, str]:
        recipients = self._settings.age_recipients
        name = naming.GLOBALS_FILE + (naming.AGE_SUFFIX if recipients else "")
        directory = self.run_dir(request.run_id)
        tools = pgtools.Toolset(Path(request.plan.bindir), request.plan.tool_version, 0)
        argv = [
            tools.tool("pg_dumpall"),
            "--globals-only",
            "--no-password",
            f"--dbname={pgtools.conninfo('postgres')}",
        ]
        if no_passwords:
            argv.append("--no-role-passwords")
        sink = Sink(
            directory / f"{naming.TEMP_PREFIX}{name}", directory / name, recipients
        )
        verifier = GlobalsVerifier()

        async def take(chunk: bytes) -> None:
            verifier.feed(chunk)
            await asyncio.to_thread(sink.write, chunk)

        try:
            done = await processes.run(
                argv,
                processes.child_env(self._postgres.child_env()),
                tick=lambda: activity.heartbeat("pg_dumpall"),
                stdout=take,
            )
            if done.returncode != 0:
                if "permission denied" in done.stderr and not no_passwords:
                    raise _PermissionDenied()
                raise _tool_error("pg_dumpall --globals-only", done.stderr)
            try:
                verifier.finish()
            except ArchiveError as error:
                raise TransientError(
                    f"globals dump failed verification: {error}"
                ) from None
            sha256, size = await asyncio.to_thread(sink.commit)
        except BaseException:
            await asyncio.to_thread(sink.discard)
            raise
        return sha256, size, sink.plain.hexdigest()

    @activity.defn(name="DumpPostgresDatabase")
    @classified
    async def dump_database(self, request: DumpRequest) -> DumpOutcome:
        """pg_dump -Fc of one database to a temporary file, read back whole
        with pg_restore and hashed, then renamed into place."""
        started = time.monotonic()
        database = request.database
        name = database.name
        try:
            await self._postgres.probe(name)
        except DatabaseUnavailable as error:
            return _unavailable(name, error.problem)
        directory = self.run_dir(request.run_id)
        final = directory / database.file_name
        attempt = activity.info().attempt
        temp = directory / f"{naming.TEMP_PREFIX}{attempt}-{database.file_name}"
        tools = pgtools.Toolset(Path(request.bindir), request.tool_version, 0)
        lock_ms = int(self._postgres.settings.pg_lock_wait_timeout * 1000)
        argv = [
            tools.tool("pg_dump"),
            "--format=custom",
            "--no-password",
            f"--lock-wait-timeout={lock_ms}",
            f"--file={temp}",
            f"--dbname={pgtools.conninfo(name)}",
        ]
        env = processes.child_env(self._postgres.child_env())
        try:
            done = await processes.run(argv, env, tick=lambda: _beat_size(temp))
            if done.returncode != 0:
                return await self._dump_failed(name, done.stderr)
            sha256, size = await _verify_dump(tools, temp)
            await asyncio.to_thread(_commit_file, temp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise
        artifact = Artifact(
            name=database.file_name,
            kind=Kind.PG_DATABASE,
            target=Target.POSTGRES,
            size=size,
            sha256=sha256,
            database=name,
            server_version=request.server_version,
            tool_version=request.tool_version,
            verification="pg_restore read the whole archive back",
            duration_seconds=round(time.monotonic() - started, 3),
        )
        metrics.record_artifact(activity.metric_meter(), artifact)
        log.info("dumped database %r: %d bytes, verified", name, size)
        return DumpOutcome(artifact=artifact)

    async def _dump_failed(self, name: str, stderr: str) -> DumpOutcome:
        # The database may have gone away under us: ask the server, which
        # answers more reliably than pg_dump's text.
        try:
            await self._postgres.probe(name)
        except DatabaseUnavailable as error:
            return _unavailable(name, error.problem)
        raise _tool_error(f"pg_dump of {name!r}", stderr)

    # -- S3 ----------------------------------------------------------------

    @activity.defn(name="AbortStaleUploads")
    @classified
    async def abort_stale_uploads(self, ref: RunRef) -> int:
        s3 = self._require_s3()
        now = datetime.now(UTC)
        prefix = naming.s3_run_prefix(s3.prefix, "")[:-1]
        count = await asyncio.to_thread(
            s3.abort_stale_uploads,
            prefix,
            now,
            STALE_UPLOAD_AGE,
            naming.s3_run_prefix(s3.prefix, ref.run_id),
        )
        if count:
            log.warning("aborted %d stale multipart uploads", count)
        return count

    @activity.defn(name="UploadArtifact")
    @classified
    async def upload(self, request: UploadRequest) -> UploadOutcome:
        """Copy one file of the run to S3 and check it with a HEAD."""
        s3 = self._require_s3()
        path = self.run_dir(request.run_id) / request.name
        key = naming.s3_key(s3.prefix, request.run_id, request.name)
        try:
            etag = await _with_heartbeat(
                asyncio.to_thread(s3.upload, path, key, request.sha256, request.size)
            )
        except S3QuotaExceeded as error:
            log.warning("S3 is full: %s", error)
            return UploadOutcome(key=key, quota_exceeded=True, error=str(error))
        return UploadOutcome(key=key, etag=etag)

    @activity.defn(name="EvictOldestRun")
    @classified
    async def evict(self, request: EvictRequest) -> Eviction:
        """Delete the oldest whole run from S3 to make room (never this run,
        never the newest good run of any target); its manifest goes first."""
        s3 = self._require_s3()
        runs, keys = await asyncio.to_thread(_s3_runs, s3)
        victim = choose_eviction(runs, current=request.run_id)
        if victim is None:
            return Eviction(run_id=None, reason="no run may be evicted")
        manifest_key = naming.s3_key(s3.prefix, victim, MANIFEST_NAME)
        ordered = sorted(keys[victim], key=lambda key: key != manifest_key)
        deleted = await asyncio.to_thread(s3.delete, ordered)
        metrics.record_eviction(activity.metric_meter())
        log.warning("S3 full: evicted run %s (%d objects)", victim, deleted)
        return Eviction(run_id=victim, objects_deleted=deleted, reason="quota exceeded")

    # -- retention -------------------------------------------------------------

    @activity.defn(name="ApplyLocalRetention")
    @classified
    async def local_retention(self, request: RetentionRequest) -> RetentionOutcome:
        runs = await asyncio.to_thread(self._local_runs)
        delete, keep = self._plan_retention(runs, request)
        deleted, warnings = [], []
        for run_id in delete:
            try:
                await asyncio.to_thread(_remove_run_dir, self.run_dir(run_id))
                deleted.append(run_id)
            except OSError as error:
                warnings.append(f"cannot delete local run {run_id}: {error.strerror}")
        metrics.record_retention(activity.metric_meter(), "local", len(deleted))
        return RetentionOutcome(deleted=deleted, kept=keep, warnings=warnings)

    @activity.defn(name="ApplyS3Retention")
    @classified
    async def s3_retention(self, request: RetentionRequest) -> RetentionOutcome:
        s3 = self._require_s3()
        runs, keys = await asyncio.to_thread(_s3_runs, s3)
        delete, keep = self._plan_retention(runs, request)
        deleted, warnings = [], []
        for run_id in delete:
            manifest_key = naming.s3_key(s3.prefix, run_id, MANIFEST_NAME)
            ordered = sorted(keys[run_id], key=lambda key: key != manifest_key)
            try:
                await asyncio.to_thread(s3.delete, ordered)
                deleted.append(run_id)
            except InfraopsError as error:
                warnings.append(f"cannot delete S3 run {run_id}: {error}")
        metrics.record_retention(activity.metric_meter(), "s3", len(deleted))
        return RetentionOutcome(deleted=deleted, kept=keep, warnings=warnings)

    def _plan_retention(
        self, runs: list[StoredRun], request: RetentionRequest
    ) -> tuple[list[str], list[str]]:
        """What to delete and keep, refused unless this run is committed good."""
        mine = next((run for run in runs if run.run_id == request.run_id), None)
        if mine is None or not mine.good:
            raise PermanentError(
                f"retention refused: run {request.run_id} is not a committed "
                "good run here"
            )
        return plan_retention(
            runs,
            current=request.run_id,
            now=request.now,
            retention_days=request.retention_days,
            min_good_runs=request.min_good_runs,
        )

    def _local_runs(self) -> list[StoredRun]:
        return local_runs(self.root)

    def _require_s3(self) -> S3Store:
        if self._s3 is None:
            raise PermanentError("S3 is not configured (S3_BUCKET is empty)")
        return self._s3


class _PermissionDenied(Exception):
    pass


def local_runs(root: Path) -> list[StoredRun]:
    """The runs under `root`, with their manifests when readable."""
    runs = []
    for entry in sorted(root.iterdir()):
        if not naming.is_run_id(entry.name) or entry.is_symlink() or not entry.is_dir():
            continue
        runs.append(StoredRun(entry.name, read_manifest(entry / MANIFEST_NAME)))
    return runs


def read_manifest(path: Path) -> Manifest | None:
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except (OSError, ValidationError, ValueError):
        return None


def _s3_runs(s3: S3Store) -> tuple[list[StoredRun], dict[str, list[str]]]:
    base = naming.s3_run_prefix(s3.prefix, "")[:-1]
    keys: dict[str, list[str]] = {}
    for item in s3.list_objects(base):
        run_id, _, rest = item.key[len(base) :].partition("/")
        if naming.is_run_id(run_id) and rest:
            keys.setdefault(run_id, []).append(item.key)
    runs = []
    for run_id in sorted(keys):
        manifest = None
        key = naming.s3_key(s3.prefix, run_id, MANIFEST_NAME)
        if key in keys[run_id]:
            raw = s3.get_bytes(key)
            with contextlib.suppress(ValidationError, ValueError, TypeError):
                manifest = Manifest.model_validate_json(raw or b"")
        runs.append(StoredRun(run_id, manifest))
    return runs, keys


def _remove_run_dir(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        raise OSError(20, "not a run directory")
    manifest = path / MANIFEST_NAME
    with contextlib.suppress(FileNotFoundError):
        manifest.unlink()  # no longer a committed run, even if the rest fails
    shutil.rmtree(path)


def _unavailable(name: str, problem: Problem) -> DumpOutcome:
    if problem is Problem.GONE:
        reason = "dropped during the run"
        warning = f"database {name!r} was dropped during the run"
    else:
        reason = problem.value
        warning = f"database {name!r} skipped: {reason}"
    log.warning("%s", warning)
    return DumpOutcome(
        skipped=Skipped(target=Target.POSTGRES, name=name, reason=reason),
        warning=warning,
    )


def _tool_error(what: str, stderr: str) -> InfraopsError:
    line = processes.last_line(stderr)
    problem = classify_text(stderr)
    message = f"{what} failed ({problem.value}): {line}"
    if problem in (Problem.AUTH, Problem.VERSION, Problem.TERMINATED):
        return PermanentError(message)
    return TransientError(message)


def _beat_size(path: Path) -> None:
    try:
        activity.heartbeat(path.stat().st_size)
    except FileNotFoundError:
        activity.heartbeat(0)


async def _verify_dump(tools: pgtools.Toolset, temp: Path) -> tuple[str, int]:
    """Read the whole archive back with pg_restore while hashing it."""
    hashing = asyncio.ensure_future(asyncio.to_thread(_hash_file, temp))
    try:
        done = await processes.run(
            [tools.tool("pg_restore"), "--file=/dev/null", str(temp)],
            processes.child_env({}),
            tick=lambda: _beat_size(temp),
        )
        sha256, size = await hashing
    except BaseException:
        hashing.cancel()
        raise
    if done.returncode != 0:
        raise TransientError(
            f"the dump failed verification: {processes.last_line(done.stderr)}"
        )
    if size == 0:
        raise TransientError("the dump is empty")
    return sha256, size


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in read_chunks(path):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _commit_file(temp: Path, final: Path) -> None:
    fd = os.open(temp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, final)
    fsync_dir(final.parent)


def _finish_snapshot(verifier: SnapshotVerifier) -> Any:
    try:
        return verifier.finish()
    except ArchiveError as error:
        raise TransientError(f"snapshot failed verification: {error}") from None


async def _with_heartbeat(work: Any, every: float = 10.0) -> Any:
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=every)
        if done:
            return task.result()
        activity.heartbeat()


def manifest_bytes(manifest: Manifest) -> bytes:
    return json.dumps(manifest.model_dump(mode="json"), indent=2).encode()
