"""The Cleanup workflow: pure orchestration over the cleanup activities."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from infraops.cleanup import metrics
    from infraops.cleanup.activities import CleanupActivities
    from infraops.cleanup.models import (
        CleanupConfig,
        CleanupProgress,
        CleanupResult,
        Node,
        NodePlan,
        NodeProgress,
        NodeResult,
        NodeStatus,
        NodeWork,
        RemovalInput,
        Totals,
    )
    from infraops.policies import quick_activity


@workflow.defn(name="Cleanup")
class CleanupWorkflow:
    """Remove stale per-job data directories on every eligible client node."""

    def __init__(self) -> None:
        self._plan: NodePlan | None = None
        self._progress: dict[str, NodeProgress] = {}

    @workflow.run
    async def run(self, config: CleanupConfig) -> CleanupResult:
        self._plan = await quick_activity(CleanupActivities.list_nodes, config)
        for node in self._plan.targets:
            self._progress[node.name] = NodeProgress(
                node=node.name, status=NodeStatus.PENDING
            )
        limit = asyncio.Semaphore(config.concurrency)
        results = await asyncio.gather(
            *(self._clean_node(node, config, limit) for node in self._plan.targets)
        )

        return _summarise(config, self._plan, list(results))

    @workflow.query
    def progress(self) -> CleanupProgress:
        return CleanupProgress(
            planned=self._plan is not None,
            nodes=list(self._progress.values()),
            skipped_nodes=self._plan.skipped if self._plan else [],
        )

    async def _clean_node(
        self, node: Node, config: CleanupConfig, limit: asyncio.Semaphore
    ) -> NodeResult:
        result = NodeResult(node=node.name, status=NodeStatus.SCANNING)
        async with limit:
            try:
                result = await self._steps(node, config, result)
            except ActivityError as error:
                metrics.record_node_failed(workflow.metric_meter())
                result = result.model_copy(
                    update={
                        "status": NodeStatus.FAILED,
                        "errors": [*result.errors, _reason(error)],
                    }
                )
                workflow.logger.warning("node %s failed: %s", node.name, _reason(error))
        self._show(result)

        return result

    async def _steps(
        self, node: Node, config: CleanupConfig, result: NodeResult
    ) -> NodeResult:
        work = NodeWork(node=node, config=config)
        self._show(result)
        scan = await quick_activity(CleanupActivities.scan_node, work)
        result = result.model_copy(
            update={"candidates": scan.candidates, "skipped": scan.skipped}
        )
        if not config.dry_run and scan.candidates:
            result = result.model_copy(update={"status": NodeStatus.REMOVING})
            self._show(result)
            removal = await quick_activity(
                CleanupActivities.remove_candidates,
                RemovalInput(
                    node=node, config=config, names=[v.name for v in scan.candidates]
                ),
            )
            result = result.model_copy(
                update={
                    "removed": removal.removed,
                    "skipped": [*result.skipped, *removal.kept],
                    "bytes_reclaimed": sum(r.bytes_reclaimed for r in removal.removed),
                    "errors": removal.errors,
                }
            )
        if config.docker_prune:
            result = result.model_copy(update={"status": NodeStatus.PRUNING})
            self._show(result)
            docker = await quick_activity(CleanupActivities.prune_docker, work)
            result = result.model_copy(update={"docker": docker})
        status = NodeStatus.FAILED if result.errors else NodeStatus.DONE

        return result.model_copy(update={"status": status})

    def _show(self, result: NodeResult) -> None:
        self._progress[result.node] = NodeProgress(
            node=result.node,
            status=result.status,
            candidates=len(result.candidates),
            removed=len(result.removed),
        )


def _reason(error: ActivityError) -> str:
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or error)


def _summarise(
    config: CleanupConfig, plan: NodePlan, results: list[NodeResult]
) -> CleanupResult:
    failed = [r.node for r in results if r.status is NodeStatus.FAILED]
    totals = Totals(
        nodes_scanned=sum(1 for r in results if r.status is not NodeStatus.FAILED),
        nodes_failed=len(failed),
        nodes_skipped=len(plan.skipped),
        candidates=sum(len(r.candidates) for r in results),
        candidate_bytes=sum(v.size_bytes or 0 for r in results for v in r.candidates),
        removed=sum(len(r.removed) for r in results),
        bytes_reclaimed=sum(r.bytes_reclaimed for r in results),
    )

    return CleanupResult(
        dry_run=config.dry_run,
        data_dir=config.data_dir,
        nodes=results,
        failed_nodes=failed,
        skipped_nodes=plan.skipped,
        totals=totals,
    )
