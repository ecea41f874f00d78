"""The RegistryGC workflow: a saga that never leaves the registry stranded.

locate -> probe the GC binary -> measure -> scale to 0 -> wait drained -> GC,
then, always, the compensation: stop any GC still on the node, scale back up
and wait for a new running allocation. The compensation is armed before the
scale-down is sent and survives failures, timeouts and cancellation, including
a cancellation that arrives while it runs (notes: temporal.md, section 6).
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    WorkflowAlreadyStartedError,
)

with workflow.unsafe.imports_passed_through():
    from infraops.policies import STANDARD_RETRY
    from infraops.registry_gc import commands, metrics
    from infraops.registry_gc.activities import RegistryGCActivities
    from infraops.registry_gc.models import (
        REGISTRY_GC_WORKFLOW_ID,
        DrainRequest,
        GCOutcome,
        GCProbe,
        GCRun,
        Integrity,
        NodeWork,
        RegistryGCConfig,
        RegistryGCProgress,
        RegistryGCResult,
        RegistryNode,
        Restored,
        RestoreRequest,
        ScaleRequest,
        Step,
        StepName,
        StepStatus,
        StorageUsage,
    )

T = TypeVar("T")

LOCATE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=3,
)
# Bounded by the step's schedule-to-close timeout, not by a count.
UNTIL_DEADLINE = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,
)
ONCE = RetryPolicy(maximum_attempts=1)
GC_STOP_MARGIN = timedelta(seconds=30)


@workflow.defn(name="RegistryGC")
class RegistryGCWorkflow:
    """Garbage-collect the registry's storage with the registry stopped."""

    def __init__(self) -> None:
        self._steps = {name: Step(name=name) for name in StepName}
        self._node = ""
        self._compensating = False
        self._offline = False
        self._error = ""
        self._result: RegistryGCResult | None = None

    @workflow.run
    async def run(self, config: RegistryGCConfig) -> RegistryGCResult:
        if _scheduled() and workflow.info().workflow_id != REGISTRY_GC_WORKFLOW_ID:
            return await _under_the_fixed_id(config)
        try:
            node, probe, before = await self._prepare(config)
        except ActivityError as error:
            self._error = _reason(error)
            if _cancelled(error):
                raise
            raise ApplicationError(
                f"{_reason(error)}; the registry was not touched",
                type="RegistryGCFailed",
                non_retryable=True,
            ) from error
        work = NodeWork(node=node, config=config)
        flags, refusals = commands.decide_flags(config, probe)
        for refusal in refusals:
            workflow.logger.warning("refused %s: %s", refusal.what, refusal.reason)

        # From here on the compensation is armed: whatever happens, and even if
        # the scale-down request's fate is unknown, the registry comes back.
        primary: BaseException | None = None
        gc: GCOutcome | None = None
        confirmed_down = False
        gc_started = False
        down_at = workflow.now()
        try:
            scaled = await self._step(
                StepName.SCALE_DOWN,
                self._quick(
                    RegistryGCActivities.scale,
                    ScaleRequest(
                        job_name=config.job_name,
                        group_name=config.group,
                        count=0,
                        message="infraops registry-gc: stop for garbage-collect",
                        poll_interval=config.poll_interval,
                    ),
                    config,
                    beats=True,
                ),
            )
            confirmed_down, down_at, self._offline = True, scaled.at, True
            await self._step(StepName.DRAIN, self._drain(config))
            gc_started = True
            gc = await self._step(StepName.GC, self._gc(node, config, flags))
        except (Exception, asyncio.CancelledError) as error:
            primary = error
            self._error = _reason(error)

        restored = await self._compensate(
            node, config, primary, gc_started=gc_started, fence=not confirmed_down
        )
        self._offline = False
        offline = (restored.at - down_at).total_seconds() if confirmed_down else 0.0
        if primary is not None:
            metrics.record_run(
                workflow.metric_meter(),
                outcome="cancelled" if _cancelled(primary) else "gc-failed",
                dry_run=config.dry_run,
                offline_seconds=offline,
            )
            if _cancelled(primary):
                raise primary
            raise ApplicationError(
                f"{_reason(primary)}; the registry is back (allocation "
                f"{restored.alloc_id[:8]}, offline {offline:.1f} s)",
                type="RegistryGCFailed",
                non_retryable=True,
            )
        assert gc is not None

        after = await self._step(
            StepName.MEASURE_AFTER,
            self._quick(RegistryGCActivities.measure, work, config),
        )
        integrity = await self._step(StepName.INTEGRITY, self._integrity(config))
        result = RegistryGCResult(
            dry_run=config.dry_run,
            job_name=config.job_name,
            group_name=config.group,
            node=node.name,
            gc_version=probe.version,
            flags=flags,
            refusals=refusals,
            blobs_marked=gc.blobs_marked,
            blobs_deleted=gc.blobs_deleted,
            manifests_deleted=gc.manifests_deleted,
            blob_bytes_deleted=gc.blob_bytes_deleted,
            disk_bytes_before=before.bytes,
            disk_bytes_after=after.bytes,
            disk_bytes_reclaimed=before.bytes - after.bytes,
            offline_seconds=round(offline, 3),
            gc_seconds=round(gc.seconds, 3),
            integrity=integrity,
            new_allocation=restored.alloc_id,
        )
        self._result = result
        metrics.record_run(
            workflow.metric_meter(),
            outcome="ok" if integrity.ok else "broken",
            dry_run=config.dry_run,
            offline_seconds=offline,
            blobs_deleted=gc.blobs_deleted,
            blob_bytes_deleted=gc.blob_bytes_deleted,
            disk_bytes_reclaimed=result.disk_bytes_reclaimed,
        )
        if not integrity.ok:
            sample = "; ".join(
                f"{b.kind} {b.digest or ''} of {b.repository}:{b.reference}".strip()
                for b in integrity.broken[:5]
            )
            self._error = f"integrity check: {len(integrity.broken)} broken"
            raise ApplicationError(
                f"registry integrity check found {len(integrity.broken)} broken "
                f"reference(s) after garbage-collect: {sample}"
                + (" ..." if len(integrity.broken) > 5 else ""),
                result,
                type="RegistryIntegrityBroken",
                non_retryable=True,
            )
        return result

    async def _prepare(
        self, config: RegistryGCConfig
    ) -> tuple[RegistryNode, GCProbe, StorageUsage]:
        """Locate, probe and measure: nothing here touches the registry."""
        node = await self._step(StepName.LOCATE, self._locate(config))
        self._node = node.name
        work = NodeWork(node=node, config=config)
        probe = await self._step(
            StepName.PROBE, self._quick(RegistryGCActivities.probe, work, config)
        )
        before = await self._step(
            StepName.MEASURE_BEFORE,
            self._quick(RegistryGCActivities.measure, work, config),
        )
        return node, probe, before

    @workflow.query
    def progress(self) -> RegistryGCProgress:
        return RegistryGCProgress(
            steps=list(self._steps.values()),
            node=self._node,
            compensating=self._compensating,
            registry_offline=self._offline,
            error=self._error,
            result=self._result,
        )

    # -- steps -------------------------------------------------------------------

    async def _step(self, name: StepName, awaitable: Awaitable[T]) -> T:
        self._set(name, StepStatus.RUNNING)
        try:
            value = await awaitable
        except asyncio.CancelledError:
            self._set(name, StepStatus.FAILED, "cancelled")
            raise
        except Exception as error:
            self._set(name, StepStatus.FAILED, _reason(error))
            raise
        self._set(name, StepStatus.DONE)
        return value

    def _set(self, name: StepName, status: StepStatus, detail: str = "") -> None:
        self._steps[name] = Step(name=name, status=status, detail=detail)

    def _locate(self, config: RegistryGCConfig) -> Awaitable[RegistryNode]:
        return workflow.execute_activity_method(
            RegistryGCActivities.find_node,
            config,
            start_to_close_timeout=config.step_timeout,
            schedule_to_close_timeout=config.step_timeout * 3,
            retry_policy=LOCATE_RETRY,
        )

    def _quick(
        self, method: Any, arg: Any, config: RegistryGCConfig, *, beats: bool = False
    ) -> Awaitable[Any]:
        """A quick step; `beats`: it heartbeats while it waits (scaling does)."""
        return workflow.execute_activity_method(
            method,
            arg,
            start_to_close_timeout=config.step_timeout,
            schedule_to_close_timeout=config.step_timeout * 3,
            heartbeat_timeout=_beat(config) if beats else None,
            retry_policy=STANDARD_RETRY,
        )

    def _drain(self, config: RegistryGCConfig) -> Awaitable[object]:
        return workflow.execute_activity_method(
            RegistryGCActivities.wait_drained,
            DrainRequest(
                job_name=config.job_name,
                group_name=config.group,
                poll_interval=config.poll_interval,
            ),
            schedule_to_close_timeout=config.drain_timeout,
            heartbeat_timeout=_beat(config),
            retry_policy=UNTIL_DEADLINE,
        )

    def _gc(
        self, node: RegistryNode, config: RegistryGCConfig, flags: list[str]
    ) -> Awaitable[GCOutcome]:
        return workflow.execute_activity_method(
            RegistryGCActivities.run_gc,
            GCRun(node=node, config=config, flags=flags),
            # The activity enforces gc_timeout itself and stops the GC before
            # it fails; the margin lets it do so before Temporal gives up on it.
            start_to_close_timeout=config.gc_timeout + GC_STOP_MARGIN,
            heartbeat_timeout=config.heartbeat_timeout,
            retry_policy=ONCE,
            # Compensate only once the activity has stopped the GC on the node;
            # otherwise it might still start GC under a restarted registry.
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )

    def _integrity(self, config: RegistryGCConfig) -> Awaitable[Integrity]:
        if not config.registry_url:
            return _ready(Integrity(checked=False, ok=True, note="no registry_url"))
        return workflow.execute_activity_method(
            RegistryGCActivities.check_integrity,
            config,
            start_to_close_timeout=config.integrity_timeout,
            retry_policy=STANDARD_RETRY,
        )

    # -- compensation ---------------------------------------------------------------

    async def _compensate(
        self,
        node: RegistryNode,
        config: RegistryGCConfig,
        primary: BaseException | None,
        *,
        gc_started: bool,
        fence: bool,
    ) -> Restored:
        """Bring the registry back; a cancellation cannot interrupt this."""
        self._compensating = primary is not None
        self._set(
            StepName.RESTORE,
            StepStatus.COMPENSATING if primary is not None else StepStatus.RUNNING,
        )
        count = max(1, node.count)
        task = asyncio.ensure_future(
            workflow.execute_activity_method(
                RegistryGCActivities.restore,
                RestoreRequest(
                    node=node,
                    config=config,
                    count=count,
                    stop_gc=gc_started,
                    fence=fence,
                ),
                start_to_close_timeout=config.restore_timeout,
                schedule_to_close_timeout=config.restore_timeout,
                heartbeat_timeout=max(
                    config.heartbeat_timeout, config.poll_interval * 3
                ),
                retry_policy=UNTIL_DEADLINE,
            )
        )
        cancelled: asyncio.CancelledError | None = None
        try:
            try:
                restored = await asyncio.shield(task)
            except asyncio.CancelledError as error:
                cancelled = error
                restored = await task
        except ActivityError as error:
            self._stranded(node, config, count, primary, error, gc_started=gc_started)
        self._compensating = False
        self._set(
            StepName.RESTORE,
            StepStatus.DONE,
            f"allocation {restored.alloc_id[:8]} running",
        )
        if cancelled is not None and primary is None:
            raise cancelled
        return restored

    def _stranded(
        self,
        node: RegistryNode,
        config: RegistryGCConfig,
        count: int,
        primary: BaseException | None,
        error: ActivityError,
        *,
        gc_started: bool,
    ) -> NoReturn:
        self._set(StepName.RESTORE, StepStatus.FAILED, _reason(error))
        recover = f"nomad job scale {config.job_name} {config.group} {count}"
        first = ""
        if gc_started:
            stop = shlex.join(commands.stop_argv(config))
            first = (
                f"make sure garbage-collect has stopped on {node.name} ({stop}), then "
            )
        workflow.logger.critical(
            "REGISTRY LEFT SCALED DOWN: job %s group %s could not be scaled back to "
            "%d (%s). Recover by hand now: %srun `%s` and check `nomad job status %s`",
            config.job_name,
            config.group,
            count,
            _reason(error),
            first,
            recover,
            config.job_name,
        )
        metrics.record_run(
            workflow.metric_meter(), outcome="stranded", dry_run=config.dry_run
        )
        before = (
            _reason(primary) if primary is not None else "garbage-collect succeeded"
        )
        self._error = f"{before}; AND scaling back failed: {_reason(error)}"
        raise ApplicationError(
            f"{before}; AND the registry could not be brought back: {_reason(error)}. "
            f"Run `{recover}` now",
            type="RegistryStranded",
            non_retryable=True,
        ) from error


