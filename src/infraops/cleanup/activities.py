"""The Cleanup workflow's side effects: Nomad reads and SSH commands.

Every method is an activity. Errors are classified by the clients; the
`classified` wrapper hands them to Temporal as retryable or not.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity

from infraops.activity_support import classified
from infraops.cleanup import metrics
from infraops.cleanup.classify import classify
from infraops.cleanup.docker import PRUNE_ARGV, parse_prune
from infraops.cleanup.listing import (
    LIST_SCRIPT,
    REMOVE_SCRIPT,
    ListingError,
    parse_listing,
)
from infraops.cleanup.models import (
    SYSTEM_ENTRIES,
    UNKNOWN_NODE,
    CleanupConfig,
    DockerPrune,
    Node,
    NodePlan,
    NodeRemoval,
    NodeScan,
    NodeSkip,
    NodeWork,
    Reason,
    RemovalInput,
    Removed,
    Verdict,
    is_plain_name,
)
from infraops.clients.nomad import NomadClient
from infraops.clients.ssh import Completed, Host, SSHClient
from infraops.errors import PermanentError, TransientError
from infraops.registry_gc.guard import registry_gc_holds

LIVE_CLIENT = {"pending", "running"}
UNAVAILABLE = {"down": "node is down", "disconnected": "node is disconnected"}


class CleanupActivities:
    """Activities of the cleanup role, sharing one Nomad and one SSH client."""

    def __init__(self, nomad: NomadClient, ssh: SSHClient) -> None:
        self._nomad = nomad
        self._ssh = ssh

    @activity.defn(name="ListCleanupNodes")
    @classified
    async def list_nodes(self, config: CleanupConfig) -> NodePlan:
        """Client nodes to clean, and the ones left alone with the reason."""
        stubs = (await self._nomad.get("/v1/nodes")).data
        wanted = set(config.nodes)
        targets: list[Node] = []
        skipped: list[NodeSkip] = []
        for stub in sorted(stubs, key=lambda stub: stub["Name"]):
            name = stub["Name"]
            if wanted and name not in wanted:
                continue
            reason = _unavailable(stub)
            if reason:
                skipped.append(NodeSkip(name=name, reason=reason))
            else:
                targets.append(Node(id=stub["ID"], name=name, address=stub["Address"]))
        known = {stub["Name"] for stub in stubs}
        skipped += [
            NodeSkip(name=name, reason=UNKNOWN_NODE) for name in sorted(wanted - known)
        ]

        return NodePlan(targets=targets, skipped=skipped)

    @activity.defn(name="ScanNode")
    @classified
    async def scan_node(self, work: NodeWork) -> NodeScan:
        """Classify the node's data directory and size the candidates."""
        verdicts = await self._classify(work.node, work.config)
        candidates = [v for v in verdicts if v.reason is Reason.CANDIDATE]
        skipped = [v for v in verdicts if v.reason is not Reason.CANDIDATE]
        metrics.record_scan(activity.metric_meter(), skipped)
        activity.logger.info(
            "scanned %s: %d candidates, %d kept",
            work.node.name,
            len(candidates),
            len(skipped),
        )

        return NodeScan(candidates=candidates, skipped=skipped)

    @activity.defn(name="RemoveCandidates")
    @classified
    async def remove_candidates(self, work: RemovalInput) -> NodeRemoval:
        """Delete what is still a candidate now; report what changed its mind."""
        node, config = work.node, work.config
        verdicts = await self._classify(node, config)
        still = {v.name for v in verdicts if v.reason is Reason.CANDIDATE}
        names = [name for name in work.names if name in still and is_plain_name(name)]
        kept = [v for v in verdicts if v.name in work.names and v.name not in still]
        kept += [
            Verdict(name=name, reason=Reason.VANISHED)
            for name in work.names
            if name not in {v.name for v in verdicts}
        ]
        removed: list[Removed] = []
        errors: list[str] = []
        if names:
            result = await self._run(
                node, ["bash", "-c", REMOVE_SCRIPT, "rm", config.data_dir, *names]
            )
            removed, errors = _read_removals(result.stdout)
        metrics.record_removal(activity.metric_meter(), removed, kept)
        for entry in removed:
            activity.logger.info(
                "removed %s/%s on %s (%d bytes)",
                config.data_dir,
                entry.name,
                node.name,
                entry.bytes_reclaimed,
            )

        return NodeRemoval(removed=removed, kept=kept, errors=errors)

    @activity.defn(name="PruneDockerImages")
    @classified
    async def prune_docker(self, work: NodeWork) -> DockerPrune:
        """Remove dangling images only (never `--all`), as Docker reports."""
        held = await registry_gc_holds(work.node.name)
        if held:
            activity.logger.info("not pruning images on %s: %s", work.node.name, held)
            return DockerPrune(deleted=[], untagged=[], bytes_reclaimed=0, skipped=held)
        result = await self._run(work.node, PRUNE_ARGV)
        if result.exit_status != 0:
            raise PermanentError(
                f"{work.node.name}: docker image prune failed: {_tail(result.stderr)}"
            )
        try:
            return parse_prune(result.stdout.decode(errors="replace"))
        except ValueError as error:
            raise PermanentError(f"{work.node.name}: {error}") from None

    async def _classify(self, node: Node, config: CleanupConfig) -> list[Verdict]:
        keep = await self._keep_set(node, config.data_dir)
        result = await self._run(
            node,
            [
                "bash",
                "-c",
                LIST_SCRIPT,
                "ls",
                config.data_dir,
                *_never_walked(keep, config),
            ],
        )
        if result.exit_status != 0:
            raise PermanentError(
                f"{node.name}: cannot list {config.data_dir}: {_tail(result.stderr)}"
            )
        try:
            listing = parse_listing(result.stdout)
        except ListingError as error:
            raise TransientError(f"{node.name}: {error}") from None

        return classify(
            listing, keep, grace_days=config.grace_days, exclude=config.exclude
        )

    async def _keep_set(self, node: Node, data_dir: str) -> set[str]:
        """Names that belong to live work on the node, according to Nomad."""
        allocations = (await self._nomad.get(f"/v1/node/{node.id}/allocations")).data
        keep: set[str] = set()
        for alloc in allocations:
            if alloc["ClientStatus"] in LIVE_CLIENT or alloc["DesiredStatus"] == "run":
                keep |= _alloc_names(alloc)
        detail = (await self._nomad.get(f"/v1/node/{node.id}")).data
        for name, volume in (detail.get("HostVolumes") or {}).items():
            keep.add(name)
            keep |= _first_component_under(volume.get("Path") or "", data_dir)

        return keep

    async def _run(self, node: Node, argv: list[str]) -> Completed:
        activity.heartbeat(node.name)
        return await self._ssh.run(Host(node.name, node.address), argv)


