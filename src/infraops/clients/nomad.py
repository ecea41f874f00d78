"""An async Nomad HTTP API client, shared by every activity of a worker.

Errors are classified here and nowhere else: connection failures, timeouts and
5xx answers (including "No cluster leader") are transient; 4xx answers are
permanent and carry Nomad's plain-text body. The token travels in a header and
never appears in an error, a log line or a span.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from infraops.clients._stream import Stream, open_stream
from infraops.config import NomadSettings
from infraops.errors import PermanentError, TransientError

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

_ID = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_BODY_LIMIT = 500


class NomadUnavailable(TransientError):
    """Nomad could not answer now: network trouble, a timeout or a 5xx."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NomadRejected(PermanentError):
    """Nomad refused the request (4xx); `body` is its plain-text reason."""

    def __init__(self, message: str, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Answer:
    """A decoded response and the Raft index to pass to a blocking query."""

    data: Any
    index: int


class NomadClient:
    """Calls Nomad's HTTP API with the worker's token, TLS and namespace."""

    def __init__(
        self,
        settings: NomadSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"User-Agent": "infraops"}
        if settings.nomad_token is not None:
            headers["X-Nomad-Token"] = settings.nomad_token.get_secret_value()
        self._namespace = settings.nomad_namespace
        self._http = httpx.AsyncClient(
            base_url=settings.nomad_addr,
            headers=headers,
            verify=_tls_context(settings),
            timeout=httpx.Timeout(30.0, connect=5.0),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        index: int | None = None,
        wait: float | None = None,
    ) -> Answer:
        """GET `path`; with `index`, block until Nomad's index passes it."""
        query = dict(params or {})
        read_timeout: float | None = None
        if index:
            query["index"] = str(index)
            wait = wait or 60.0
            query["wait"] = f"{int(wait)}s"
            read_timeout = wait + wait / 16 + 10
        response = await self._send("GET", path, query, None, read_timeout)

        return Answer(response.json(), int(response.headers.get("X-Nomad-Index", 0)))

    async def post(self, path: str, body: dict[str, Any]) -> Answer:
        response = await self._send("POST", path, {}, body, None)

        return Answer(response.json(), int(response.headers.get("X-Nomad-Index", 0)))

    @asynccontextmanager
    async def stream(self, path: str, params: dict[str, str]) -> AsyncIterator[Stream]:
        """GET `path` as a stream without a read timeout (a snapshot)."""
        query = dict(params)
        if self._namespace and "namespace" not in query:
            query["namespace"] = self._namespace
        with tracer.start_as_current_span(
            f"nomad GET {path}",
            kind=SpanKind.CLIENT,
            attributes={"peer.service": "nomad", "http.request.method": "GET"},
        ):
            async with open_stream(
                self._http,
                path,
                query,
                what=f"Nomad GET {path}",
                unavailable=NomadUnavailable,
                classify=lambda response, _: _classify("GET", path, response),
            ) as stream:
                yield stream

    async def _send(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: dict[str, Any] | None,
        read_timeout: float | None,
    ) -> httpx.Response:
        if self._namespace and "namespace" not in query:
            query["namespace"] = self._namespace
        route = _ID.sub("/:id", path)
        with tracer.start_as_current_span(
            f"nomad {method} {route}",
            kind=SpanKind.CLIENT,
            attributes={
                "peer.service": "nomad",
                "http.request.method": method,
                "url.path": route,
            },
        ) as span:
            try:
                response = await self._http.request(
                    method,
                    path,
                    params=query,
                    json=body,
                    timeout=read_timeout or httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.TransportError as error:
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                detail = f"{type(error).__name__}: {error or 'no detail'}"
                raise NomadUnavailable(f"Nomad {method} {path}: {detail}") from None
            span.set_attribute("http.response.status_code", response.status_code)
            if response.is_success:
                return response
            span.set_status(Status(StatusCode.ERROR, str(response.status_code)))
            raise _classify(method, path, response)


def _classify(method: str, path: str, response: httpx.Response) -> Exception:
    body = response.text.strip()[:_BODY_LIMIT]
    message = f"Nomad {method} {path} answered {response.status_code}: {body}"
    if response.status_code >= 500 or response.status_code == 429:
        return NomadUnavailable(message, response.status_code)

    return NomadRejected(message, response.status_code, body)


def _tls_context(settings: NomadSettings) -> ssl.SSLContext | bool:
    if settings.nomad_cacert is None and settings.nomad_client_cert is None:
        return True
    context = ssl.create_default_context(
        cafile=str(settings.nomad_cacert) if settings.nomad_cacert else None
    )
    if settings.nomad_client_cert is not None:
        context.load_cert_chain(
            str(settings.nomad_client_cert),
            str(settings.nomad_client_key) if settings.nomad_client_key else None,
        )
    return context
