"""Raft snapshot archives of the real shape, built by the tests themselves.

`build_tar()` writes what Consul and Nomad put inside the gzip stream of
`GET /v1/snapshot` and `GET /v1/operator/snapshot`: `meta.json`, `state.bin`
and `SHA256SUMS` (../shared/notes/trivy-nomad-consul.md section 3). The
`broken` variants mirror the fixtures in ../shared/fixtures/snapshots, which
form an optional conformance set (`fixture_tar` returns None without them).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

FIXTURES = Path(
    os.environ.get(
        "INFRAOPS_SNAPSHOT_FIXTURES",
        Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "snapshots",
    )
)
# what each broken fixture makes Nomad's reader say
FIXTURE_ERRORS = {
    "empty.tar": "failed checking integrity of snapshot",
    "extra.tar": 'unexpected file "nope"',
    "missing-meta.tar": 'hash check failed for "meta.json"',
    "missing-state.tar": 'hash check failed for "state.bin"',
    "missing-sha.tar": "file missing",
    "corrupt-meta.tar": 'hash check failed for "meta.json"',
    "corrupt-state.tar": 'hash check failed for "state.bin"',
    "corrupt-sha.tar": 'list missing hash for "nope"',
}
BROKEN = (
    "empty",
    "extra",
    "missing-meta",
    "missing-state",
    "missing-sha",
    "corrupt-meta",
    "corrupt-state",
    "corrupt-sha",
)


def meta_json(index: int, term: int) -> bytes:
    meta = {
        "Version": 1,
        "ID": f"{term}-{index}-1546615723344",
        "Index": index,
        "Term": term,
        "Peers": "ka8xMjcuMC4wLjE6ODMwMA==",
        "Configuration": {
            "Servers": [{"Suffrage": 0, "ID": "server-1", "Address": "127.0.0.1:8300"}]
        },
        "ConfigurationIndex": 1,
        "Size": 0,
    }
    return json.dumps(meta).encode()


def build_tar(
    index: int = 42,
    term: int = 3,
    state: bytes | None = None,
    *,
    broken: str | None = None,
) -> bytes:
    """An uncompressed snapshot tar; `broken` names one of BROKEN."""
    state = state if state is not None else os.urandom(4096)
    meta = meta_json(index, term)
    files: dict[str, bytes] = {"meta.json": meta, "state.bin": state}
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    if broken == "corrupt-meta":
        files["meta.json"] = meta.replace(b'"Term"', b'"Tarm"')
    elif broken == "corrupt-state":
        files["state.bin"] = b"x" + state[1:]
    elif broken == "corrupt-sha":
        sums["nope"] = hashlib.sha256(b"nope").hexdigest()
    elif broken == "missing-meta":
        del files["meta.json"]
    elif broken == "missing-state":
        del files["state.bin"]
    elif broken == "extra":
        files["nope"] = b"nope"
    listing = "".join(f"{digest}  {name}\n" for name, digest in sums.items())
    if broken != "missing-sha":
        files["SHA256SUMS"] = listing.encode()
    if broken == "empty":
        files = {}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def gzipped(tar: bytes) -> bytes:
    return gzip.compress(tar, mtime=0)


def fixture_tar(name: str) -> bytes | None:
    path = FIXTURES / name
    return path.read_bytes() if path.is_file() else None
