"""Retry policies and timeouts shared by every workflow (as the original)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

A = TypeVar("A")
R = TypeVar("R")

STANDARD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=3,
)

# Quick activities: one attempt may take 5 minutes, all attempts 15.
QUICK_START_TO_CLOSE = timedelta(minutes=5)
QUICK_SCHEDULE_TO_CLOSE = timedelta(minutes=15)


def quick_activity(method: Callable[[Any, A], Awaitable[R]], arg: A) -> Awaitable[R]:
    """Run an activity method with the quick timeouts and the standard retry."""
    return workflow.execute_activity_method(
        method,
        arg,
        start_to_close_timeout=QUICK_START_TO_CLOSE,
        schedule_to_close_timeout=QUICK_SCHEDULE_TO_CLOSE,
        retry_policy=STANDARD_RETRY,
    )
