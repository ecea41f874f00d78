"""The whole local lab in one object: Temporal, Nomad simulator, sshd nodes.

Used by the end-to-end tests and by the demo. Each node can be given the
standard content: one entry for every reason the cleanup classifier knows, so
a run over the fleet exercises all of them on real filesystems.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from tests.lab._proc import free_port
from tests.lab.nomad_sim import GroupSpec, NomadSim, TaskSpec
from tests.lab.ssh_nodes import HostCertMode, SSHLab, SSHNode, fake_image_id
from tests.lab.temporal import TemporalDevServer

NOMAD_TOKEN = "lab-nomad-token-4f1c"
OLD = 30.0  # days: well past the default grace period

# Entry name -> the reason the classifier must give, for standard content.
STANDARD_VERDICTS = {
    "alloc": "system",
    "client": "system",
    "plugins": "system",
    "tmp": "system",
    "keep-me": "excluded",
    "link-to-etc": "symlink",
    "stray.log": "not-directory",
    "mounted-job": "mount-point",
    "holder": "contains-mount",
    "nfs-job": "network-filesystem",
    "web": "in-use",
    "batch-pending": "in-use",
    "pgdata": "in-use",
    "recent-job": "recent",
    "old-batch-job": "candidate",
    "finished-job": "candidate",
    "job with space": "candidate",
    "new\nline-job": "candidate",
}
EXCLUDE = ["keep-me"]


@dataclass
class Client:
    """A node as both sshd and Nomad know it."""

    ssh: SSHNode
    node_id: str
    expected: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.ssh.name


class Fleet:
    """Start with `with Fleet(root) as fleet:` after adding clients."""

    def __init__(self, root: Path, temporal: TemporalDevServer | None = None) -> None:
        self.root = root
        self._own_temporal = temporal is None
        self.temporal = temporal or TemporalDevServer(root / "temporal")
        self.ssh = SSHLab(root / "ssh")
        self.nomad = NomadSim(token=NOMAD_TOKEN)
        self.clients: dict[str, Client] = {}
        self.metrics_port = free_port()
        self._jobs: set[str] = set()

    @property
    def data_dir(self) -> str:
        return str(self.ssh.data_dir)

    def add_client(
        self,
        name: str,
        *,
        host_cert: HostCertMode = "valid",
        status: str = "ready",
        drain: bool = False,
        standard: bool = True,
    ) -> Client:
        node = self.ssh.add_node(name, host_cert=host_cert)
        volumes = {"pgdata": f"{self.data_dir}/pgdata"} if standard else None
        node_id = self.nomad.add_node(
            name, node.address, status=status, drain=drain, host_volumes=volumes
        )
        client = Client(node, node_id)
        if standard:
            self._populate(client)
        self.clients[name] = client

        return client

    def start(self) -> Self:
        if self._own_temporal:
            self.temporal.start()
        self.nomad.start()
        self.ssh.start_all()
        return self

    def stop(self) -> None:
        stops = [self.ssh.stop_all, self.nomad.stop]
        if self._own_temporal:
            stops.append(self.temporal.stop)
        for stop in stops:
            with contextlib.suppress(Exception):
                stop()

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self, **extra: str) -> dict[str, str]:
        """The environment an infraops process needs to use this lab."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("NOMAD_", "SSH_", "TEMPORAL_", "OTEL_"))
        }
        env |= {
            "TEMPORAL_ADDRESS": self.temporal.address,
            "TEMPORAL_NAMESPACE": "default",
            "NOMAD_ADDR": self.nomad.url,
            "NOMAD_TOKEN": NOMAD_TOKEN,
            "METRICS_LISTEN": f"127.0.0.1:{self.metrics_port}",
            "OTEL_TRACES_EXPORTER": "none",
            "WORKER_SHUTDOWN_GRACE": "5",
            **self.ssh.env(),
        }
        return env | extra

    def ensure_job(self, job_id: str, image: str = "nginx:1.25") -> None:
        if job_id not in self._jobs:
            task = TaskSpec(job_id, config={"image": image})
            self.nomad.add_job(
                job_id, groups=[GroupSpec(job_id, count=1, tasks=[task])]
            )
            self._jobs.add(job_id)

    def _populate(self, client: Client) -> None:
        node = client.ssh
        for system in ("alloc", "client", "plugins", "tmp"):
            node.make_dir(system, files={"state": 1024}, mtime_days_ago=OLD)
        node.make_dir("keep-me", files={"notes": 100}, mtime_days_ago=OLD)
        node.make_symlink("link-to-etc", "/etc", days_ago=OLD)
        node.make_file("stray.log", 2048, days_ago=OLD)
        _fill(node.add_bind_mount("mounted-job"))
        node.make_dir("holder", files={"top": 10}, mtime_days_ago=OLD)
        _fill(node.add_nested_mount("holder", "inner"))
        _fill(node.add_network_mount("nfs-job"))
        for job in ("web", "batch-pending", "pgdata", "old-batch-job", "finished-job"):
            node.make_dir(job, files={"data/blob.bin": 64 * 1024}, mtime_days_ago=OLD)
        node.make_dir("recent-job", files={"a/b.log": 4096}, mtime_days_ago=OLD)
        node.touch_newest("recent-job/a/b.log", days_ago=1)
        node.make_dir("job with space", files={"x": 3000}, mtime_days_ago=OLD)
        node.make_dir("new\nline-job", files={"y": 3000}, mtime_days_ago=OLD)
        # What Nomad says runs there: web runs, batch-pending is starting,
        # finished-job ran once and is complete.
        for job in ("web", "batch-pending", "finished-job"):
            self.ensure_job(job)
        self.nomad.add_alloc("web", "web", client.node_id)
        self.nomad.add_alloc(
            "batch-pending", "batch-pending", client.node_id, client_status="pending"
        )
        self.nomad.add_alloc(
            "finished-job",
            "finished-job",
            client.node_id,
            client_status="complete",
            desired_status="stop",
        )
        node.set_dangling_images(
            [
                (fake_image_id(f"{node.name}-a"), 1_500_000),
                (fake_image_id(f"{node.name}-b"), 250_000),
            ]
        )
        client.expected = dict(STANDARD_VERDICTS)


def _fill(source: Path) -> None:
    source.mkdir(parents=True, exist_ok=True)
    (source / "content.bin").write_bytes(b"m" * 4096)
    old = 1_000_000_000.0
    os.utime(source / "content.bin", (old, old))
    os.utime(source, (old, old))
