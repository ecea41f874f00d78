"""The demo: the full local lab, the three workers, and every workflow once.

Run with `python -m nox -s demo` (or `python -m tests.lab.demo`). It boots the
lab (tests/lab/full_lab.py), starts `infraops worker` for the backup, trivy
and cleanup roles, syncs the schedules in schedules/, then runs Backup, Scan,
Cleanup (dry, then live) and RegistryGC with `infraops run`, printing each
result. Everything it starts lives under one temporary directory and is
stopped before it exits; the exit code is 0 only if every stage went as
expected.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from tests.lab.fleet import EXCLUDE
from tests.lab.full_lab import FullLab

REPO = Path(__file__).parents[2]
SCHEDULES = REPO / "schedules"
CLI_TIMEOUT = 180.0
COLUMNS = "110"

Stage = Callable[[FullLab], bool]


def banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def check(ok: bool, text: str) -> bool:
    print(f"{'ok' if ok else 'FAILED'}: {text}", flush=True)
    return ok


def infraops(lab: FullLab, *args: str, document: object = None) -> int:
    """`infraops ARGS` as an operator would type it; output goes straight through."""
    print("$ infraops " + " ".join(shlex.quote(arg) for arg in args), flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "infraops", *args],
        env=lab.cli_env(COLUMNS=COLUMNS),
        cwd=REPO,
        input=None if document is None else json.dumps(document),
        stdin=subprocess.DEVNULL if document is None else None,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    print(f"(exit code {done.returncode})", flush=True)
    return done.returncode


# -- stages ---------------------------------------------------------------------


def boot(lab: FullLab) -> None:
    banner("Booting the lab")
    # moto's server announces itself on stdout and logs every request.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with contextlib.redirect_stdout(io.StringIO()):
        lab.start()
    fleet = lab.fleet
    print(f"lab directory {lab.root}")
    print(f"Temporal      {fleet.temporal.address} (dev server)")
    print(f"Nomad         {fleet.nomad.url} (simulator, with the snapshot endpoint)")
    print(f"Consul        {lab.consul.url} (simulator)")
    print(f"PostgreSQL    {lab.pg.host}:{lab.pg.port} (databases: ", end="")
    print(", ".join(repr(name) for name in lab.databases) + ")")
    print(f"S3            {lab.s3.url} (moto, bucket {lab.s3.bucket})")
    print(f"Trivy server  {lab.trivy.url} (stub; the CLI is a stand-in)")
    host = lab.registry_host
    print(f"registry      {host.registry.url} (docker-registry serve, job 'registry')")
    for client in fleet.clients.values():
        print(f"node          {client.name} at {client.ssh.address}:{fleet.ssh.port}")
    print(f"node          {host.node.name} at {host.node.address}:{fleet.ssh.port}")
    print(f"data dir      {fleet.data_dir} (each node has its own tree there)")


def start_workers(lab: FullLab) -> bool:
    banner("Starting the workers: infraops worker --role backup|cleanup|trivy")
    started = time.monotonic()
    lab.start_workers()
    for worker in lab.workers.values():
        print(f"worker        {worker.role:8} pid {worker.pid}, polling {worker.queue}")
    print(f"(all polling after {time.monotonic() - started:.1f}s)", flush=True)
    return True


def sync_schedules(lab: FullLab) -> bool:
    banner("Syncing the schedules (daily and weekly: none fires during the demo)")
    synced = infraops(lab, "schedules", "sync", "--apply", "--dir", str(SCHEDULES))
    listed = infraops(lab, "schedules", "list")
    return check((synced, listed) == (0, 0), "schedules created and listed")


def backup(lab: FullLab) -> bool:
    banner("Backup: Nomad and Consul snapshots, every database; locally and to S3")
    code = infraops(lab, "run", "backup")
    runs = lab.backup_runs()
    uploaded = [key for key in lab.s3_keys() if key.endswith("/manifest.json")]
    return check(
        code == 0 and len(runs) == 1 and len(uploaded) == 1,
        f"{len(runs)} verified run in {lab.backups}, {len(uploaded)} manifest in S3",
    )


def scan(lab: FullLab) -> bool:
    banner("Scan: every running image through Trivy, findings into PostgreSQL")
    code = infraops(lab, "run", "scan")
    stored = lab.scans_stored()
    return check(code == 0 and stored > 0, f"{stored} scans stored")


def cleanup(lab: FullLab) -> bool:
    document = {"data_dir": lab.fleet.data_dir, "exclude": EXCLUDE}
    banner("Cleanup, dry run: what would be removed, and why the rest stays")
    dry = infraops(lab, "run", "cleanup", "--input", "-", document=document)
    before = lab.stale_left()
    banner("Cleanup, live: remove the stale directories")
    live = infraops(
        lab, "run", "cleanup", "--no-dry-run", "--input", "-", document=document
    )
    after = lab.stale_left()
    return check(
        (dry, live) == (0, 0) and bool(before) and not after,
        f"{len(before)} stale directories kept by the dry run, "
        f"{len(before) - len(after)} removed by the live one",
    )


def registry_gc(lab: FullLab) -> bool:
    banner("RegistryGC: stop the registry, collect, bring it back, check it")
    # Live, with the weekly schedule's delete_untagged: the lab's registry is
    # distribution 2.8, so the run refuses that flag and says why.
    host = lab.registry_host
    before = len(host.registry.stored_blob_digests())
    code = infraops(
        lab,
        "run",
        "registry-gc",
        "--no-dry-run",
        "--input",
        "-",
        document=host.gc_config_fields(),
    )
    after = len(host.registry.stored_blob_digests())
    assert lab.registry_job is not None
    back = lab.registry_job.wait_restored()
    return check(
        code == 0 and after < before and back,
        f"blobs {before} -> {after}; registry serving again: {back}",
    )


def shut_down(lab: FullLab) -> None:
    banner("Shutting down")
    started = time.monotonic()
    lab.stop()
    print(f"workers and lab stopped in {time.monotonic() - started:.1f}s")


# -- main -----------------------------------------------------------------------

STAGES: list[tuple[str, Stage]] = [
    ("workers", start_workers),
    ("schedules", sync_schedules),
    ("Backup", backup),
    ("Scan", scan),
    ("Cleanup", cleanup),
    ("RegistryGC", registry_gc),
]


def _terminated(signum: int, frame: FrameType | None) -> None:
    """SIGTERM as a clean exit: the `finally` blocks stop the lab."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, _terminated)
    started = time.monotonic()
    results: dict[str, bool] = {}
    with tempfile.TemporaryDirectory(prefix="infraops-demo-") as tmp:
        lab = FullLab(Path(tmp))
        try:
            boot(lab)
            print(f"(lab up after {time.monotonic() - started:.1f}s)", flush=True)
            for name, stage in STAGES:
                results[name] = stage(lab)
        finally:
            shut_down(lab)
    print(f"temporary directory {tmp} removed")
    banner(f"Summary ({time.monotonic() - started:.0f}s)")
    for name, _ in STAGES:
        state = "not run" if name not in results else "ok"
        if not results.get(name, True):
            state = "FAILED"
        print(f"{name:12} {state}")
    return 0 if len(results) == len(STAGES) and all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
