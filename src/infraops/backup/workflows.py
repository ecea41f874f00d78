"""The Backup and RestoreDrill workflows: pure orchestration."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from infraops.backup import metrics, naming
    from infraops.backup.activities import BackupActivities
    from infraops.backup.drill import DrillActivities
    from infraops.backup.models import (
        Artifact,
        BackupConfig,
        BackupProgress,
        BackupResult,
        DatabaseProgress,
        DatabaseStatus,
        DrillConfig,
        DrillProgress,
        DrillResult,
        DumpRequest,
        EvictRequest,
        GlobalsRequest,
        LegProgress,
        LegStatus,
        Manifest,
        PgPlan,
        PlanRequest,
        PreparedRun,
        RetentionRequest,
        RunRef,
        RunStatus,
        Skipped,
        SnapshotRequest,
        Target,
        UploadOutcome,
        UploadRequest,
    )
    from infraops.policies import STANDARD_RETRY, quick_activity

DUMP_START_TO_CLOSE = timedelta(minutes=30)
DUMP_SCHEDULE_TO_CLOSE = timedelta(minutes=60)
DUMP_HEARTBEAT = timedelta(minutes=2)
UPLOAD_RATE = 16 * 1024 * 1024  # bytes/s assumed when sizing upload timeouts
MAX_EVICTIONS = 3


class _Leg:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.artifacts: list[Artifact] = []
        self.skipped: list[Skipped] = []
        self.warnings: list[str] = []
        self.errors: list[str] = []

    @property
    def partial(self) -> bool:
        return any(a.partial or a.stale for a in self.artifacts)


@workflow.defn(name="Backup")
class BackupWorkflow:
    """Snapshot Nomad and Consul and dump PostgreSQL, verified, to local
    storage and S3; then apply retention if the run is good."""

    def __init__(self) -> None:
        self._run_id = ""
        self._phase = "starting"
        self._legs: dict[Target, LegProgress] = {}
        self._databases: dict[str, DatabaseProgress] = {}
        self._evictions: list[str] = []

    @workflow.run
    async def run(self, config: BackupConfig) -> BackupResult:
        started = workflow.now()
        self._run_id = naming.run_id(started, workflow.uuid4().hex)
        for target in config.targets:
            self._legs[target] = LegProgress(target=target, status=LegStatus.PENDING)
        prepared = await quick_activity(
            BackupActivities.prepare_run, RunRef(run_id=self._run_id)
        )
        self._phase = "backing up"
        legs = await asyncio.gather(
            *(self._leg(target, config, prepared) for target in config.targets)
        )
        artifacts = [a for leg in legs for a in leg.artifacts]
        warnings = [w for leg in legs for w in leg.warnings]
        errors = [e for leg in legs for e in leg.errors]
        if prepared.s3_enabled:
            self._phase = "uploading"
            artifacts = await self._upload_all(artifacts, warnings)
        else:
            warnings.append("S3 is not configured: the run is kept locally only")
        failed = bool(errors)
        partial = any(leg.partial for leg in legs)
        status = (
            RunStatus.FAILED
            if failed
            else (RunStatus.PARTIAL if partial else RunStatus.GOOD)
        )
        manifest = Manifest(
            run_id=self._run_id,
            started_at=started,
            finished_at=workflow.now(),
            status=status,
            targets=config.targets,
            good_targets=[
                leg.target for leg in legs if not leg.errors and not leg.partial
            ],
            artifacts=artifacts,
            skipped=[s for leg in legs for s in leg.skipped],
            warnings=warnings,
            errors=errors,
        )
        self._phase = "committing"
        written = await quick_activity(BackupActivities.write_manifest, manifest)
        if prepared.s3_enabled:
            outcome = await self._upload(
                naming_manifest(), written.sha256, written.size, warnings
            )
            if outcome is None or outcome.etag is None:
                warnings.append("the manifest is not in S3: the S3 copy is incomplete")
        result = BackupResult(
            run_id=self._run_id,
            status=status,
            manifest=manifest,
            evictions=list(self._evictions),
        )
        if status is RunStatus.GOOD:
            self._phase = "retention"
            result = await self._retention(config, prepared, result, warnings)
        meter = workflow.metric_meter()
        for target in manifest.good_targets:
            metrics.record_last_good(meter, target, int(started.timestamp()))
        self._phase = status.value
        if failed:
            raise ApplicationError(
                f"backup run {self._run_id} failed: " + "; ".join(errors),
                type="BackupFailed",
                non_retryable=True,
            )
        return result.model_copy(
            update={"manifest": manifest.model_copy(update={"warnings": warnings})}
        )

    @workflow.query
    def progress(self) -> BackupProgress:
        return BackupProgress(
            run_id=self._run_id,
            phase=self._phase,
            legs=list(self._legs.values()),
            databases=list(self._databases.values()),
        )

    # -- legs ------------------------------------------------------------------

    async def _leg(
        self, target: Target, config: BackupConfig, prepared: PreparedRun
    ) -> _Leg:
        leg = _Leg(target)
        self._show_leg(target, LegStatus.RUNNING)
        try:
            if target is Target.POSTGRES:
                await self._postgres(leg, config, prepared)
            else:
                artifact = await quick_activity(
                    BackupActivities.snapshot,
                    SnapshotRequest(run_id=self._run_id, target=target),
                )
                leg.artifacts.append(artifact)
                if artifact.stale:
                    leg.warnings.append(f"{target} snapshot is stale (no leader)")
        except ActivityError as error:
            leg.errors.append(f"{target}: {_reason(error)}")
            workflow.logger.warning("%s leg failed: %s", target, _reason(error))
        status = (
            LegStatus.FAILED
            if leg.errors
            else (LegStatus.PARTIAL if leg.partial else LegStatus.DONE)
        )
        detail = "; ".join(leg.errors) or f"{len(leg.artifacts)} artifacts"
        self._show_leg(target, status, detail)
        return leg

    async def _postgres(
        self, leg: _Leg, config: BackupConfig, prepared: PreparedRun
    ) -> None:
        plan = await quick_activity(
            BackupActivities.plan_postgres,
            PlanRequest(run_id=self._run_id, databases=config.databases),
        )
        leg.skipped.extend(plan.skipped)
        for database in plan.databases:
            self._databases[database.name] = DatabaseProgress(
                name=database.name, status=DatabaseStatus.PENDING
            )
        for skip in plan.skipped:
            self._databases[skip.name] = DatabaseProgress(
                name=skip.name, status=DatabaseStatus.SKIPPED, detail=skip.reason
            )
        limit = asyncio.Semaphore(config.dump_concurrency or prepared.dump_concurrency)
        results = await asyncio.gather(
            self._globals(leg, plan),
            *(
                self._dump(leg, plan, index, limit)
                for index in range(len(plan.databases))
            ),
        )
        del results
        failed = sum(
            1 for d in self._databases.values() if d.status is DatabaseStatus.FAILED
        )
        skipped = sum(
            1 for d in self._databases.values() if d.status is DatabaseStatus.SKIPPED
        )
        metrics.record_databases(workflow.metric_meter(), skipped, failed)

    async def _globals(self, leg: _Leg, plan: PgPlan) -> None:
        try:
            artifact = await quick_activity(
                BackupActivities.dump_globals,
                GlobalsRequest(run_id=self._run_id, plan=plan),
            )
        except ActivityError as error:
            leg.errors.append(f"globals: {_reason(error)}")
            return
        leg.artifacts.append(artifact)
        if artifact.partial:
            leg.warnings.append("globals are partial: " + "; ".join(artifact.notes))

    async def _dump(
        self, leg: _Leg, plan: PgPlan, index: int, limit: asyncio.Semaphore
    ) -> None:
        database = plan.databases[index]
        async with limit:
            self._show_db(database.name, DatabaseStatus.DUMPING)
            try:
                outcome = await workflow.execute_activity_method(
                    BackupActivities.dump_database,
                    DumpRequest(
                        run_id=self._run_id,
                        database=database,
                        bindir=plan.bindir,
                        tool_version=plan.tool_version,
                        server_version=plan.server_version,
                    ),
                    start_to_close_timeout=DUMP_START_TO_CLOSE,
                    schedule_to_close_timeout=DUMP_SCHEDULE_TO_CLOSE,
                    heartbeat_timeout=DUMP_HEARTBEAT,
                    retry_policy=STANDARD_RETRY,
                )
            except ActivityError as error:
                leg.errors.append(f"database {database.name!r}: {_reason(error)}")
                self._show_db(database.name, DatabaseStatus.FAILED, _reason(error))
                return
        if outcome.artifact is not None:
            leg.artifacts.append(outcome.artifact)
            self._show_db(
                database.name, DatabaseStatus.VERIFIED, size=outcome.artifact.size
            )
        elif outcome.skipped is not None:
            leg.skipped.append(outcome.skipped)
            self._show_db(database.name, DatabaseStatus.SKIPPED, outcome.skipped.reason)
        if outcome.warning:
            leg.warnings.append(outcome.warning)

    # -- S3 --------------------------------------------------------------------

    async def _upload_all(
        self, artifacts: list[Artifact], warnings: list[str]
    ) -> list[Artifact]:
        try:
            await quick_activity(
                BackupActivities.abort_stale_uploads, RunRef(run_id=self._run_id)
            )
        except ActivityError as error:
            warnings.append(f"S3: cannot abort stale uploads: {_reason(error)}")
        uploaded = []
        for artifact in artifacts:
            outcome = await self._upload(
                artifact.name, artifact.sha256, artifact.size, warnings
            )
            if outcome is not None and outcome.etag is not None:
                artifact = artifact.model_copy(
                    update={"s3_key": outcome.key, "s3_etag": outcome.etag}
                )
            uploaded.append(artifact)
        return uploaded

    async def _upload(
        self, name: str, sha256: str, size: int, warnings: list[str]
    ) -> UploadOutcome | None:
        request = UploadRequest(
            run_id=self._run_id, name=name, sha256=sha256, size=size
        )
        attempt_timeout = max(
            timedelta(minutes=5), timedelta(seconds=size / UPLOAD_RATE)
        )
        while True:
            try:
                outcome = await workflow.execute_activity_method(
                    BackupActivities.upload,
                    request,
                    start_to_close_timeout=attempt_timeout,
                    schedule_to_close_timeout=attempt_timeout * 3,
                    heartbeat_timeout=timedelta(minutes=2),
                    retry_policy=STANDARD_RETRY,
                )
            except ActivityError as error:
                warnings.append(f"S3 upload of {name} failed: {_reason(error)}")
                return None
            if not outcome.quota_exceeded:
                return outcome
            if len(self._evictions) >= MAX_EVICTIONS:
                warnings.append(
                    f"S3 upload of {name}: quota exceeded after "
                    f"{MAX_EVICTIONS} evictions ({outcome.error})"
                )
                return outcome
            try:
                eviction = await quick_activity(
                    BackupActivities.evict, EvictRequest(run_id=self._run_id)
                )
            except ActivityError as error:
                warnings.append(f"S3 eviction failed: {_reason(error)}")
                return outcome
            if eviction.run_id is None:
                warnings.append(
                    f"S3 upload of {name}: quota exceeded and {eviction.reason}"
                )
                return outcome
            self._evictions.append(eviction.run_id)
            warnings.append(f"S3 was full: evicted run {eviction.run_id}")

    # -- retention -------------------------------------------------------------

    async def _retention(
        self,
        config: BackupConfig,
        prepared: PreparedRun,
        result: BackupResult,
        warnings: list[str],
    ) -> BackupResult:
        now = workflow.now()
        local = RetentionRequest(
            run_id=self._run_id,
            now=now,
            retention_days=config.local_retention_days,
            min_good_runs=config.min_good_runs,
        )
        try:
            outcome = await quick_activity(BackupActivities.local_retention, local)
            warnings.extend(outcome.warnings)
            result = result.model_copy(update={"local_deleted": outcome.deleted})
        except ActivityError as error:
            warnings.append(f"local retention failed: {_reason(error)}")
        if prepared.s3_enabled:
            remote = local.model_copy(
                update={"retention_days": config.s3_retention_days}
            )
            try:
                outcome = await quick_activity(BackupActivities.s3_retention, remote)
                warnings.extend(outcome.warnings)
                result = result.model_copy(update={"s3_deleted": outcome.deleted})
            except ActivityError as error:
                warnings.append(f"S3 retention failed: {_reason(error)}")
        return result

    # -- progress ----------------------------------------------------------------

    def _show_leg(self, target: Target, status: LegStatus, detail: str = "") -> None:
        self._legs[target] = LegProgress(target=target, status=status, detail=detail)

    def _show_db(
        self, name: str, status: DatabaseStatus, detail: str = "", size: int = 0
    ) -> None:
        self._databases[name] = DatabaseProgress(
            name=name, status=status, detail=detail, size=size
        )


@workflow.defn(name="RestoreDrill")
class RestoreDrillWorkflow:
    """Restore the newest good dump of one database into a scratch database,
    compare it, drop it, and report."""

    def __init__(self) -> None:
        self._phase = "starting"

    @workflow.run
    async def run(self, config: DrillConfig) -> DrillResult:
        self._phase = "restoring"
        result = await workflow.execute_activity_method(
            DrillActivities.restore_drill,
            config,
            start_to_close_timeout=DUMP_START_TO_CLOSE,
            schedule_to_close_timeout=DUMP_SCHEDULE_TO_CLOSE,
            heartbeat_timeout=DUMP_HEARTBEAT,
            retry_policy=STANDARD_RETRY,
        )
        self._phase = "done" if result.ok else "mismatch"
        return result

    @workflow.query
    def progress(self) -> DrillProgress:
        return DrillProgress(phase=self._phase)


def naming_manifest() -> str:
    return "manifest.json"


def _reason(error: ActivityError) -> str:
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or error)
