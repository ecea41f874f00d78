"""The Scan workflow's side effects: Nomad reads, Trivy runs, PostgreSQL writes.

Every method is an activity. Errors are classified by the clients; `classified`
hands them to Temporal as retryable or not. Trivy's failures also carry their
kind and reason as details, so the workflow can record them and tell a
configuration fault from a bad image.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from infraops.activity_support import classified
from infraops.clients.nomad import NomadClient
from infraops.clients.trivy import TrivyClient, TrivyFailure
from infraops.errors import InfraopsError, to_application_error
from infraops.trivy import metrics
from infraops.trivy.discovery import collect_images
from infraops.trivy.models import (
    Discovery,
    FinishInput,
    ImageScan,
    Plan,
    PlanInput,
    RunInfo,
    RunStart,
    ScanConfig,
    ScanRequest,
    ScanResult,
)
from infraops.trivy.report import Report
from infraops.trivy.store import TrivyStore

log = logging.getLogger(__name__)

NODE_READS = 8


class TrivyActivities:
    """Activities of the trivy role, sharing the Nomad, Trivy and DB clients."""

    def __init__(
        self, nomad: NomadClient, trivy: TrivyClient, store: TrivyStore
    ) -> None:
        self._nomad = nomad
        self._trivy = trivy
        self._store = store

    @activity.defn(name="StartScanRun")
    @classified
    async def start_run(self, start: RunStart) -> RunInfo:
        """Check the Trivy server answers, and open the run in the database."""
        db_version = await self._trivy.preflight()
        run_id = await self._store.start_run(
            start.workflow_id,
            start.workflow_run_id,
            start.config.model_dump(mode="json"),
            db_version,
        )
        log.info("scan run %d started (vulnerability DB %s)", run_id, db_version)
        return RunInfo(run_id=run_id, db_version=db_version)

    @activity.defn(name="DiscoverImages")
    @classified
    async def discover(self, config: ScanConfig) -> Discovery:
        """Every image run by a docker or podman task of a running allocation."""
        nodes = (await self._nomad.get("/v1/nodes")).data
        limit = asyncio.Semaphore(NODE_READS)

        async def allocations(node_id: str) -> list[dict[str, Any]]:
            async with limit:
                answer = await self._nomad.get(f"/v1/node/{node_id}/allocations")
                activity.heartbeat(node_id)
                data: list[dict[str, Any]] = answer.data or []
                return data

        per_node = await asyncio.gather(*(allocations(node["ID"]) for node in nodes))
        discovery = collect_images(
            [alloc for allocs in per_node for alloc in allocs], config.namespaces
        )
        log.info(
            "found %d images in %d running allocations on %d nodes; %d skipped",
            len(discovery.images),
            discovery.allocations,
            len(nodes),
            len(discovery.skipped),
        )
        return discovery

    @activity.defn(name="PlanScans")
    @classified
    async def plan(self, work: PlanInput) -> Plan:
        """Record the run's images; leave out those scanned recently enough."""
        return await self._store.record_plan(
            work.run_id,
            work.discovery.images,
            work.discovery.skipped,
            work.config.rescan_after,
            work.db_version,
        )

    @activity.defn(name="ScanImage")
    async def scan_image(self, request: ScanRequest) -> ImageScan:
        """Run Trivy on one image and store its findings in one transaction."""
        image = request.image
        meter = activity.metric_meter()
        try:
            output = await self._trivy.scan(image.reference, activity.heartbeat)
            report = _only(output.report, request.severities)
            stored = await self._store.store_scan(
                request.run_id, image, report, output.seconds, request.db_version
            )
        except InfraopsError as error:
            attempt = activity.info().attempt
            log.warning(
                "scan of %s failed (attempt %d): %s", image.reference, attempt, error
            )
            raise _application_error(error) from None
        metrics.record_scan(meter, stored)
        log.info(
            "scanned %s: %d findings in %.1f s",
            image.reference,
            stored.findings,
            stored.duration_seconds,
        )
        return stored

    @activity.defn(name="FinishScanRun")
    @classified
    async def finish_run(self, finish: FinishInput) -> ScanResult:
        """Record failures, count findings, find the CVEs new since last run."""
        return await self._store.finish_run(finish)


def _only(report: Report, severities: list[str]) -> Report:
    if not severities:
        return report
    from dataclasses import replace

    wanted = set(severities)
    return replace(
        report, findings=[f for f in report.findings if f.severity in wanted]
    )


def _application_error(error: InfraopsError) -> ApplicationError:
    """Like `to_application_error`, with Trivy's kind and reason as details."""
    base = to_application_error(error)
    if not isinstance(error, TrivyFailure):
        return base
    return ApplicationError(
        base.message,
        {"kind": error.kind.value, "reason": error.reason},
        type=base.type,
        non_retryable=base.non_retryable,
    )
