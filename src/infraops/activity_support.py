"""Shared plumbing for activity methods."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import ParamSpec, TypeVar

from temporalio import activity

from infraops.errors import InfraopsError, to_application_error

P = ParamSpec("P")
R = TypeVar("R")


def classified(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Hand our classified errors to Temporal as (non-)retryable failures."""

    @functools.wraps(function)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await function(*args, **kwargs)
        except InfraopsError as error:
            raise to_application_error(error) from None

    return wrapper


@asynccontextmanager
async def heartbeating(*details: object) -> AsyncIterator[None]:
    """Heartbeat in the background while the block runs.

    A slow call to Nomad or a node must not look like a dead worker: without
    this, an activity that waits on one call longer than its heartbeat timeout
    is cancelled and retried, and under load may never finish. The interval is
    a third of the activity's heartbeat timeout.
    """
    timeout = activity.info().heartbeat_timeout
    interval = timeout.total_seconds() / 3 if timeout else 10.0

    async def beat() -> None:
        while True:
            activity.heartbeat(*details)
            await asyncio.sleep(interval)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
