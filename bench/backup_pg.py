"""The PostgreSQL leg against plain `pg_dump -Fc`, and the worker's memory.

    python -m bench.backup_pg [--gib 1.0] [--databases 4] [--concurrency 4]

Builds a throwaway cluster with databases totalling at least `--gib` of
table data, then, in the same run and with the same concurrency:

- plain: `pg_dump -Fc -f FILE` of every database;
- ours: the DumpPostgresDatabase activity (pg_dump to a temporary file, the
  whole archive read back by pg_restore and hashed, fsync, rename).

Each is run twice, alternating, and the faster of each pair is compared
(goal: ours within 1.2x of plain). The process's resident memory is
sampled during a small and a large backup: it must not grow with dump size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from temporalio.testing import ActivityEnvironment

GOAL = 1.2


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class PeakRSS:
    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib())
            time.sleep(0.02)

    def __enter__(self) -> PeakRSS:
        self.peak = rss_kib()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def make_data(pg: object, names: list[str], mib_each: int) -> None:
    rows = mib_each * 1024 * 1024 // 110  # ~110 bytes of row data per row
    for name in names:
        pg.psql(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
        pg.psql(  # type: ignore[attr-defined]
            "CREATE TABLE events (id bigint, at timestamptz, body text); "
            "INSERT INTO events SELECT g, now() - g * interval '1 second', "
            "md5(g::text) || ' ' || md5((g % 9973)::text) || ' ' || (g % 1000) "
            f"FROM generate_series(1, {rows}) g",
            dbname=name,
        )


async def plain(env: dict[str, str], names: list[str], out: Path, limit: int) -> float:
    sem = asyncio.Semaphore(limit)

    async def one(name: str) -> None:
        async with sem:
            proc = await asyncio.create_subprocess_exec(
                "pg_dump",
                "-Fc",
                "-w",
                "-f",
                str(out / f"{name}.dump"),
                "-d",
                name,
                env=env,
            )
            assert await proc.wait() == 0

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in names))
    return time.perf_counter() - started


async def ours(names: list[str], root: Path, limit: int) -> tuple[float, int]:
    from infraops.backup.activities import BackupActivities
    from infraops.backup.models import Database, DumpRequest, RunRef
    from infraops.backup.naming import dump_file_name, run_id
    from infraops.backup.pgtools import choose
    from infraops.worker.clients import Clients

    clients = Clients()
    acts = BackupActivities(
        clients.backup_settings, clients.postgres, clients.nomad, clients.consul, None
    )
    rid = run_id(datetime.now(UTC), os.urandom(4).hex())
    await ActivityEnvironment().run(acts.prepare_run, RunRef(run_id=rid))
    tools = choose(15, "15")
    sem = asyncio.Semaphore(limit)
    total = 0

    async def one(name: str) -> None:
        nonlocal total
        async with sem:
            outcome = await ActivityEnvironment().run(
                acts.dump_database,
                DumpRequest(
                    run_id=rid,
                    database=Database(name=name, file_name=dump_file_name(name)),
                    bindir=str(tools.bindir),
                    tool_version=tools.version,
                    server_version="15",
                ),
            )
            assert outcome.artifact is not None, outcome
            total += outcome.artifact.size

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in names))
    elapsed = time.perf_counter() - started
    await clients.aclose()
    shutil.rmtree(root / rid)
    return elapsed, total


def main() -> int:
    from tests.lab.postgres import PostgresCluster

    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--databases", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    try:
        with PostgresCluster(root / "pg") as pg:
            mib_each = int(args.gib * 1024 / args.databases) + 1
            names = [f"bench_{i}" for i in range(args.databases)]
            print(f"loading {args.databases} x {mib_each} MiB ...", flush=True)
            t0 = time.perf_counter()
            make_data(pg, names, mib_each)
            make_data(pg, ["small"], 20)
            sizes = pg.psql(
                "SELECT sum(pg_database_size(datname)) FROM pg_database "
                "WHERE datname LIKE 'bench_%'"
            )
            print(
                f"loaded {int(sizes) / 2**30:.2f} GiB on disk in "
                f"{time.perf_counter() - t0:.0f} s",
                flush=True,
            )
            env = {**os.environ, **pg.env()}
            local = root / "local"
            local.mkdir()
            os.environ.update(
                {
                    "BACKUP_LOCAL_DIR": str(local),
                    "PG_HOST": pg.host,
                    "PG_PORT": str(pg.port),
                    "PG_USER": pg.user,
                    "PGPASSWORD": pg.password,
                }
            )
            plain_dir = root / "plain"
            plain_dir.mkdir()
            with PeakRSS() as small_mem:
                _, small_bytes = asyncio.run(ours(["small"], local, 1))
            timings: dict[str, list[float]] = {"plain": [], "ours": []}
            dump_bytes = 0
            big_mem = PeakRSS()
            for _ in range(2):
                timings["plain"].append(
                    asyncio.run(plain(env, names, plain_dir, args.concurrency))
                )
                with big_mem if not timings["ours"] else PeakRSS():
                    elapsed, dump_bytes = asyncio.run(
                        ours(names, local, args.concurrency)
                    )
                timings["ours"].append(elapsed)
            plain_size = sum(p.stat().st_size for p in plain_dir.iterdir())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    best_plain, best_ours = min(timings["plain"]), min(timings["ours"])
    ratio = best_ours / best_plain
    print(
        f"dumps: {dump_bytes / 2**20:.0f} MiB ours, {plain_size / 2**20:.0f} MiB plain"
    )
    print(
        f"plain pg_dump -Fc x{args.concurrency}: "
        + ", ".join(f"{t:.1f} s" for t in timings["plain"])
    )
    print(
        f"backup leg (dump + full read-back + sha256 + fsync) x{args.concurrency}: "
        + ", ".join(f"{t:.1f} s" for t in timings["ours"])
    )
    print(f"ratio (best of each): {ratio:.2f}x (goal <= {GOAL}x)")
    print(
        f"peak RSS: {small_mem.peak / 1024:.0f} MiB for a {small_bytes / 2**20:.1f} MiB dump, "
        f"{big_mem.peak / 1024:.0f} MiB for {dump_bytes / 2**20:.0f} MiB of dumps"
    )
    grew = big_mem.peak - small_mem.peak
    print(f"memory growth with dump size: {grew / 1024:+.0f} MiB")
    ok = ratio <= GOAL and grew < 64 * 1024
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
