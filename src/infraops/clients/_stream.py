"""A streamed HTTP GET whose errors are classified like the client's own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

CHUNK = 1 << 20


@dataclass
class Stream:
    """An answered 2xx GET: its headers, and its body read chunk by chunk."""

    response: httpx.Response
    what: str
    unavailable: Callable[[str], Exception]

    @property
    def headers(self) -> httpx.Headers:
        return self.response.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.response.aiter_raw(CHUNK):
                yield chunk
        except httpx.TransportError as error:
            detail = f"{type(error).__name__}: {error or 'no detail'}"
            raise self.unavailable(
                f"{self.what}: the stream was cut short ({detail})"
            ) from None


@asynccontextmanager
async def open_stream(
    http: httpx.AsyncClient,
    path: str,
    params: dict[str, str],
    *,
    what: str,
    unavailable: Callable[[str], Exception],
    classify: Callable[[httpx.Response, str], Exception],
) -> AsyncIterator[Stream]:
    """GET `path` without a read timeout; non-2xx answers are raised classified.

    `classify(response, body)` builds the error for an error status.
    """
    request = http.build_request(
        "GET", path, params=params, timeout=httpx.Timeout(None, connect=10.0)
    )
    try:
        response = await http.send(request, stream=True)
    except httpx.TransportError as error:
        detail = f"{type(error).__name__}: {error or 'no detail'}"
        raise unavailable(f"{what}: {detail}") from None
    try:
        if not response.is_success:
            try:
                body = (await response.aread()).decode("utf-8", "replace")
            except httpx.TransportError:
                body = ""
            raise classify(response, body.strip()[:500])
        yield Stream(response, what, unavailable)
    finally:
        await response.aclose()
