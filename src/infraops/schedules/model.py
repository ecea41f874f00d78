"""One schedule as `schedules/<id>.json` (or Terraform) declares it."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from infraops.schedules import cron as cron_syntax

# The server raises any shorter catch-up window to 10 s (observed).
MIN_CATCHUP = timedelta(seconds=10)
UTC_NAMES = frozenset(
    {"", "UTC", "Etc/UTC", "UCT", "Etc/UCT", "Zulu", "Etc/Zulu", "Universal"}
    | {"Etc/Universal"}
)
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,199}$")
_DURATION = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:h|m|s))+$")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|m|s)")
_UNIT = {"h": 3600, "m": 60, "s": 1}


class DeclarationError(ValueError):
    """Declarations that cannot be read, each problem on its own line."""

    def __init__(self, problems: list[str], readable: Any = None) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        # The declarations that could be read, so they can be checked too.
        self.readable = readable


class OverlapPolicy(StrEnum):
    """What happens when a run is due while the previous one still runs."""

    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    BUFFER_ALL = "buffer_all"
    CANCEL_OTHER = "cancel_other"
    TERMINATE_OTHER = "terminate_other"
    ALLOW_ALL = "allow_all"


class Declaration(BaseModel):
    """A schedule: which workflow starts when, on which queue, with what input.

    `cron` is one 5-field expression or a list of them, in `time_zone` (UTC
    unless said otherwise). `input` is the JSON document the workflow
    receives; `validate` checks it against the workflow's config model.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: str
    workflow: str = Field(min_length=1)
    task_queue: str = Field(min_length=1)
    cron: tuple[str, ...]
    time_zone: str = "UTC"
    input: dict[str, Any] = Field(default_factory=dict)
    overlap_policy: OverlapPolicy = OverlapPolicy.SKIP
    catchup_window: timedelta = timedelta(hours=1)
    pause_on_failure: StrictBool = False
    paused: StrictBool = False
    note: str = ""

    @field_validator("id")
    @classmethod
    def _plain_id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(
                "use lower-case letters, digits, '.', '_' and '-' (e.g. backup-daily)"
            )
        return value

    @field_validator("cron", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            if not value:
                raise ValueError("give at least one cron expression")
            for text in value:
                if isinstance(text, str):
                    cron_syntax.parse(text)
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value in UTC_NAMES:
            return "UTC"
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("input", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        # Terraform often carries it as jsonencode(...): accept that string too.
        if value is None:
            raise ValueError("must be an object of config fields; use {} for none")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as error:
                raise ValueError(f"not valid JSON: {error.msg}") from None
        if value is None:
            return {}
        return value

    @field_validator("catchup_window", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_duration(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return timedelta(seconds=value)
        return value

    @field_validator("catchup_window")
    @classmethod
    def _at_least_minimum(cls, value: timedelta) -> timedelta:
        if value < MIN_CATCHUP:
            raise ValueError("must be at least 10s (the server's minimum)")
        return value

    @property
    def calendars(self) -> frozenset[cron_syntax.Calendar]:
        return frozenset(cron_syntax.parse(text) for text in self.cron)


def parse_duration(text: str) -> timedelta:
    """A Go-style duration as Terraform and the Temporal CLI write it: 1h30m."""
    compact = text.strip()
    if not _DURATION.match(compact):
        raise ValueError(f"{text!r} is not a duration such as 90s, 30m, 6h or 1h30m")
    seconds = sum(
        float(number) * _UNIT[unit] for number, unit in _DURATION_PART.findall(compact)
    )
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """`value` the way parse_duration reads it back: 6h, 1h30m, 45s."""
    total = value.total_seconds()
    if total != int(total):
        return f"{total:g}s"
    remaining = int(total)
    parts = []
    for unit, size in _UNIT.items():
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
