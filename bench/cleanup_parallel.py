"""A dry cleanup across 20 lab nodes against the slowest single node.

Both are measured in the same run, on the same lab: each node alone first,
then all of them in one workflow. If the nodes really run in parallel the
fleet takes about as long as its slowest node (goal: at most 1.5x).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from infraops.cleanup.models import CleanupConfig, CleanupResult
from infraops.worker.roles import CLEANUP
from infraops.worker.run import hosted
from tests.lab.fleet import EXCLUDE, Fleet

NODES = 20
GOAL = 1.5


async def run(client: Client, queue: str, config: CleanupConfig) -> float:
    started = time.perf_counter()
    result = await client.execute_workflow(
        "Cleanup",
        config,
        id=f"bench-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        result_type=CleanupResult,
    )
    elapsed = time.perf_counter() - started
    assert not result.failed_nodes, result.failed_nodes
    assert result.totals.candidates == 4 * len(config.nodes or range(NODES))
    return elapsed


async def measure(fleet: Fleet) -> int:
    import os

    os.environ.update(fleet.env())
    client = await Client.connect(
        fleet.temporal.address, data_converter=pydantic_data_converter
    )
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    names = sorted(fleet.clients)
    base = {"data_dir": fleet.data_dir, "exclude": EXCLUDE, "concurrency": NODES}
    async with hosted(client, [CLEANUP], task_queue=queue):
        await run(client, queue, CleanupConfig(**base, nodes=names[:1]))  # warm-up
        singles = [
            await run(client, queue, CleanupConfig(**base, nodes=[name]))
            for name in names
        ]
        fleet_time = min(
            [await run(client, queue, CleanupConfig(**base)) for _ in range(3)]
        )
    slowest = max(singles)
    ratio = fleet_time / slowest
    print(f"nodes:                 {len(names)}")
    print(
        f"slowest single node:   {slowest:6.2f} s (median {sorted(singles)[len(singles) // 2]:.2f} s)"
    )
    print(f"all nodes, one run:    {fleet_time:6.2f} s (best of 3)")
    print(f"ratio fleet/slowest:   {ratio:6.2f}x (goal <= {GOAL}x)")
    print(f"if run one by one:     {sum(singles):6.2f} s")
    return 0 if ratio <= GOAL else 1


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="infraops-bench-") as root:
        fleet = Fleet(Path(root))
        for index in range(NODES):
            fleet.add_client(f"node-{index:02d}")
        with fleet:
            return asyncio.run(measure(fleet))


if __name__ == "__main__":
    sys.exit(main())
