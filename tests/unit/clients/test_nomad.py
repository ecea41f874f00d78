"""The Nomad client classifies every failure at its one boundary."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from infraops.clients.nomad import NomadClient, NomadRejected, NomadUnavailable
from infraops.config import NomadSettings
from infraops.errors import PermanentError, TransientError

TOKEN = "s3cr3t-token-value"


def client_for(handler: httpx.MockTransport, **settings: object) -> NomadClient:
    return NomadClient(
        NomadSettings(nomad_token=SecretStr(TOKEN), **settings),  # type: ignore[arg-type]
        transport=handler,
    )


def plain(status: int, body: str) -> httpx.MockTransport:
    return httpx.MockTransport(
        lambda request: httpx.Response(
            status, text=body, headers={"Content-Type": "text/plain; charset=utf-8"}
        )
    )


class TestErrorMapping:
    async def test_no_cluster_leader_is_transient(self) -> None:
        """A 500 during an election is worth retrying."""
        client = client_for(plain(500, "No cluster leader"))

        with pytest.raises(NomadUnavailable, match="No cluster leader") as caught:
            await client.get("/v1/nodes")
        assert isinstance(caught.value, TransientError)
        assert caught.value.status == 500

    @pytest.mark.parametrize(
        ("status", "body"),
        [(400, "Invalid index"), (403, "Permission denied"), (404, "job not found")],
    )
    async def test_client_errors_are_permanent_with_body(
        self, status: int, body: str
    ) -> None:
        """4xx answers are final and carry Nomad's plain-text reason."""
        client = client_for(plain(status, body))

        with pytest.raises(NomadRejected) as caught:
            await client.get("/v1/job/x")
        assert isinstance(caught.value, PermanentError)
        assert caught.value.status == status
        assert caught.value.body == body
        assert TOKEN not in str(caught.value)

    async def test_connection_failures_are_transient(self) -> None:
        """A refused connection is a transient failure naming the request."""

        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        client = client_for(httpx.MockTransport(refuse))

        with pytest.raises(NomadUnavailable, match="GET /v1/nodes"):
            await client.get("/v1/nodes")

    async def test_timeouts_are_transient(self) -> None:
        """A read timeout is retried, not reported as a permanent failure."""

        def slow(request: httpx.Request) -> httpx.Response:
            raise httpx.ReadTimeout("timed out", request=request)

        with pytest.raises(NomadUnavailable):
            await client_for(httpx.MockTransport(slow)).get("/v1/nodes")


class TestRequests:
    async def test_token_namespace_and_blocking_query(self) -> None:
        """The token goes in a header; index and wait make a blocking query."""
        seen: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json=[], headers={"X-Nomad-Index": "42"})

        client = client_for(httpx.MockTransport(answer), nomad_namespace="ops")
        result = await client.get("/v1/allocations", index=41, wait=5)

        request = seen[0]
        assert request.headers["X-Nomad-Token"] == TOKEN
        assert request.url.params["namespace"] == "ops"
        assert request.url.params["index"] == "41"
        assert request.url.params["wait"] == "5s"
        assert TOKEN not in str(request.url)
        assert result.index == 42
