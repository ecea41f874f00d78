"""The registry as a Nomad job whose allocation is a real `docker-registry serve`.

`RegistryHost` is an sshd lab node ("registry-1") whose `data_dir/registry` is a
bind mount (as the real gdrive mount is) holding a `RegistryLab`'s files: the
serve config, the storage, and a GC config whose `rootdirectory` is the path the
node sees, `<data_dir>/registry/storage`. The storage is filled once with the
standard scenario and snapshotted; `reset()` puts the snapshot back.

`RegistryJob` registers the job in a `NomadSim` and ties the simulated
allocation to the real process: an allocation of the job only becomes `running`
after `docker-registry serve` answers, and only becomes `complete` after the
process has exited. So scaling the job to 0 really stops the registry, scaling
it to 1 really starts it, and whatever talks to the registry afterwards talks
to a restarted process on the collected storage.

The GC, version and stop commands for `RegistryGCConfig` (`gc_config_fields`)
run the real binary over the real SSH path; a pid file lets the stop command
stop a GC that outlived its SSH session. Faults for the node-side steps go
through small files: `slow_gc(seconds)`, `du_fault(...)`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from tests.lab.nomad_sim import GroupSpec, NomadSim, ScalingSpec, TaskSpec
from tests.lab.nomad_sim.model import CLIENT_PENDING, CLIENT_TERMINAL, DESIRED_RUN
from tests.lab.registry import (
    REGISTRY_BINARY,
    RegistryLab,
    StandardScenario,
    populate_standard,
)
from tests.lab.ssh_nodes import SSHLab, SSHNode

JOB = "registry"
NODE = "registry-1"

_GC_SCRIPT = (
    'echo $$ > "$0"; '
    'if [ -f "$1" ]; then sleep "$(cat "$1")"; fi; '
    "shift; "
    f'exec {REGISTRY_BINARY} garbage-collect "$@"'
)
# Stop the GC whose pid is in the file. (The node has its own PID namespace
# but the host's /proc, so the pid cannot be checked there; `kill` is right.)
_STOP_SCRIPT = (
    'pid=$(cat "$0" 2>/dev/null) || exit 0; '
    'kill "$pid" 2>/dev/null; i=0; '
    'while kill -0 "$pid" 2>/dev/null; do '
    '  i=$((i+1)); if [ $i -gt 100 ]; then kill -9 "$pid" 2>/dev/null; fi; '
    "  sleep 0.05; "
    "done; "
    'rm -f "$0"'
)
_DU_WRAPPER = """#!/bin/sh
if [ -f {state}/du-fail ]; then echo "du: injected failure" >&2; exit 1; fi
if [ -f {state}/du-sleep ]; then sleep "$(cat {state}/du-sleep)"; fi
exec /usr/bin/du "$@"
"""


class RegistryHost:
    """The registry node and its real storage; start once per module."""

    def __init__(self, root: Path, ssh: SSHLab | None = None) -> None:
        self.root = root
        # A lab of its own, or a node in a shared one (whose owner starts and
        # stops the other nodes).
        self._own_ssh = ssh is None
        self.ssh = ssh or SSHLab(root / "ssh")
        self.node: SSHNode = self.ssh.add_node(NODE)
        self.mount_source = self.node.add_bind_mount("registry")
        self.registry = RegistryLab(self.mount_source)
        self.node_dir = f"{self.ssh.data_dir}/registry"
        self.data_dir = f"{self.node_dir}/storage"  # what the node sees
        self.gc_config = self.mount_source / "gc-config.yml"
        self.gc_config.write_text(
            self.registry.config_path.read_text().replace(
                str(self.registry.storage_root), self.data_dir
            )
        )
        self.state = self.node.dir / "faults"
        self.state.mkdir()
        self.pid_file = self.state / "gc.pid"
        self.sleep_file = self.state / "gc-sleep"
        du = self.node.bin_dir / "du"
        du.write_text(_DU_WRAPPER.format(state=self.state))
        du.chmod(0o755)
        self.pristine = root / "pristine"
        self.scenario: StandardScenario | None = None

    def start(self) -> RegistryHost:
        self.ssh.start_all()
        self.registry.start()
        self.scenario = populate_standard(self.registry)
        self.registry.stop()
        shutil.copytree(self.registry.storage_root, self.pristine, symlinks=True)
        return self

    def stop(self) -> None:
        self.registry.stop()
        if self._own_ssh:
            self.ssh.stop_all()

    def reset(self) -> None:
        """Storage back to the populated snapshot, faults cleared, registry stopped."""
        self.registry.stop()
        shutil.rmtree(self.registry.storage_root)
        shutil.copytree(self.pristine, self.registry.storage_root, symlinks=True)
        for name in ("gc.pid", "gc-sleep", "du-fail", "du-sleep"):
            with contextlib.suppress(FileNotFoundError):
                (self.state / name).unlink()

    # -- faults on the node ------------------------------------------------------

    def slow_gc(self, seconds: float) -> None:
        self.sleep_file.write_text(f"{seconds}\n")

    def du_fault(self, *, fail: bool = False, sleep: float | None = None) -> None:
        if fail:
            (self.state / "du-fail").touch()
        if sleep is not None:
            (self.state / "du-sleep").write_text(f"{sleep}\n")

    def clear_du_faults(self) -> None:
        for name in ("du-fail", "du-sleep"):
            with contextlib.suppress(FileNotFoundError):
                (self.state / name).unlink()

    def gc_running(self) -> bool:
        """Whether any garbage-collect (or its sleeping wrapper) runs on the node."""
        sshd = self.node.sshd_pid
        if sshd is None:
            return False
        namespace = os.readlink(f"/proc/{sshd}/ns/pid")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.readlink(entry / "ns/pid") != namespace:
                    continue
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"garbage-collect" in cmdline and b"cmdline" not in cmdline:
                return True
        return False

    # -- config for the workflow ------------------------------------------------

    def gc_config_fields(self, **overrides: Any) -> dict[str, Any]:
        """RegistryGCConfig fields pointing at this host's real binary and storage."""
        fields: dict[str, Any] = {
            "job_name": JOB,
            "registry_data_dir": self.data_dir,
            "registry_url": self.registry.url,
            "gc_command": [
                "sh",
                "-c",
                _GC_SCRIPT,
                str(self.pid_file),
                str(self.sleep_file),
                "{flags}",
                str(self.gc_config),
            ],
            "version_command": [REGISTRY_BINARY, "--version"],
            "gc_stop_command": ["sh", "-c", _STOP_SCRIPT, str(self.pid_file)],
            "poll_interval": 0.2,
            "heartbeat_timeout": 2,
            "step_timeout": 5,
            "drain_timeout": 10,
            "gc_timeout": 20,
            "restore_timeout": 15,
            "integrity_timeout": 20,
        }
        return fields | overrides


