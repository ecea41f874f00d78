"""The HTTP side: a ThreadingHTTPServer whose handler records the request,
applies injected faults, checks the token, runs the endpoint (blocking when
asked) and writes Nomad's headers and plain-text errors."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from .api import Ctx, Reply, resolve
from .errors import ApiError
from .faults import PASS_THROUGH, TEXT_PLAIN, Fault, RecordedRequest, redact
from .query import QueryOptions, namespace_of, parse_query

if TYPE_CHECKING:
    from .sim import NomadSim

JSON_TYPE = "application/json"
_NO_LEADER_CONTACT_MS = "5000"


def token_of(headers: dict[str, str]) -> str:
    """Nomad's parseToken: X-Nomad-Token wins over `Authorization: Bearer`."""
    if token := headers.get("x-nomad-token", ""):
        return token.strip()
    parts = headers.get("authorization", "").split(" ")
    if len(parts) > 1 and parts[0].lower() == "bearer":
        return " ".join(parts[1:]).strip()
    return ""


class SimServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sim: NomadSim) -> None:
        self.sim = sim
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), SimHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-reply are expected (timeouts, drops)

    def close_connections(self) -> None:
        with self.connections_lock:
            conns, self.connections = list(self.connections), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class SimHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nomad-sim"
    server: SimServer

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: avoid Nagle + delayed ACK
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_response(self, code: int, message: str | None = None) -> None:
        """Like Go's net/http: a Date header, no Server header."""
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def do_GET(self) -> None:
        self._serve()

    do_PUT = do_POST = do_DELETE = do_PATCH = do_GET

    # -- one request -------------------------------------------------------

    def _serve(self) -> None:
        sim = self.server.sim
        url = urlsplit(self.path)
        path, query = unquote(url.path), parse_qs(url.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self.rfile.read(int(headers.get("content-length") or 0))
        token = token_of(headers)
        authenticated = sim.token is None or token == sim.token
        fault = sim.faults.take(self.command, path)
        sim.record(
            RecordedRequest(
                method=self.command,
                path=path,
                query=query,
                headers=redact(headers),
                json=_json_or_none(body),
                body=body,
                authenticated=authenticated,
                fault=fault is not None,
            )
        )
        if fault is not None and not self._apply_fault(fault):
            return
        try:
            self._dispatch(path, query, headers, body, authenticated)
        except Exception as exc:  # a sim bug: answer, and keep it for assertions
            sim.errors.append(exc)
            self._send(500, f"nomad sim internal error: {exc!r}".encode(), TEXT_PLAIN)

    def _apply_fault(self, fault: Fault) -> bool:
        """Sleep, then drop or answer. True when normal handling should go on."""
        if fault.delay:
            self.server.sim.stopping.wait(fault.delay)
        if fault.status is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return False
        if fault.status == PASS_THROUGH:
            return True
        self._send(fault.status, fault.body.encode(), fault.content_type)
        return False

    def _dispatch(
        self,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        authenticated: bool,
    ) -> None:
        sim = self.server.sim
        try:
            handler, args = resolve(self.command, path)
            if self.command == "GET":
                opts = parse_query(query, headers)
            else:
                opts = QueryOptions(namespace=namespace_of(query, headers))
            if not authenticated:
                raise ApiError(403, "Permission denied")
            if self.command == "GET" and not (sim.cluster.leader or opts.stale):
                raise ApiError(500, "No cluster leader")
            ctx = Ctx(sim.cluster, args, query, opts, body)
            outcome: Reply | ApiError = (
                self._blocking_read(handler, ctx)
                if self.command == "GET"
                else self._write(handler, ctx)
            )
        except ApiError as exc:
            outcome = exc
        self._respond(outcome, pretty="pretty" in query)

    def _write(self, handler: Any, ctx: Ctx) -> Reply | ApiError:
        with ctx.cluster.lock:
            return _attempt(handler, ctx)

    def _blocking_read(self, handler: Any, ctx: Ctx) -> Reply | ApiError:
        opts, cluster = ctx.opts, ctx.cluster
        deadline = None
        if opts.min_index > 0:
            deadline = time.monotonic() + opts.wait + random.uniform(0, opts.wait / 16)
        with cluster.changed:
            while True:
                outcome = _attempt(handler, ctx)
                if (
                    deadline is None
                    or _index(outcome) is None
                    or self.server.sim.stopping.is_set()
                ):
                    return outcome
                remaining = deadline - time.monotonic()
                if (_index(outcome) or 0) > opts.min_index or remaining <= 0:
                    return outcome
                cluster.changed.wait(min(remaining, 0.5))

    # -- writing -----------------------------------------------------------

    def _meta_headers(self, index: int, read: bool) -> dict[str, str]:
        headers = {"X-Nomad-Index": str(index)}
        if read:
            leader = self.server.sim.cluster.leader
            headers["X-Nomad-KnownLeader"] = "true" if leader else "false"
            headers["X-Nomad-LastContact"] = "0" if leader else _NO_LEADER_CONTACT_MS
        return headers

    def _respond(self, outcome: Reply | ApiError, *, pretty: bool) -> None:
        read = self.command == "GET"
        if isinstance(outcome, ApiError):
            extra = (
                {} if outcome.index is None else self._meta_headers(outcome.index, read)
            )
            self._send(outcome.status, outcome.message.encode(), TEXT_PLAIN, extra)
            return
        if hasattr(outcome.body, "write_to"):  # a streamed body (snapshot.py)
            outcome.body.write_to(self)
            return
        headers = self._meta_headers(outcome.index, outcome.read)
        if outcome.next_token:
            headers["X-Nomad-NextToken"] = outcome.next_token
        if pretty:
            payload = json.dumps(outcome.body, indent=4) + "\n"
        else:
            payload = json.dumps(outcome.body, separators=(",", ":"))
        self._send(200, payload.encode(), JSON_TYPE, headers)

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _attempt(handler: Any, ctx: Ctx) -> Reply | ApiError:
    try:
        reply: Reply = handler(ctx)
    except ApiError as exc:
        return exc
    return reply


def _index(outcome: Reply | ApiError) -> int | None:
    return outcome.index


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
