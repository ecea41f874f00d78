"""The Scan workflow: pure orchestration over the trivy activities."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from infraops.policies import STANDARD_RETRY, quick_activity
    from infraops.trivy import metrics
    from infraops.trivy.activities import TrivyActivities
    from infraops.trivy.models import (
        FailureKind,
        FinishInput,
        Image,
        ImageFailure,
        ImageProgress,
        ImageScan,
        ImageSkip,
        ImageStatus,
        PlanInput,
        RunInfo,
        RunStart,
        ScanConfig,
        ScanProgress,
        ScanRequest,
        ScanResult,
        SkipReason,
    )

# Image scans are long operations: 30 minutes an attempt, 60 in all.
SCAN_START_TO_CLOSE = timedelta(minutes=30)
SCAN_SCHEDULE_TO_CLOSE = timedelta(minutes=60)


@workflow.defn(name="Scan")
class ScanWorkflow:
    """Scan every image running on the fleet and keep the findings."""

    def __init__(self) -> None:
        self._phase = "starting"
        self._images: dict[str, ImageProgress] = {}
        self._scanned: list[ImageScan] = []
        self._failed: list[ImageFailure] = []
        self._aborted: list[ImageSkip] = []
        self._fault: ImageFailure | None = None

    @workflow.run
    async def run(self, config: ScanConfig) -> ScanResult:
        info = workflow.info()
        run = await quick_activity(
            TrivyActivities.start_run,
            RunStart(
                workflow_id=info.workflow_id,
                workflow_run_id=info.run_id,
                config=config,
            ),
        )
        self._phase = "discovering"
        discovery = await quick_activity(TrivyActivities.discover, config)
        plan = await quick_activity(
            TrivyActivities.plan,
            PlanInput(
                run_id=run.run_id,
                config=config,
                db_version=run.db_version,
                discovery=discovery,
            ),
        )
        for skip in plan.skipped:
            self._show(skip.reference, ImageStatus.SKIPPED, detail=skip.reason.value)
        for image in plan.to_scan:
            self._show(image.reference, ImageStatus.PENDING)
        self._phase = "scanning"
        limit = asyncio.Semaphore(config.scan_concurrency)
        finish = FinishInput(
            run_id=run.run_id,
            config=config,
            found=len(discovery.images) + len(discovery.skipped),
            scanned=[],
            skipped=plan.skipped,
            failed=[],
        )
        try:
            await asyncio.gather(
                *(self._scan(run, image, config, limit) for image in plan.to_scan)
            )
        except asyncio.CancelledError:
            # Close the run in the database even though we are cancelled.
            task = asyncio.ensure_future(
                quick_activity(
                    TrivyActivities.finish_run, self._finish(finish, "cancelled")
                )
            )
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                await task
            raise
        self._phase = "recording"
        fault = self._fault
        result = await quick_activity(
            TrivyActivities.finish_run,
            self._finish(finish, fault.message if fault else None),
        )
        self._phase = "done"
        if fault is not None:
            raise ApplicationError(
                f"scan aborted by a configuration fault ({fault.reason}): "
                f"{fault.message}",
                {"kind": fault.kind.value, "reason": fault.reason},
                type="TrivyConfigFault",
                non_retryable=True,
            )
        return result

    @workflow.query
    def progress(self) -> ScanProgress:
        return ScanProgress(phase=self._phase, images=list(self._images.values()))

    def _finish(self, finish: FinishInput, aborted: str | None) -> FinishInput:
        return finish.model_copy(
            update={
                "scanned": list(self._scanned),
                "failed": list(self._failed),
                "skipped": [*finish.skipped, *self._aborted],
                "aborted": aborted,
            }
        )

    async def _scan(
        self,
        run: RunInfo,
        image: Image,
        config: ScanConfig,
        limit: asyncio.Semaphore,
    ) -> None:
        async with limit:
            if self._fault is not None:
                self._abort(image)
                return
            self._show(image.reference, ImageStatus.SCANNING)
            try:
                scan = await workflow.execute_activity_method(
                    TrivyActivities.scan_image,
                    ScanRequest(
                        run_id=run.run_id,
                        image=image,
                        severities=config.severities,
                        db_version=run.db_version,
                    ),
                    start_to_close_timeout=SCAN_START_TO_CLOSE,
                    schedule_to_close_timeout=SCAN_SCHEDULE_TO_CLOSE,
                    heartbeat_timeout=config.scan_heartbeat_timeout,
                    retry_policy=STANDARD_RETRY,
                    cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
            except ActivityError as error:
                self._failure(image, _failure(image.reference, error))
                return
        self._scanned.append(scan)
        self._show(image.reference, ImageStatus.SCANNED, findings=scan.findings)

    def _failure(self, image: Image, failure: ImageFailure) -> None:
        if failure.kind is FailureKind.CONFIG:
            if self._fault is not None:
                self._abort(image)
                return
            self._fault = failure
            workflow.logger.error(
                "configuration fault, scanning no further images: %s", failure.message
            )
        else:
            workflow.logger.warning(
                "scan of %s failed (%s, %s): %s",
                image.reference,
                failure.kind.value,
                failure.reason,
                failure.message,
            )
        metrics.record_failure(workflow.metric_meter(), failure)
        self._failed.append(failure)
        self._show(image.reference, ImageStatus.FAILED, detail=failure.reason)

    def _abort(self, image: Image) -> None:
        self._aborted.append(
            ImageSkip(
                reference=image.reference,
                reason=SkipReason.ABORTED,
                detail="not scanned after a configuration fault",
                uses=image.uses,
            )
        )
        self._show(image.reference, ImageStatus.SKIPPED, detail=SkipReason.ABORTED)

    def _show(
        self,
        reference: str,
        status: ImageStatus,
        *,
        findings: int = 0,
        detail: str = "",
    ) -> None:
        self._images[reference] = ImageProgress(
            reference=reference, status=status, findings=findings, detail=detail
        )


def _failure(reference: str, error: ActivityError) -> ImageFailure:
    cause = error.cause
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details else None
        if isinstance(details, dict) and "kind" in details:
            kind = FailureKind(details["kind"])
            reason = str(details.get("reason", "error"))
        else:
            kind = (
                FailureKind.PERMANENT if cause.non_retryable else FailureKind.TRANSIENT
            )
            reason = cause.type or "error"
        return ImageFailure(
            reference=reference, kind=kind, reason=reason, message=cause.message
        )
    if isinstance(cause, TimeoutError):
        return ImageFailure(
            reference=reference,
            kind=FailureKind.TRANSIENT,
            reason="activity-timeout",
            message=f"scan timed out ({cause.type.name if cause.type else 'timeout'})",
        )
    return ImageFailure(
        reference=reference,
        kind=FailureKind.TRANSIENT,
        reason="error",
        message=str(cause or error),
    )
