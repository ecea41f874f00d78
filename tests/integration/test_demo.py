"""The demo (`nox -s demo`) end to end: every workflow once, nothing left behind.

Deselect with `-m 'not demo'` (it takes about a minute).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab._proc import pid_alive
from tests.lab.full_lab import FOREIGN_PREFIXES

pytestmark = [pytest.mark.lab, pytest.mark.demo]

REPO = Path(__file__).parents[2]
TIMEOUT = 170.0
RESULTS = {
    "Backup": r"Backup \S+: good",
    "Scan": r"Findings by severity[\s\S]*4 images found, 4 scanned, 0 skipped, 0 "
    r"failed",
    "Cleanup dry run": r"12 stale directories \(480\.0 KiB\), 0 removed",
    "Cleanup live": r"12 stale directories \(480\.0 KiB\), 12 removed",
    "RegistryGC": r"Registry GC of registry on registry-1 \(live run\)"
    r"[\s\S]*integrity\s+\S\s+ok:",
    "schedules": r"4 created, 0 updated, 0 deleted",
}


@pytest.fixture
def sandbox() -> Iterator[Path]:
    """HOME and TMPDIR for the demo, under /tmp (postgres must get through)."""
    base = Path(tempfile.mkdtemp(prefix="infraops-demo-test-"))
    try:
        base.chmod(0o755)
        for name in ("home", "tmp"):
            (base / name).mkdir(mode=0o755)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _mentions(pid: int, text: bytes) -> bool:
    """Whether a process's command line, environment or cwd names `text`."""
    try:
        proc = Path(f"/proc/{pid}")
        if any(text in (proc / part).read_bytes() for part in ("cmdline", "environ")):
            return True
        return text in os.readlink(proc / "cwd").encode()
    except OSError:
        return False


def _left_running(base: Path) -> list[str]:
    mine = os.getpid()
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == mine:
            continue
        pid = int(entry.name)
        if pid_alive(pid) and _mentions(pid, str(base).encode()):
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            left.append(f"{pid}: {command.decode(errors='replace')[:200]}")
    return left


def test_demo_runs_every_workflow_and_leaves_nothing_behind(sandbox: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)
    } | {
        "HOME": str(sandbox / "home"),
        "TMPDIR": str(sandbox / "tmp"),
    }
    demo = subprocess.Popen(
        [sys.executable, "-m", "tests.lab.demo"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = demo.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        demo.send_signal(signal.SIGTERM)  # the demo stops its lab on SIGTERM
        output, _ = demo.communicate(timeout=60)
        pytest.fail(f"the demo took over {TIMEOUT:.0f}s:\n{output[-5000:]}")

    assert demo.returncode == 0, output[-5000:]
    for workflow, pattern in RESULTS.items():
        assert re.search(pattern, output), f"no {workflow} result:\n{output[-5000:]}"
    for stage in ("workers", "schedules", "Backup", "Scan", "Cleanup", "RegistryGC"):
        assert re.search(rf"^{stage} +ok$", output, re.MULTILINE), output[-2000:]
    lab = re.search(r"^lab directory (\S+)$", output, re.MULTILINE)
    assert lab is not None and Path(lab[1]).parent == sandbox / "tmp"
    workers = [int(pid) for pid in re.findall(r"^worker .* pid (\d+),", output, re.M)]
    assert len(workers) == 3

    assert not [pid for pid in workers if pid_alive(pid)]
    assert not _left_running(sandbox)
    assert not Path(lab[1]).exists()
    assert not list((sandbox / "tmp").iterdir())  # nothing else in TMPDIR
    assert not list((sandbox / "home").iterdir())  # nor in HOME
