"""The full local lab: every real part the four workflows talk to, and the workers.

    with FullLab(root) as lab:
        lab.start_workers()
        subprocess.run(["infraops", "run", "backup"], env=lab.cli_env())

Under `root`, all of it:

- a Temporal dev server, the Nomad simulator and loopback sshd nodes
  (`Fleet`: node-1..3 with the standard cleanup content, a draining node);
- the registry node `registry-1` in the same SSH lab, whose storage is a real
  `docker-registry` tree, and the `registry` job in the simulator whose
  allocation is a real `docker-registry serve` (`RegistryHost`, `RegistryJob`);
- PostgreSQL with a few databases to back up and the `trivy` results database;
- moto's S3 server, the Consul simulator (the Nomad snapshot endpoint is part
  of the Nomad simulator);
- the Trivy server stub and its stand-in CLI, with two application images
  whose reports carry findings;
- the three workers, `infraops worker --role backup|trivy|cleanup`, each with
  only the variables its role reads.

Each infraops process gets HOME and TMPDIR inside `root`, so nothing is
written outside it. `stop()` (leaving the `with`) stops everything, workers
first, and reaps every process it started.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Self

from infraops.config import Settings
from infraops.worker.roles import ROLES, Role
from tests.lab._proc import LabProcessError, free_port
from tests.lab.consul_sim import ConsulSim
from tests.lab.fleet import Fleet
from tests.lab.nomad_sim import GroupSpec, TaskSpec
from tests.lab.postgres import PostgresCluster
from tests.lab.registry import registry_available
from tests.lab.registry_job import RegistryHost, RegistryJob
from tests.lab.role_env import backup_env, settings_env, trivy_settings
from tests.lab.s3_quota import MotoS3
from tests.lab.trivy_server import TrivyServerStub
from tests.lab.workers import WorkerProcess, spawn_worker

NODES = ["node-1", "node-2", "node-3"]
CONSUL_TOKEN = "lab-consul-token-2b8e"
TRIVY_TOKEN = "lab-trivy-token-5d21"
SCANNER = "scanner"
SCANNER_PASSWORD = "lab-scanner-password-6a0f"
TRIVY_DB = "trivy"
S3_PREFIX = "demo"
REPORTS = Path(__file__).parents[1] / "fixtures" / "trivy"
# Images the simulator runs besides the fleet's nginx and the registry, with
# the Trivy report the stub answers for each: (job, namespace, image, report).
APPS = [
    ("api", "apps", "registry.lab:5000/team/app:1.4", "app-1.4-debian-java.json"),
    (
        "worker",
        "default",
        "registry.lab:5000/team/app:1.5",
        "app-1.5-debian-java-python.json",
    ),
]
# Variables of the caller that must not leak into a lab process.
FOREIGN_PREFIXES = (
    "NOMAD_",
    "SSH_",
    "TEMPORAL_",
    "OTEL_",
    "METRICS_",
    "CONSUL_",
    "PG",
    "S3_",
    "BACKUP_",
    "TRIVY_",
    "DB_",
    "INFRAOPS_",
    "WORKER_",
)


def seed_databases(pg: PostgresCluster) -> list[str]:
    """A few databases worth backing up, and the trivy role's own; their names."""
    pg.psql(f"CREATE ROLE {SCANNER} LOGIN PASSWORD '{SCANNER_PASSWORD}'")
    pg.psql(f"CREATE DATABASE {TRIVY_DB} OWNER {SCANNER}")
    pg.psql("CREATE DATABASE shop")
    pg.psql(
        "CREATE TABLE orders (id int PRIMARY KEY, item text, placed timestamptz); "
        "INSERT INTO orders SELECT g, 'item-' || g % 97, now() - g * interval '1m' "
        "FROM generate_series(1, 20000) g",
        dbname="shop",
    )
    pg.psql("CREATE DATABASE billing")
    pg.psql(
        "CREATE TABLE invoices (id int PRIMARY KEY, cents bigint); "
        "INSERT INTO invoices SELECT g, g * 137 FROM generate_series(1, 5000) g",
        dbname="billing",
    )
    pg.psql('CREATE DATABASE "Weird db"')
    pg.psql(
        "CREATE TABLE notes (note text); INSERT INTO notes VALUES ('a\nb'), (NULL)",
        dbname="Weird db",
    )
    return [TRIVY_DB, "shop", "billing", "Weird db"]


