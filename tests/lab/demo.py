"""The demo: the local lab, a real worker, and `infraops run cleanup` dry then live.

Run with `python -m nox -s demo` (or `python -m tests.lab.demo`). Everything it
starts lives under one temporary directory and is stopped before it exits.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.lab.fleet import EXCLUDE, Fleet

NODES = ["node-1", "node-2", "node-3"]


def banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def infraops(env: dict[str, str], *args: str, document: dict[str, object]) -> int:
    command = ["infraops", *args]
    print("$ " + " ".join(command), flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "infraops", *args],
        env=env,
        input=json.dumps(document),
        text=True,
        check=False,
    )
    print(f"(exit code {done.returncode})", flush=True)
    return done.returncode


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-m", "infraops", "worker", "--role", "cleanup"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while "polling cleanup-task-queue" not in log.read_text(errors="replace"):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)
    return worker


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="infraops-demo-") as tmp:
        root = Path(tmp)
        fleet = Fleet(root)
        for name in NODES:
            fleet.add_client(name)
        fleet.add_client("node-draining", drain=True, standard=False)
        banner("Booting the lab: Temporal dev server, Nomad simulator, sshd nodes")
        with fleet:
            print(f"Temporal  {fleet.temporal.address}")
            print(f"Nomad     {fleet.nomad.url} (simulator)")
            for client in fleet.clients.values():
                print(
                    f"node      {client.name} at {client.ssh.address}:{fleet.ssh.port}"
                )
            print(f"data dir  {fleet.data_dir} (each node has its own tree there)")
            env = fleet.env(COLUMNS="110")
            worker = start_worker(env, root / "worker.log")
            try:
                document = {"data_dir": fleet.data_dir, "exclude": EXCLUDE}
                banner("Dry run: what would be removed, and why the rest stays")
                dry = infraops(env, "run", "cleanup", "--input", "-", document=document)
                banner("Live run: remove the stale directories")
                live = infraops(
                    env,
                    "run",
                    "cleanup",
                    "--no-dry-run",
                    "--input",
                    "-",
                    document=document,
                )
            finally:
                banner("Shutting down")
                stop_worker(worker)
        print("worker stopped; lab stopped; temporary files removed")
    return 0 if (dry, live) == (0, 0) else 1


if __name__ == "__main__":
    sys.exit(main())
