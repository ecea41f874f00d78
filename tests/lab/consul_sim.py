"""A small, faithful Consul agent for snapshot tests.

`GET /v1/snapshot` answers like Consul's `agent/snapshot_endpoint.go`:

- a streamed (chunked) gzip tar with `X-Consul-Index`, `X-Consul-KnownLeader`
  and `X-Consul-LastContact`; no digest header;
- 500 `No cluster leader` when there is no leader, unless `stale` is present
  (any value: Consul only checks that the key is there);
- 403 `Permission denied` for a missing or wrong token (X-Consul-Token or
  `Authorization: Bearer`), plain-text errors throughout;
- faults: a stream cut short after the 200 (`truncate_after`), a server-side
  temp-file error, and any archive the test sets (broken ones included).

`GET /v1/agent/self` gives the version. Requests are recorded, tokens redacted.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.lab.snapshots import build_tar, gzipped

TEXT = "text/plain; charset=utf-8"


@dataclass
class ConsulRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    token: str  # "<redacted>" or ""


@dataclass
class ConsulState:
    token: str | None = "consul-lab-token"
    leader: bool = True
    index: int = 42
    version: str = "1.20.2"
    archive: bytes = field(default_factory=lambda: gzipped(build_tar(42, 3)))
    stale_archive: bytes | None = None
    truncate_after: int | None = None  # bytes of body, then the connection drops
    fail_status: int | None = None
    fail_body: str = ""
    last_contact_ms: int = 0
    requests: list[ConsulRequest] = field(default_factory=list)


class ConsulSim:
    def __init__(self, token: str | None = "consul-lab-token") -> None:
        self.state = ConsulState(token=token)
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ConsulSim:
        handler = type("Handler", (_Handler,), {"sim": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def requests(self) -> list[ConsulRequest]:
        with self.lock:
            return list(self.state.requests)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sim: ConsulSim

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        token = self.headers.get("X-Consul-Token", "")
        auth = self.headers.get("Authorization", "")
        if not token and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        state = self.sim.state
        with self.sim.lock:
            state.requests.append(
                ConsulRequest("GET", url.path, query, "<redacted>" if token else "")
            )
        if state.token is not None and token != state.token:
            self._text(403, "Permission denied")
            return
        if url.path == "/v1/agent/self":
            body = (
                '{"Config":{"Datacenter":"dc1","NodeName":"consul-sim",'
                f'"Version":"{state.version}","Server":true}}}}'
            )
            self._send(200, body.encode(), "application/json", {})
            return
        if url.path != "/v1/snapshot":
            self._text(404, "404 page not found\n")
            return
        stale = "stale" in query
        if not state.leader and not stale:
            self._text(500, "No cluster leader")
            return
        if state.fail_status is not None:
            self._text(state.fail_status, state.fail_body)
            return
        archive = (
            state.stale_archive if stale and state.stale_archive else state.archive
        )
        headers = {
            "X-Consul-Index": str(state.index),
            "X-Consul-KnownLeader": "true" if state.leader else "false",
            "X-Consul-LastContact": str(state.last_contact_ms if stale else 0),
            "Content-Type": "application/x-gzip",
        }
        self._stream(archive, headers, state.truncate_after)

    def _stream(self, body: bytes, headers: dict[str, str], cut: int | None) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        limit = len(body) if cut is None else min(cut, len(body))
        try:
            for start in range(0, limit, 8192):
                piece = body[start : min(start + 8192, limit)]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            if cut is not None:
                self.wfile.flush()
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _text(self, status: int, text: str) -> None:
        self._send(status, text.encode(), TEXT, {})

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str]
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)
