"""The RegistryGC workflow's side effects: Nomad scaling, SSH commands, HTTP.

Every method is an activity. Errors are classified here or by the clients; the
`classified` wrapper hands them to Temporal as retryable or not.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from temporalio import activity

from infraops.activity_support import classified, heartbeating
from infraops.clients.nomad import NomadClient, NomadRejected, NomadUnavailable
from infraops.clients.ssh import Completed, Host, SSHClient
from infraops.errors import PermanentError, TransientError
from infraops.registry_gc import commands, metrics
from infraops.registry_gc.gc_output import GCOutputError, parse_gc_output
from infraops.registry_gc.integrity import (
    IntegrityCheckError,
    check_registry_integrity,
)
from infraops.registry_gc.models import (
    Broken,
    Drained,
    DrainRequest,
    GCOutcome,
    GCProbe,
    GCRun,
    Integrity,
    NodeWork,
    RegistryGCConfig,
    RegistryNode,
    Restored,
    RestoreRequest,
    ScaleOutcome,
    ScaleRequest,
    StorageUsage,
)

LIVE = frozenset({"pending", "running"})
ACTIVE_DEPLOYMENT = "active deployment"
CAS_CONFLICT = "conflicting job modify index"
_SHORT_COMMAND = 120.0


class RegistryGCActivities:
    """Activities of the RegistryGC saga, sharing one Nomad and one SSH client."""

    def __init__(self, nomad: NomadClient, ssh: SSHClient) -> None:
        self._nomad = nomad
        self._ssh = ssh

    # -- before the registry goes down ---------------------------------------

    @activity.defn(name="FindRegistryNode")
    @classified
    async def find_node(self, config: RegistryGCConfig) -> RegistryNode:
        """The node running the registry group (or, if stopped, that last ran it)."""
        job = await self._job(config.job_name)
        count = _group(job, config.job_name, config.group)["Count"]
        allocs = [
            alloc
            for alloc in await self._allocations(config.job_name)
            if alloc["TaskGroup"] == config.group
        ]
        running = [a for a in allocs if _running(a)]
        nodes = {alloc["NodeID"] for alloc in running}
        if len(nodes) > 1:
            raise PermanentError(
                f"job {config.job_name} group {config.group} runs on {len(nodes)} "
                "nodes; registry GC needs the one host holding its storage"
            )
        pool = running or sorted(allocs, key=lambda a: a["ModifyIndex"], reverse=True)
        if not pool:
            raise PermanentError(
                f"job {config.job_name} group {config.group} has no allocation, "
                "so its node cannot be located"
            )
        node_id = pool[0]["NodeID"]
        stubs = (await self._nomad.get("/v1/nodes", {"prefix": node_id})).data
        node = next((stub for stub in stubs if stub["ID"] == node_id), None)
        if node is None:
            raise TransientError(f"node {node_id} of the registry is not listed")
        located = RegistryNode(
            node_id=node["ID"],
            name=node["Name"],
            address=node["Address"],
            count=count,
            running_allocs=[alloc["ID"] for alloc in running],
        )
        activity.logger.info(
            "registry %s/%s: count %d, %d running allocation(s) on %s",
            config.job_name,
            config.group,
            count,
            len(running),
            located.name,
        )
        return located

    @activity.defn(name="ProbeRegistryGC")
    @classified
    async def probe(self, work: NodeWork) -> GCProbe:
        """Which distribution version the GC command runs (decides -m on 2.x)."""
        argv = commands.version_argv(work.config)
        result = await self._run(work.node, argv, time_limit=_SHORT_COMMAND)
        output = (result.stdout + b"\n" + result.stderr).decode(errors="replace")
        if result.exit_status != 0:
            raise PermanentError(
                f"{work.node.name}: the GC image cannot run ({argv[0]} exited "
                f"{result.exit_status}): {_tail(result.stderr or result.stdout)}; "
                "the registry was left running"
            )
        probe = commands.parse_version(output)
        activity.logger.info(
            "garbage-collect on %s is distribution %s",
            work.node.name,
            probe.version or "(unknown version)",
        )
        return probe

    @activity.defn(name="MeasureRegistryDataDir")
    @classified
    async def measure(self, work: NodeWork) -> StorageUsage:
        """Bytes (du -sb) and blob files of the storage; fails if it is absent."""
        data_dir = work.config.registry_data_dir
        argv = ["bash", "-c", commands.MEASURE_SCRIPT, "measure", data_dir]
        result = await self._run(work.node, argv, time_limit=_SHORT_COMMAND * 5)
        if result.exit_status == 3:
            raise PermanentError(f"{work.node.name}: {_tail(result.stderr)}")
        if result.exit_status != 0:
            raise TransientError(
                f"{work.node.name}: cannot measure {data_dir}: {_tail(result.stderr)}"
            )
        try:
            size, blobs = commands.parse_usage(result.stdout.decode(errors="replace"))
        except ValueError as error:
            raise TransientError(f"{work.node.name}: {error}") from None
        return StorageUsage(bytes=size, blob_files=blobs)

    # -- scaling ---------------------------------------------------------------

    @activity.defn(name="ScaleRegistry")
    @classified
    async def scale(self, request: ScaleRequest) -> ScaleOutcome:
        """Set the group's count if it differs (the endpoint is not idempotent)."""
        return await self._scale(request)

    @activity.defn(name="WaitRegistryAllocsDrained")
    @classified
    async def wait_drained(self, request: DrainRequest) -> Drained:
        """Block until no allocation of the group is pending or running."""
        index = 0
        wait = max(1.0, request.poll_interval.total_seconds())
        stopping: set[str] = set()
        while True:
            answer = await self._nomad.get(
                f"/v1/job/{quote(request.job_name, safe='')}/allocations",
                index=index or None,
                wait=wait,
            )
            group = [a for a in answer.data if a["TaskGroup"] == request.group_name]
            live = [a for a in group if a["ClientStatus"] in LIVE]
            wanted = [a["ID"] for a in live if a["DesiredStatus"] == "run"]
            if wanted:
                raise PermanentError(
                    f"job {request.job_name} group {request.group_name} has "
                    f"allocation(s) meant to run ({', '.join(w[:8] for w in wanted)}) "
                    "after the scale to 0: someone scaled it back up; GC not started"
                )
            stopping |= {a["ID"] for a in group if a["DesiredStatus"] != "run"}
            if not live:
                return Drained(stopped_allocs=sorted(stopping), at=_now())
            activity.heartbeat(f"{len(live)} allocation(s) still stopping")
            index = answer.index

    # -- garbage collection ----------------------------------------------------

    @activity.defn(name="RunRegistryGarbageCollect")
    @classified
    async def run_gc(self, run: GCRun) -> GCOutcome:
        """Run garbage-collect once on the node; never retried (a GC may be partial)."""
        config, node = run.config, run.node
        sizes_argv = ["bash", "-c", commands.BLOB_SIZES_SCRIPT, "sizes"]
        sizes_run = await self._run_heartbeating(
            run, [*sizes_argv, config.registry_data_dir], gc=False
        )
        sizes = commands.parse_blob_sizes(sizes_run.stdout.decode(errors="replace"))
        argv = commands.gc_argv(config, run.flags)
        activity.logger.info(
            "running garbage-collect on %s: %s", node.name, " ".join(argv)
        )
        started_at, clock = _now(), time.monotonic()
        try:
            result = await self._run_heartbeating(run, argv, gc=True)
        except TransientError as error:
            if "did not finish within" not in str(error):
                raise
            raise PermanentError(
                f"{node.name}: garbage-collect timed out after gc_timeout "
                f"({config.gc_timeout.total_seconds():.0f} s) and was stopped"
            ) from None
        seconds = time.monotonic() - clock
        metrics.record_gc_seconds(activity.metric_meter(), seconds)
        if result.exit_status != 0:
            raise PermanentError(
                f"{node.name}: garbage-collect exited {result.exit_status} after "
                f"{seconds:.1f} s: {_tail(result.stderr or result.stdout)}"
            )
        try:
            report = parse_gc_output(result.stdout.decode(errors="replace"))
        except GCOutputError as error:
            raise PermanentError(f"{node.name}: {error}") from None
        unknown = [d for d in report.blob_digests if d not in sizes]
        if unknown:
            activity.logger.warning(
                "%d deleted blob(s) had no size on disk", len(unknown)
            )
        outcome = GCOutcome(
            blobs_marked=report.blobs_marked,
            blobs_deleted=report.blobs_eligible,
            manifests_deleted=report.manifests_eligible,
            blob_bytes_deleted=sum(sizes.get(d, 0) for d in report.blob_digests),
            blob_digests=sorted(report.blob_digests),
            manifest_digests=sorted(report.manifest_digests),
            output_format=report.output_format,
            seconds=seconds,
            started_at=started_at,
            finished_at=_now(),
        )
        activity.logger.info(
            "garbage-collect on %s: %d blobs marked, %d blobs and %d manifests "
            "%s (%d bytes) in %.1f s",
            node.name,
            outcome.blobs_marked,
            outcome.blobs_deleted,
            outcome.manifests_deleted,
            "eligible" if config.dry_run else "deleted",
            outcome.blob_bytes_deleted,
            seconds,
        )
        return outcome

    # -- compensation ----------------------------------------------------------

    @activity.defn(name="RestoreRegistry")
    @classified
    async def restore(self, request: RestoreRequest) -> Restored:
        """Stop any GC left on the node, scale back up, wait for a running alloc."""
        config = request.config
        async with heartbeating("bringing the registry back"):
            if request.stop_gc:
                await self._stop_gc(request.node, config)
            outcome = await self._scale(
                ScaleRequest(
                    job_name=config.job_name,
                    group_name=config.group,
                    count=request.count,
                    message="infraops registry-gc: bring the registry back",
                    poll_interval=config.poll_interval,
                    fence=request.fence,
                )
            )
            index = 0
            wait = max(1.0, config.poll_interval.total_seconds())
            while True:
                answer = await self._nomad.get(
                    f"/v1/job/{quote(config.job_name, safe='')}/allocations",
                    index=index or None,
                    wait=wait,
                )
                running = [
                    a
                    for a in answer.data
                    if a["TaskGroup"] == config.group and _running(a)
                ]
                if running:
                    newest = max(running, key=lambda a: a["CreateIndex"])
                    new = newest["ID"] not in request.node.running_allocs
                    activity.logger.info(
                        "registry %s running again in allocation %s (%s)",
                        config.job_name,
                        newest["ID"][:8],
                        "new" if new else "never stopped",
                    )
                    return Restored(
                        alloc_id=newest["ID"],
                        new_allocation=new,
                        scaled=outcome.changed,
                        at=_now(),
                    )
                activity.heartbeat("waiting for a running registry allocation")
                index = answer.index

    # -- after -----------------------------------------------------------------

    @activity.defn(name="CheckRegistryIntegrity")
    @classified
    async def check_integrity(self, config: RegistryGCConfig) -> Integrity:
        """Every tag, index child and blob of the running registry resolves."""
        try:
            report = await check_registry_integrity(
                config.registry_url,
                total_timeout=max(1.0, config.integrity_timeout.total_seconds() - 5),
            )
        except IntegrityCheckError as error:
            raise TransientError(f"integrity check: {error}") from None
        broken = [Broken.model_validate(b.model_dump()) for b in report.broken]
        for item in broken:
            activity.logger.error(
                "registry integrity: %s %s of %s@%s is missing (%s)",
                item.kind,
                item.digest or "",
                item.repository,
                item.reference,
                item.error or item.status_code,
            )
        return Integrity(
            checked=True,
            ok=not broken,
            repositories=report.repositories,
            tags_checked=report.tags_checked,
            manifests_checked=report.manifests_checked,
            blobs_checked=report.blobs_checked,
            broken=broken,
        )

    # -- helpers ---------------------------------------------------------------

    async def _scale(self, request: ScaleRequest) -> ScaleOutcome:
        job_path = f"/v1/job/{quote(request.job_name, safe='')}"
        poll = request.poll_interval.total_seconds()
        while True:
            job = await self._job(request.job_name)
            current = _group(job, request.job_name, request.group_name)["Count"]
            if current == request.count and not request.fence:
                activity.logger.info(
                    "%s/%s already has count %d; not scaling",
                    request.job_name,
                    request.group_name,
                    current,
                )
                return ScaleOutcome(
                    previous=current, count=current, changed=False, at=_now()
                )
            body: dict[str, Any] = {
                "Count": request.count,
                "Target": {"Group": request.group_name},
                "Message": request.message,
                "JobModifyIndex": job["JobModifyIndex"],
            }
            try:
                await self._nomad.post(f"{job_path}/scale", body)
            except NomadRejected as error:
                if ACTIVE_DEPLOYMENT not in error.body:
                    raise
                activity.heartbeat("scaling blocked by an active deployment")
                activity.logger.info(
                    "%s: deployment active; retrying scale", request.job_name
                )
                await asyncio.sleep(poll)
                continue
            except NomadUnavailable as error:
                if CAS_CONFLICT not in str(error):
                    raise
                # The index moved, so an older in-flight request is fenced off.
                request = request.model_copy(update={"fence": False})
                activity.heartbeat("job changed meanwhile; reading it again")
                continue
            activity.logger.info(
                "scaled %s/%s from %d to %d",
                request.job_name,
                request.group_name,
                current,
                request.count,
            )
            return ScaleOutcome(
                previous=current,
                count=request.count,
                changed=current != request.count,
                at=_now(),
            )

    async def _job(self, job_name: str) -> dict[str, Any]:
        try:
            answer = await self._nomad.get(f"/v1/job/{quote(job_name, safe='')}")
        except NomadRejected as error:
            if error.status == 404:
                raise PermanentError(f"Nomad has no job {job_name!r}") from None
            raise
        job: dict[str, Any] = answer.data
        return job

    async def _allocations(self, job_name: str) -> list[dict[str, Any]]:
        path = f"/v1/job/{quote(job_name, safe='')}/allocations"
        allocs: list[dict[str, Any]] = (await self._nomad.get(path)).data
        return allocs

    async def _run_heartbeating(
        self, run: GCRun, argv: list[str], *, gc: bool
    ) -> Completed:
        """Run `argv`, heartbeating; with `gc`, make sure GC stops on any failure."""
        config, node = run.config, run.node
        every = max(0.2, config.heartbeat_timeout.total_seconds() / 3)
        task = asyncio.ensure_future(
            self._run(node, argv, time_limit=config.gc_timeout.total_seconds())
        )
        clock = time.monotonic()
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=every)
                if done:
                    return task.result()
                activity.heartbeat(
                    f"{argv[0]} running for {time.monotonic() - clock:.0f} s"
                )
        except BaseException:
            task.cancel()
            if not gc:
                raise
            # Closing the SSH channel does not stop a remote command, and sshd
            # refuses signals for root sessions: stop it by name before the
            # registry can start on storage GC is still deleting from.
            activity.logger.warning(
                "garbage-collect on %s interrupted; stopping it", node.name
            )
            await asyncio.shield(self._stop_gc(node, config))
            raise

    async def _stop_gc(self, node: RegistryNode, config: RegistryGCConfig) -> None:
        argv = commands.stop_argv(config)
        result = await self._run(node, argv, time_limit=_SHORT_COMMAND)
        if result.exit_status != 0:
            raise TransientError(
                f"{node.name}: cannot make sure garbage-collect has stopped "
                f"({argv[0]} exited {result.exit_status}): "
                f"{_tail(result.stderr or result.stdout)}"
            )

    async def _run(
        self, node: RegistryNode, argv: list[str], *, time_limit: float
    ) -> Completed:
        activity.heartbeat(node.name)
        return await self._ssh.run(
            Host(node.name, node.address), argv, time_limit=time_limit
        )


def _group(job: dict[str, Any], job_name: str, group: str) -> dict[str, Any]:
    for task_group in job.get("TaskGroups") or []:
        if task_group["Name"] == group:
            found: dict[str, Any] = task_group
            return found
    raise PermanentError(f"job {job_name} has no task group {group!r}")


def _running(alloc: dict[str, Any]) -> bool:
    return bool(alloc["ClientStatus"] == "running" and alloc["DesiredStatus"] == "run")


def _now() -> datetime:
    return datetime.now(UTC)


def _tail(data: bytes, limit: int = 400) -> str:
    return data.decode(errors="replace").strip()[-limit:] or "no error output"
