"""An async Consul HTTP API client for the backup role.

Errors are classified here and nowhere else: connection failures, timeouts,
429 and 5xx (including "No cluster leader") are transient; other 4xx answers
are permanent and carry Consul's plain-text body. The token travels in a
header and never appears in an error, a log line or a span.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from infraops.clients._stream import Stream, open_stream
from infraops.config import ConsulSettings
from infraops.errors import PermanentError, TransientError

tracer = trace.get_tracer(__name__)


class ConsulUnavailable(TransientError):
    """Consul could not answer now: network trouble, a timeout or a 5xx."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConsulRejected(PermanentError):
    """Consul refused the request (4xx); `body` is its plain-text reason."""

    def __init__(self, message: str, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ConsulClient:
    """Calls Consul's HTTP API with the worker's token."""

    def __init__(
        self,
        settings: ConsulSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"User-Agent": "infraops"}
        if settings.consul_http_token is not None:
            headers["X-Consul-Token"] = settings.consul_http_token.get_secret_value()
        self._http = httpx.AsyncClient(
            base_url=settings.consul_http_addr,
            headers=headers,
            timeout=httpx.Timeout(30.0, connect=5.0),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get_json(self, path: str) -> Any:
        with _span("GET", path) as span:
            try:
                response = await self._http.get(path)
            except httpx.TransportError as error:
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                raise ConsulUnavailable(
                    f"Consul GET {path}: {type(error).__name__}: {error or 'no detail'}"
                ) from None
            span.set_attribute("http.response.status_code", response.status_code)
            if not response.is_success:
                span.set_status(Status(StatusCode.ERROR, str(response.status_code)))
                raise _classify(response, response.text.strip()[:500], "GET", path)
            return response.json()

    @asynccontextmanager
    async def stream(self, path: str, params: dict[str, str]) -> AsyncIterator[Stream]:
        """GET `path` as a stream (a snapshot); errors classified."""
        with _span("GET", path) as span:
            async with open_stream(
                self._http,
                path,
                params,
                what=f"Consul GET {path}",
                unavailable=ConsulUnavailable,
                classify=lambda response, body: _classify(response, body, "GET", path),
            ) as stream:
                span.set_attribute(
                    "http.response.status_code", stream.response.status_code
                )
                yield stream


def _span(method: str, path: str) -> Any:
    return tracer.start_as_current_span(
        f"consul {method} {path}",
        kind=SpanKind.CLIENT,
        attributes={
            "peer.service": "consul",
            "http.request.method": method,
            "url.path": path,
        },
    )


def _classify(response: httpx.Response, body: str, method: str, path: str) -> Exception:
    message = f"Consul {method} {path} answered {response.status_code}: {body}"
    if response.status_code >= 500 or response.status_code == 429:
        return ConsulUnavailable(message, response.status_code)
    return ConsulRejected(message, response.status_code, body)
