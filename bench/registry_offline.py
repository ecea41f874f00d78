"""How long the registry is offline during a GC, against GC's own run time.

One run of the whole saga on the lab (Temporal dev server, Nomad simulator with
realistic stop/start delays, a real `docker-registry` process as the job's
allocation, real storage on an sshd node, the real garbage-collect over SSH),
repeated a few times on a fresh copy of the storage. Both numbers come from the
same run: `offline_seconds` (scale-down accepted -> new allocation running) and
`gc_seconds` (the garbage-collect command itself). The goal is an overhead of a
few seconds, not minutes.

    python -m bench.registry_offline [RUNS]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from infraops.clients.nomad import NomadClient
from infraops.clients.ssh import SSHClient
from infraops.config import NomadSettings, SSHSettings
from infraops.registry_gc.activities import RegistryGCActivities
from infraops.registry_gc.models import RegistryGCConfig, RegistryGCResult
from infraops.registry_gc.workflows import RegistryGCWorkflow
from tests.lab.nomad_sim import NomadSim
from tests.lab.registry_job import RegistryHost, RegistryJob
from tests.lab.temporal import TemporalDevServer

TOKEN = "bench-token"
GOAL_OVERHEAD = 5.0  # seconds of offline time beyond the GC command itself
# Nomad-like delays: a task's kill timeout and an image already on the node.
STOP_DELAY = 1.0
START_DELAY = 1.0


async def one_run(client: Client, host: RegistryHost) -> RegistryGCResult:
    host.reset()
    with NomadSim(token=TOKEN, stop_delay=STOP_DELAY, start_delay=START_DELAY) as sim:
        RegistryJob(host, sim)
        nomad = NomadClient(NomadSettings(nomad_addr=sim.url, nomad_token=TOKEN))
        ssh = SSHClient(
            SSHSettings(**{k.lower(): v for k, v in host.ssh.env().items()})
        )
        gc = RegistryGCActivities(nomad, ssh)
        queue = f"bench-registry-{uuid.uuid4().hex[:8]}"
        config = RegistryGCConfig.model_validate(
            host.gc_config_fields(dry_run=False, delete_untagged=False, poll_interval=1)
        )
        try:
            async with Worker(
                client,
                task_queue=queue,
                workflows=[RegistryGCWorkflow],
                activities=[
                    gc.find_node,
                    gc.probe,
                    gc.measure,
                    gc.scale,
                    gc.wait_drained,
                    gc.run_gc,
                    gc.restore,
                    gc.check_integrity,
                ],
                max_heartbeat_throttle_interval=timedelta(seconds=1),
            ):
                result: RegistryGCResult = await client.execute_workflow(
                    RegistryGCWorkflow.run,
                    config,
                    id=f"bench-registry-gc-{uuid.uuid4().hex[:8]}",
                    task_queue=queue,
                )
        finally:
            await ssh.aclose()
            await nomad.aclose()
        host.registry.stop()
    return result


async def main(runs: int) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        root = Path(tmp)
        host = RegistryHost(root / "registry").start()
        try:
            with TemporalDevServer(root / "temporal") as server:
                client = await Client.connect(
                    server.address, data_converter=pydantic_data_converter
                )
                results = [await one_run(client, host) for _ in range(runs)]
        finally:
            host.stop()
    print(f"registry offline vs garbage-collect, {runs} runs")
    print(f"(Nomad stop delay {STOP_DELAY:.1f} s, start delay {START_DELAY:.1f} s)")
    print(f"{'run':>4} {'gc s':>8} {'offline s':>10} {'overhead s':>11} {'ratio':>7}")
    for number, result in enumerate(results, 1):
        overhead = result.offline_seconds - result.gc_seconds
        ratio = result.offline_seconds / max(result.gc_seconds, 1e-6)
        print(
            f"{number:>4} {result.gc_seconds:>8.2f} {result.offline_seconds:>10.2f} "
            f"{overhead:>11.2f} {ratio:>6.1f}x"
        )
    overheads = [r.offline_seconds - r.gc_seconds for r in results]
    median = statistics.median(overheads)
    verdict = "OK" if median <= GOAL_OVERHEAD else "TOO SLOW"
    print(
        f"median overhead {median:.2f} s (goal: at most {GOAL_OVERHEAD:.0f} s "
        f"beyond GC itself, of which {STOP_DELAY + START_DELAY:.1f} s are Nomad's "
        f"own stop/start delays): {verdict}"
    )
    return 0 if median <= GOAL_OVERHEAD else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)))
