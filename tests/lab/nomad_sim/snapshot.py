"""`GET /v1/operator/snapshot` and `GET /v1/agent/self` for the simulator.

As Nomad's `command/agent/operator_endpoint.go`: a streamed gzip tar with a
`Digest: sha-256=<base64>` header of the gzipped body and no X-Nomad-Index;
the generic leader check (500 `No cluster leader` unless `stale`) and token
check (403) run before this handler. Faults: a stream cut short after the
200 and the Digest (`truncate_after`), and the msgpack error Nomad appends
when streaming fails half-way (`append_error`).

    state = snapshot_state(sim)
    state.archive = gzipped(build_tar(7, 2))
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.lab.snapshots import build_tar, gzipped

from .cluster import Cluster

if TYPE_CHECKING:
    from .api import Ctx, Reply


@dataclass
class SnapshotState:
    archive: bytes = field(default_factory=lambda: gzipped(build_tar(10, 2)))
    digest: bool = True
    truncate_after: int | None = None
    append_error: str | None = None
    version: str = "1.9.3"


_STATES: weakref.WeakKeyDictionary[Cluster, SnapshotState] = weakref.WeakKeyDictionary()


def snapshot_state(sim: Any) -> SnapshotState:
    """The snapshot settings of a NomadSim (created on first use)."""
    return _STATES.setdefault(sim.cluster, SnapshotState())


@dataclass
class RawBody:
    """A reply body the HTTP layer streams as is (see http_server._respond)."""

    payload: bytes
    headers: dict[str, str]
    truncate_after: int | None = None
    trailer: bytes = b""

    def write_to(self, handler: Any) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        for name, value in self.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        body = self.payload + self.trailer
        limit = len(body) if self.truncate_after is None else self.truncate_after
        try:
            for start in range(0, limit, 8192):
                piece = body[start : min(start + 8192, limit)]
                handler.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            if self.truncate_after is not None:
                handler.wfile.flush()
                handler.close_connection = True
                with contextlib.suppress(OSError):
                    handler.connection.shutdown(socket.SHUT_RDWR)
                return
            handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True


def save_snapshot(ctx: Ctx) -> Reply:
    from .api import Reply

    state = _STATES.setdefault(ctx.cluster, SnapshotState())
    headers: dict[str, str] = {}
    if state.digest:
        digest = base64.b64encode(hashlib.sha256(state.archive).digest()).decode()
        headers["Digest"] = f"sha-256={digest}"
    trailer = b""
    if state.append_error:
        text = f"failed to stream snapshot: {state.append_error}".encode()
        trailer = b"\x81\xa5Error" + bytes([0xD9, len(text)]) + text
    body = RawBody(state.archive, headers, state.truncate_after, trailer)
    return Reply(body, 0, read=False)


def agent_self(ctx: Ctx) -> Reply:
    from .api import Reply

    state = _STATES.setdefault(ctx.cluster, SnapshotState())
    body = {
        "config": {"Region": ctx.cluster.region, "Version": {"Version": state.version}},
        "member": {"Name": "nomad-sim.global", "Status": "alive"},
    }
    return Reply(body, 0, read=False)