class RegistryJob:
    """The registry job in a NomadSim, its allocations backed by the real process."""

    def __init__(
        self,
        host: RegistryHost,
        sim: NomadSim,
        *,
        update: bool = False,
        count: int = 1,
    ) -> None:
        self.host = host
        self.sim = sim
        self.node_id = sim.add_node(NODE, host.node.address)
        task = TaskSpec(JOB, config={"image": "registry:3"})
        sim.add_job(
            JOB,
            groups=[
                GroupSpec(
                    JOB,
                    count=count,
                    tasks=[task],
                    update=update,
                    scaling=ScalingSpec(min=0, max=3),
                )
            ],
        )
        self.start_failures = 0  # the next N starts fail (allocation failed)
        self.starts = 0
        self.stops = 0
        self._hook()
        if count:
            host.registry.start()
            sim.add_alloc(JOB, JOB, self.node_id)

    def _hook(self) -> None:
        cluster = self.sim.cluster
        start, finish = cluster._start, cluster._finish
        lock = threading.Lock()

        def _start(alloc_id: str) -> None:
            alloc = cluster.allocs.get(alloc_id)
            mine = alloc is not None and alloc.job_id == JOB
            if (
                mine
                and alloc is not None
                and alloc.client_status == CLIENT_PENDING
                and alloc.desired_status == DESIRED_RUN
            ):
                with lock:
                    if self.start_failures:
                        self.start_failures -= 1
                        alloc.client_description = "injected start failure"
                        cluster.set_alloc_status(alloc_id, "failed", None)
                        return
                    self.host.registry.start()
                    self.starts += 1
            start(alloc_id)

        def _finish(alloc_id: str) -> None:
            alloc = cluster.allocs.get(alloc_id)
            if (
                alloc is not None
                and alloc.job_id == JOB
                and alloc.client_status not in CLIENT_TERMINAL
            ):
                others = [
                    a
                    for a in cluster.allocs.values()
                    if a.job_id == JOB
                    and a.id != alloc_id
                    and a.client_status == "running"
                ]
                if not others:
                    with lock:
                        self.host.registry.stop()
                        self.stops += 1
            finish(alloc_id)

        cluster._start = _start  # type: ignore[method-assign]
        cluster._finish = _finish  # type: ignore[method-assign]

    # -- inspecting --------------------------------------------------------------

    def count(self) -> int:
        group = self.sim.job(JOB)["TaskGroups"][0]
        return int(group["Count"])

    def running_allocs(self) -> list[str]:
        return self.sim.alloc_ids(JOB, client_status="running", desired_status="run")

    def wait_restored(self, timeout: float = 10.0) -> bool:
        """Count 1, one running allocation and a serving registry."""

        def ok() -> bool:
            job = self.sim.cluster.find_job(JOB, None)
            live = [
                a
                for a in self.sim.cluster.job_allocs(job)
                if a.client_status == "running" and a.desired_status == DESIRED_RUN
            ]
            return job.groups[0].count == 1 and len(live) == 1

        return self.sim.wait_until(ok, timeout=timeout) and self.host.registry.running
