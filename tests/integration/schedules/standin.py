"""A stand-in registered under the Cleanup workflow's name: it echoes its input.

Kept in its own module so the workflow sandbox loads only this.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from infraops.cleanup.models import CleanupConfig


@workflow.defn(name="Cleanup")
class EchoCleanup:
    @workflow.run
    async def run(self, config: CleanupConfig) -> dict[str, Any]:
        return {
            "input": config.model_dump(mode="json"),
            "task_queue": workflow.info().task_queue,
            "workflow_type": workflow.info().workflow_type,
        }
