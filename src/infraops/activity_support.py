"""Shared plumbing for activity methods."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

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
