"""The one exception the simulator's handlers raise: an HTTP status and the
plain-text body Nomad would send."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.index = index  # set on read errors that still carry X-Nomad-Index
