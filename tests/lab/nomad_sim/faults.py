"""Injected faults and the request log."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

REDACTED = "<redacted>"
TEXT_PLAIN = "text/plain; charset=utf-8"
# `status` value for a fault that only delays, then lets the request through.
PASS_THROUGH = -1


@dataclass
class Fault:
    """One injected behaviour. `status=None` closes the connection without a
    reply; `status=PASS_THROUGH` delays and then answers normally."""

    method: str
    path_regex: re.Pattern[str]
    status: int | None
    body: str
    times: int | None  # None: forever
    delay: float = 0.0
    content_type: str = TEXT_PLAIN
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        exhausted = self.times is not None and self.hits >= self.times
        method_ok = self.method in ("*", method)
        return not exhausted and method_ok and self.path_regex.search(path) is not None


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the sim saw it. Header names are lower-case; the token
    values of X-Nomad-Token and Authorization are replaced by <redacted>."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    json: Any = None
    body: bytes = b""
    authenticated: bool = False
    fault: bool = field(default=False)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


def redact(headers: dict[str, str]) -> dict[str, str]:
    clean = dict(headers)
    if "x-nomad-token" in clean:
        clean["x-nomad-token"] = REDACTED
    if "authorization" in clean:
        scheme, _, rest = clean["authorization"].partition(" ")
        clean["authorization"] = f"{scheme} {REDACTED}" if rest else REDACTED
    return clean


class FaultBook:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first live fault matching the request, counting the hit."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
