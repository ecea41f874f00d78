"""Names of runs and of the files inside them.

Run ids are `YYYYMMDDTHHMMSSZ-<8 hex>` in UTC; a database name is data and is
encoded into a file name that is reversible and collision-free, even on a
case-insensitive file system: only `[a-z0-9_-]` stand for themselves, every
other byte of the UTF-8 name becomes `%XX`.
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime

RUN_ID = re.compile(r"^(\d{8}T\d{6}Z)-([0-9a-f]{8})$")
NOMAD_FILE = "nomad.snap"
CONSUL_FILE = "consul.snap"
GLOBALS_FILE = "globals.sql"
DUMP_PREFIX = "db-"
DUMP_SUFFIX = ".dump"
AGE_SUFFIX = ".age"
TEMP_PREFIX = ".partial-"

_PLAIN = frozenset((string.ascii_lowercase + string.digits + "_-").encode())
_ENCODED = re.compile(r"^(?:[a-z0-9_-]|%[0-9A-F]{2})+$")


def run_id(started: datetime, unique: str) -> str:
    """The id of a run started at `started`, e.g. 20261203T010000Z-1a2b3c4d."""
    return f"{started.astimezone(UTC):%Y%m%dT%H%M%SZ}-{unique[:8].lower()}"


def is_run_id(name: str) -> bool:
    return RUN_ID.match(name) is not None


def run_started(name: str) -> datetime:
    """The UTC start time encoded in a run id (ValueError if it is not one)."""
    match = RUN_ID.match(name)
    if match is None:
        raise ValueError(f"{name!r} is not a run id")
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def dump_file_name(database: str) -> str:
    """`db-<encoded>.dump` for a database name, any name the server accepts."""
    encoded = "".join(
        chr(byte) if byte in _PLAIN else f"%{byte:02X}"
        for byte in database.encode("utf-8", "surrogatepass")
    )
    return f"{DUMP_PREFIX}{encoded}{DUMP_SUFFIX}"


def database_of(file_name: str) -> str:
    """The database name a dump file name stands for (ValueError otherwise)."""
    if not (file_name.startswith(DUMP_PREFIX) and file_name.endswith(DUMP_SUFFIX)):
        raise ValueError(f"{file_name!r} is not a dump file name")
    encoded = file_name[len(DUMP_PREFIX) : -len(DUMP_SUFFIX)]
    if not _ENCODED.match(encoded):
        raise ValueError(f"{file_name!r} is not a dump file name")
    raw = bytearray()
    i = 0
    while i < len(encoded):
        if encoded[i] == "%":
            raw.append(int(encoded[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.append(ord(encoded[i]))
            i += 1
    return raw.decode("utf-8", "surrogatepass")


def s3_key(prefix: str, run: str, name: str) -> str:
    return f"{s3_run_prefix(prefix, run)}{name}"


def s3_run_prefix(prefix: str, run: str) -> str:
    base = prefix.strip("/")
    return f"{base}/{run}/" if base else f"{run}/"
