"""A throwaway PostgreSQL cluster from Debian's server binaries.

`initdb` refuses to run as root, so as root the cluster is created and run as
the `postgres` user in a directory it owns. The superuser has a password and
TCP logins use scram-sha-256, so password handling is exercised for real.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Self

from tests.lab._proc import LabProcessError, free_port, log_tail

SUPERUSER_PASSWORD = "lab-pg-superuser-9d2e"


def server_bindir(major: int | None = None) -> Path:
    """The newest (or the given) major version's server binaries."""
    pattern = f"/usr/lib/postgresql/{major or '*'}/bin/initdb"
    found = sorted(glob.glob(pattern), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise LabProcessError(
            "no PostgreSQL server binaries under /usr/lib/postgresql; "
            "install the postgresql package (tests/lab/install-system-deps.sh)"
        )
    return Path(found[-1]).parent


class PostgresCluster:
    """`with PostgresCluster(root) as pg:` gives a running server on loopback."""

    def __init__(self, root: Path, *, major: int | None = None) -> None:
        self.root = root
        self.bindir = server_bindir(major)
        self.major = int(self.bindir.parts[-2])
        self.data = root / "pgdata"
        self.socket_dir = root / "sock"
        self.log = root / "postgres.log"
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = "postgres"
        self.password = SUPERUSER_PASSWORD
        self._as_postgres = os.geteuid() == 0

    def start(self) -> Self:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._as_postgres:
            _let_postgres_through(self.root)
            entry = pwd.getpwnam("postgres")
            for path in (self.root, self.socket_dir, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.user,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        )
        pwfile.unlink()
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses={self.host} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            ]
        )
        return self

    def stop(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        self._run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            check=False,
        )

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def dsn(
        self,
        dbname: str = "postgres",
        user: str | None = None,
        password: str | None = None,
    ) -> str:
        """A libpq connection string over TCP (the password included)."""
        return (
            f"host={self.host} port={self.port} dbname={dbname} "
            f"user={user or self.user} password={password or self.password}"
        )

    def env(self) -> dict[str, str]:
        """libpq variables for the superuser, as a tool would be given them."""
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
        }

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL as the superuser over the local socket; return stdout."""
        done = subprocess.run(
            [
                shutil.which("psql") or str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                dbname,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise LabProcessError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def _run(self, argv: list[str], *, check: bool = True) -> None:
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise LabProcessError(
                f"{Path(argv[-1]).name} failed ({done.returncode}): "
                f"{done.stderr.strip()}\n{log_tail(self.log)}"
            )


def _let_postgres_through(path: Path) -> None:
    """Temporary directories are 0700; postgres needs to traverse them."""
    temp = Path(tempfile.gettempdir()).resolve()
    for parent in path.resolve().parents:
        if parent == temp or not parent.is_relative_to(temp):
            break
        mode = parent.stat().st_mode
        os.chmod(parent, mode | 0o111)
