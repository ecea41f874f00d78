"""Choosing pg_dump, pg_dumpall and pg_restore of the right major version.

pg_dump refuses servers newer than itself, and pg_restore cannot read an
archive written by a newer pg_dump, so the three come from one directory
whose major version is at least the server's (the same major preferred).
"""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from infraops.errors import PermanentError

_VERSION = re.compile(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?")
TOOLS = ("pg_dump", "pg_dumpall", "pg_restore")


@dataclass(frozen=True)
class Toolset:
    bindir: Path
    version: str
    major: int

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def candidates(extra: str = "") -> list[Path]:
    """Directories that may hold the tools: PG_BINDIRS, Debian's, PATH's."""
    found = [Path(part) for part in extra.split(":") if part]
    found += [
        Path(p).parent for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"))
    ]
    on_path = shutil.which("pg_dump")
    if on_path:
        found.append(Path(on_path).resolve().parent)
    return list(dict.fromkeys(found))


def probe(bindir: Path) -> Toolset | None:
    """The toolset in `bindir`, or None when one of the tools is missing."""
    if not all((bindir / tool).is_file() for tool in TOOLS):
        return None
    try:
        done = subprocess.run(
            [str(bindir / "pg_dump"), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(done.stdout)
    if done.returncode != 0 or match is None:
        return None
    version = f"{match.group(1)}.{match.group(2) or 0}"
    return Toolset(bindir=bindir, version=version, major=int(match.group(1)))


def choose(server_major: int, server_version: str, extra: str = "") -> Toolset:
    """The toolset for a server: its own major if installed, else the
    oldest newer one; a PermanentError naming what to install otherwise."""
    toolsets = [t for t in (probe(d) for d in candidates(extra)) if t is not None]
    usable = sorted(
        (t for t in toolsets if t.major >= server_major),
        key=lambda t: (t.major != server_major, t.major),
    )
    if usable:
        return usable[0]
    have = ", ".join(f"{t.version} in {t.bindir}" for t in toolsets) or "none"
    raise PermanentError(
        f"the PostgreSQL server is {server_version} but no pg_dump of major "
        f"version {server_major} or newer is installed (found: {have}); install "
        f"postgresql-client-{server_major} or point PG_BINDIRS at its bin directory"
    )


def conninfo(dbname: str) -> str:
    """A libpq connection string naming only `dbname`, quoted, so that a
    database called `a=b` or `postgresql://x` is taken as a plain name."""
    escaped = dbname.replace("\\", "\\\\").replace("'", "\\'")
    return f"dbname='{escaped}'"