def _never_walked(keep: set[str], config: CleanupConfig) -> list[str]:
    """Names kept whatever their age: the node need not measure them."""
    return sorted(SYSTEM_ENTRIES | set(config.exclude) | keep)


def _unavailable(stub: dict[str, Any]) -> str:
    status = stub.get("Status", "")
    if status in UNAVAILABLE:
        return UNAVAILABLE[status]
    if stub.get("Drain"):
        return "node is draining"
    if status != "ready":
        return f"node is {status or 'in an unknown state'}"
    return ""


def _alloc_names(alloc: dict[str, Any]) -> set[str]:
    names = {alloc["ID"], alloc["JobID"]}
    job = alloc.get("Job") or {}
    names |= {value for key in ("ID", "Name", "ParentID") if (value := job.get(key))}

    return names


def _first_component_under(path: str, root: str) -> set[str]:
    prefix = root.rstrip("/") + "/"
    if not path.startswith(prefix):
        return set()
    return {path[len(prefix) :].split("/", 1)[0]}


def _read_removals(stdout: bytes) -> tuple[list[Removed], list[str]]:
    fields = [f.decode("utf-8", errors="backslashreplace") for f in stdout.split(b"\0")]
    removed: list[Removed] = []
    errors: list[str] = []
    at = 0
    while at < len(fields) - 1:
        tag = fields[at]
        if tag == "removed":
            name, before, after, error = fields[at + 1 : at + 5]
            reclaimed = max(0, _int(before) - _int(after))
            removed.append(Removed(name=name, bytes_reclaimed=reclaimed))
            if _int(after) or error:
                errors.append(
                    f"{name}: partly removed: {error.strip() or 'entries left'}"
                )
            at += 5
        else:
            errors.append(f"{fields[at + 1]}: {tag}, not removed")
            at += 2

    return removed, errors


def _int(text: str) -> int:
    return int(text) if text.strip().isdigit() else 0


def _tail(data: bytes, limit: int = 300) -> str:
    return data.decode(errors="replace").strip()[-limit:] or "no error output"
