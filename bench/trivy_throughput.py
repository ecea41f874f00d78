"""Scan throughput against its limit, and rows written per second.

    python -m bench.trivy_throughput [--latency 3.0] [--concurrency 2 4 8]

With a stand-in Trivy whose server answers after a fixed latency L, a scan of
N images at concurrency C cannot beat C/L images per second. The whole Scan
workflow runs on a real Temporal dev server, Nomad simulator and PostgreSQL
cluster, and its images/s is compared with C/L (goal: at least 0.9). Then the
530 KB report (144 findings) is written repeatedly to measure rows/s.

L defaults to 3 s: a real scan through a Trivy server takes far longer, and
what this measures is the orchestration around it (about 0.1 s per image on
two shared cores: the workflow task, the activity, the process start). With
`--latency 1` that fixed cost shows: about 0.85-0.9 of C/L at C >= 4.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from infraops.config import TrivySettings
from infraops.trivy.models import Image, ImageUse, ScanConfig, ScanResult
from infraops.trivy.report import parse_report
from infraops.trivy.store import TrivyStore
from infraops.worker.roles import TRIVY
from infraops.worker.run import hosted
from tests.lab.nomad_sim import GroupSpec, NomadSim, TaskSpec
from tests.lab.postgres import PostgresCluster
from tests.lab.temporal import TemporalDevServer
from tests.lab.trivy_server import TrivyServerStub

GOAL = 0.9
OWN = Path(__file__).parents[1] / "tests" / "fixtures" / "trivy"
SHARED = Path("/work/shared/fixtures/trivy")
TOKEN = "bench-token"


def settings_for(
    pg: PostgresCluster, db: str, server: TrivyServerStub, root: Path
) -> TrivySettings:
    return TrivySettings(
        trivy_server_addr=server.url,
        trivy_token=SecretStr(TOKEN),
        trivy_bin=str(server.write_cli(root)),
        trivy_cache_dir=root / "cache",
        trivy_db_host=pg.host,
        trivy_db_port=pg.port,
        trivy_db_user=pg.user,
        trivy_db_password=SecretStr(pg.password),
        trivy_db_name=db,
        db_sslmode="disable",
    )


def export(settings: TrivySettings, sim: NomadSim) -> None:
    for name, value in settings.model_dump().items():
        if value is not None:
            secret = isinstance(value, SecretStr)
            os.environ[name.upper()] = (
                value.get_secret_value() if secret else str(value)
            )
    os.environ["NOMAD_ADDR"] = sim.url
    os.environ.pop("NOMAD_TOKEN", None)


async def workflow_rate(
    client: Client,
    pg: PostgresCluster,
    root: Path,
    latency: float,
    concurrency: int,
    images: int,
) -> tuple[float, float]:
    db = f"bench_{concurrency}"
    pg.psql(f"CREATE DATABASE {db}")
    report = (OWN / "app-1.4-debian-java.json").read_bytes()
    with (
        TrivyServerStub(token=TOKEN, cli_latency=latency) as server,
        NomadSim(token=None) as sim,
    ):
        node = sim.add_node("node-1", "10.0.0.1")
        tasks = [
            TaskSpec(f"t{n}", config={"image": f"bench/img{n}:1"})
            for n in range(images)
        ]
        sim.add_job("bench", groups=[GroupSpec("bench", tasks=tasks)])
        sim.add_alloc("bench", "bench", node)
        for n in range(images):
            server.plan(f"docker.io/bench/img{n}:1", "ok", report=report)
        export(settings_for(pg, db, server, root), sim)
        queue = f"bench-trivy-{uuid.uuid4().hex[:8]}"
        async with hosted(client, [TRIVY], task_queue=queue):
            started = time.perf_counter()
            handle = await client.start_workflow(
                "Scan",
                ScanConfig(scan_concurrency=concurrency),
                id=f"bench-{queue}",
                task_queue=queue,
                result_type=ScanResult,
            )
            # Time the scan phase: from the first CLI start to the last finish.
            result = await handle.result()
            total = time.perf_counter() - started
        assert result.images_scanned == images, result
        # The scan phase: from the first trivy run's start to the last image stored.
        first = min(call.started for call in server.invocations)
        stored = pg.psql("SELECT extract(epoch FROM max(scanned_at)) FROM scans", db)
        return images / (float(stored) - first), images / total


async def rows_rate(pg: PostgresCluster, root: Path, repeats: int) -> tuple[int, float]:
    pg.psql("CREATE DATABASE bench_rows")
    path = SHARED / "ubuntu-java-large.json"
    if not path.is_file():
        path = OWN / "app-1.4-debian-java.json"
    report = parse_report(path.read_bytes())
    with TrivyServerStub() as server:
        store = TrivyStore(settings_for(pg, "bench_rows", server, root))
        await store.migrate()
        run_id = await store.start_run("bench", "bench-rows", {}, None)
        images = [
            Image(
                reference=f"docker.io/bench/large:{n}",
                repository="docker.io/bench/large",
                uses=[
                    ImageUse(
                        namespace="default",
                        job="j",
                        group="g",
                        task="t",
                        driver="docker",
                        written="large",
                    )
                ],
            )
            for n in range(repeats)
        ]
        await store.record_plan(run_id, images, [], timedelta(0), None)
        started = time.perf_counter()
        for image in images:
            await store.store_scan(run_id, image, report, 1.0)
        elapsed = time.perf_counter() - started
        await store.aclose()
    return len(report.findings), len(report.findings) * repeats / elapsed


async def main(args: argparse.Namespace) -> int:
    root = Path(tempfile.mkdtemp(prefix="bench-trivy-"))
    ok = True
    try:
        with (
            PostgresCluster(root / "pg") as pg,
            TemporalDevServer(root / "temporal") as temporal,
        ):
            client = await Client.connect(
                temporal.address, data_converter=pydantic_data_converter
            )
            print(
                f"latency L = {args.latency:.2f} s per trivy run (from process start)"
            )
            print(
                f"{'C':>3} {'images':>6} {'limit C/L':>10} {'scan img/s':>11} "
                f"{'ratio':>6} {'run img/s':>10}"
            )
            for concurrency in args.concurrency:
                images = concurrency * args.rounds
                limit = concurrency / args.latency
                scan, whole = await workflow_rate(
                    client, pg, root, args.latency, concurrency, images
                )
                ratio = scan / limit
                ok = ok and ratio >= GOAL
                print(
                    f"{concurrency:>3} {images:>6} {limit:>10.2f} {scan:>11.2f} "
                    f"{ratio:>6.2f} {whole:>10.2f}"
                )
            findings, rate = await rows_rate(pg, root, args.repeats)
            print(
                f"rows: {findings} findings x {args.repeats} images: {rate:,.0f} rows/s"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"goal: scan-phase images/s >= {GOAL} x C/L: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--rounds", type=int, default=5, help="images per slot")
    parser.add_argument("--repeats", type=int, default=50)
    sys.exit(asyncio.run(main(parser.parse_args())))