class FullLab:
    """Build with `FullLab(root)`, start with `with` (or `start()`)."""

    def __init__(self, root: Path) -> None:
        if not registry_available():
            raise LabProcessError(
                "docker-registry is not installed (tests/lab/install-system-deps.sh)"
            )
        self.root = root
        self.home = root / "home"
        self.tmp = root / "tmp"
        self.backups = root / "backups"
        self.fleet = Fleet(root)
        for name in NODES:
            self.fleet.add_client(name)
        self.fleet.add_client("node-draining", drain=True, standard=False)
        # The registry node joins the fleet's SSH lab: one key and port for
        # the cleanup worker, which runs both Cleanup and RegistryGC.
        self.registry_host = RegistryHost(root / "registry", ssh=self.fleet.ssh)
        self.registry_job: RegistryJob | None = None
        self.pg = PostgresCluster(root / "postgres")
        self.databases: list[str] = []
        self.s3 = MotoS3()
        self.consul = ConsulSim(token=CONSUL_TOKEN)
        self.trivy = TrivyServerStub(token=TRIVY_TOKEN)
        self.workers: dict[str, WorkerProcess] = {}
        self._stack = contextlib.ExitStack()

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> Self:
        for directory in (self.home, self.tmp, self.backups, self.root / "trivy"):
            directory.mkdir(parents=True, exist_ok=True)
        stack = self._stack
        try:
            stack.enter_context(self.pg)
            self.databases = seed_databases(self.pg)
            stack.enter_context(self.s3)
            stack.enter_context(self.consul)
            stack.enter_context(self.trivy)
            stack.enter_context(self.fleet)
            stack.callback(self.registry_host.stop)
            self.registry_host.start()
            self.registry_job = RegistryJob(self.registry_host, self.fleet.nomad)
            self._run_apps()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Workers first (they talk to everything else), then the parts."""
        for worker in self.workers.values():
            with contextlib.suppress(Exception):
                worker.stop()
        self._stack.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run_apps(self) -> None:
        nomad = self.fleet.nomad
        nodes = [client.node_id for client in self.fleet.clients.values()]
        for job, namespace, image, report in APPS:
            task = TaskSpec(job, config={"image": image})
            nomad.add_job(
                job, namespace=namespace, groups=[GroupSpec(job, count=2, tasks=[task])]
            )
            for node_id in nodes[:2]:
                nomad.add_alloc(job, job, node_id, namespace=namespace)
            self.trivy.plan(image, "ok", report=REPORTS / report)

    # -- environments ------------------------------------------------------------

    def cli_env(self, **extra: str) -> dict[str, str]:
        """What an infraops process needs to reach Temporal, confined to root."""
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)
        }
        return base | {
            "TEMPORAL_ADDRESS": self.fleet.temporal.address,
            "TEMPORAL_NAMESPACE": "default",
            "OTEL_TRACES_EXPORTER": "none",
            "METRICS_LISTEN": f"127.0.0.1:{free_port()}",
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            **extra,
        }

    def settings(self) -> dict[str, str]:
        """Every role variable, pointing at this lab."""
        fleet = {
            k: v
            for k, v in self.fleet.env().items()
            if k.startswith(("NOMAD_", "SSH_"))
        }
        backup = backup_env(
            local=self.backups,
            pg=self.pg,
            nomad_url=self.fleet.nomad.url,
            nomad_token=fleet["NOMAD_TOKEN"],
            consul_url=self.consul.url,
            consul_token=CONSUL_TOKEN,
            s3_url=self.s3.url,
            bucket=self.s3.bucket,
            prefix=S3_PREFIX,
        )
        trivy = trivy_settings(
            self.pg,
            TRIVY_DB,
            self.trivy,
            self.root / "trivy",
            user=SCANNER,
            password=SCANNER_PASSWORD,
            token=TRIVY_TOKEN,
        )
        return fleet | backup | settings_env(trivy)

    def worker_env(self, role: Role) -> dict[str, str]:
        """The CLI's environment plus the variables `role` reads, and no others."""
        wanted = {
            name
            for model in role.settings
            if issubclass(model, Settings)
            for name in model.env_names()
        }
        own = {k: v for k, v in self.settings().items() if k in wanted}
        return self.cli_env(WORKER_SHUTDOWN_GRACE="5") | own

    # -- workers -----------------------------------------------------------------

    def start_workers(self, roles: list[str] | None = None) -> None:
        """Start the workers (all roles by default) together; wait until they poll."""
        for name in roles or sorted(ROLES):
            role = ROLES[name]
            self.workers[name] = spawn_worker(
                name,
                role.task_queue,
                self.worker_env(role),
                self.root / f"worker-{name}.log",
            )
        for worker in self.workers.values():
            worker.wait_polling()

    # -- what the demo checks ------------------------------------------------------

    def stale_left(self) -> list[str]:
        """`node:entry` of every standard candidate still on its node."""
        return [
            f"{client.name}:{entry}"
            for client in self.fleet.clients.values()
            for entry, verdict in client.expected.items()
            if verdict == "candidate" and client.ssh.path(entry).exists()
        ]

    def scans_stored(self) -> int:
        rows = self.pg.psql("SELECT count(*) FROM scans", dbname=TRIVY_DB)
        return int(rows.strip())

    def backup_runs(self) -> list[Path]:
        return sorted(
            p for p in self.backups.iterdir() if (p / "manifest.json").exists()
        )

    def s3_keys(self) -> list[str]:
        return self.s3.object_keys()
