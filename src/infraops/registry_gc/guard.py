"""Whether another operation must keep off the registry node right now.

The node cleanup's `docker image prune` must never run on the registry node
while RegistryGC has its registry scaled down. Temporal already knows: the GC
runs under a fixed workflow id, so the prune activity asks Temporal whether
that workflow is running and where, instead of taking a lock of our own. When
the answer is unclear, the prune is skipped: a skipped prune costs nothing.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from infraops.registry_gc.models import REGISTRY_GC_WORKFLOW_ID, RegistryGCProgress

QUERY_TIMEOUT = 10.0


async def registry_gc_holds(node_name: str) -> str:
    """Why `node_name` must be left alone now, or "" when it is free."""
    try:
        client = activity.client()
    except RuntimeError:
        return "cannot ask Temporal whether registry-gc is running"
    handle = client.get_workflow_handle(REGISTRY_GC_WORKFLOW_ID)
    try:
        async with asyncio.timeout(QUERY_TIMEOUT):
            description = await handle.describe()
            if description.status != WorkflowExecutionStatus.RUNNING:
                return ""
            progress = await handle.query("progress", result_type=RegistryGCProgress)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return ""
        activity.logger.warning(
            "cannot ask Temporal about registry-gc: %s", error.message
        )
        return "cannot ask Temporal whether registry-gc is running"
    except (TimeoutError, WorkflowQueryFailedError):
        return "registry-gc is running and did not say on which node"
    if progress.node and progress.node != node_name:
        return ""
    where = progress.node or "a node not located yet"
    return f"registry-gc is running on {where}; its registry may be scaled down"