def _beat(config: RegistryGCConfig) -> timedelta:
    """Heartbeat timeout of a polling step: several polls must fit in it."""
    return max(config.heartbeat_timeout, config.poll_interval * 3)


async def _ready(value: T) -> T:
    return value


def _cancelled(error: BaseException) -> bool:
    if isinstance(error, asyncio.CancelledError):
        return True
    return isinstance(error, ActivityError) and _is_cancel(error.cause)


def _is_cancel(error: BaseException | None) -> bool:
    from temporalio.exceptions import CancelledError

    return isinstance(error, CancelledError)


def _reason(error: BaseException | None) -> str:
    """The innermost failure message, naming timeouts and cancellations."""
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    what = ""
    if isinstance(error, ActivityError):
        what = f"{error.activity_type}: "
    while isinstance(error, FailureError) and error.cause is not None:
        error = error.cause
    if error is None:
        return what + "unknown error"
    name = type(error).__name__
    if name == "TimeoutError" and isinstance(error, FailureError):
        kind = getattr(error, "type", None)
        label = getattr(kind, "name", "TIMEOUT").lower().replace("_", "-")
        return f"{what}timed out ({label})"
    if isinstance(error, ApplicationError | FailureError):
        return what + (error.message or name)
    return what + (str(error) or name)


def _scheduled() -> bool:
    attributes = workflow.info().typed_search_attributes
    return any(pair.key.name == "TemporalScheduledById" for pair in attributes)


async def _under_the_fixed_id(config: RegistryGCConfig) -> RegistryGCResult:
    """Run the saga as a child under the fixed id, so runs never overlap.

    A schedule gives each run an id of its own, which would let a scheduled GC
    and one started by hand run at once. The fixed id is what refuses the
    second; cancelling this run cancels the child, whose compensation still
    brings the registry back before either closes.
    """
    try:
        return await workflow.execute_child_workflow(
            RegistryGCWorkflow.run,
            config,
            id=REGISTRY_GC_WORKFLOW_ID,
            parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
            cancellation_type=workflow.ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
    except WorkflowAlreadyStartedError:
        raise ApplicationError(
            f"{REGISTRY_GC_WORKFLOW_ID} is already running; this scheduled run "
            "did not start a second garbage collection",
            type="RegistryGCAlreadyRunning",
            non_retryable=True,
        ) from None
