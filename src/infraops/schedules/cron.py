"""Cron strings as the Temporal server understands them, compared by meaning.

The server does not keep a schedule's cron string: it turns it into calendar
specs of (start, end, step) ranges (temporalio/temporal#5673), so a diff has to
turn the declared cron into the same thing. Each field becomes the sorted tuple
of values it matches, so `*/15` and `0,15,30,45` compare equal, and a calendar
from the server can be rendered back as a cron for display.

Accepted: five fields (minute hour day-of-month month day-of-week) made of `*`,
numbers, `a-b`, `*/n`, `a/n`, `a-b/n` and lists of those; JAN-DEC and SUN-SAT;
7 for Sunday; and @yearly, @annually, @monthly, @weekly, @daily, @midnight,
@hourly. Refused, because the server reads them differently from cron(8) or
not at all: `?`, `L`, `W`, `#`, seconds/year fields, CRON_TZ= (use time_zone)
and @every, and a cron restricting both day-of-month and day-of-week (cron(8)
fires when either matches, Temporal only when both do).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


class CronError(ValueError):
    """A cron string that is not valid, or not safe to give the server."""


@dataclass(frozen=True, order=True)
class Calendar:
    """The instants one calendar spec matches, one sorted tuple per field.

    `year` is empty for every year, as on the server.
    """

    second: tuple[int, ...]
    minute: tuple[int, ...]
    hour: tuple[int, ...]
    day_of_month: tuple[int, ...]
    month: tuple[int, ...]
    day_of_week: tuple[int, ...]
    year: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_MONTHS = {
    name: number
    for number, name in enumerate(
        [
            "jan",
            "feb",
            "mar",
            "apr",
            "may",
            "jun",
            "jul",
            "aug",
            "sep",
            "oct",
            "nov",
            "dec",
        ],
        start=1,
    )
}
_DAYS = {
    name: number
    for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
}
_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day-of-month", 1, 31, {}),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 0, 7, _DAYS),  # 7 is Sunday too
)
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_ITEM = re.compile(r"^(?P<range>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>[0-9]+))?$")

ALL_DAYS_OF_MONTH = tuple(range(1, 32))
ALL_MONTHS = tuple(range(1, 13))
ALL_DAYS_OF_WEEK = tuple(range(7))


def parse(text: str) -> Calendar:
    """The calendar the server makes of `text`, or `CronError` saying why not."""
    cron = " ".join(text.split())
    lowered = cron.lower()
    if lowered.startswith(("cron_tz=", "tz=")):
        raise CronError(f"{text!r}: set time_zone instead of a CRON_TZ= prefix")
    if lowered.startswith("@"):
        if lowered not in ALIASES:
            known = ", ".join(ALIASES)
            raise CronError(f"{text!r}: unknown shorthand; use 5 fields or {known}")
        lowered = ALIASES[lowered]
    parts = lowered.split(" ")
    if len(parts) != len(_FIELDS):
        raise CronError(
            f"{text!r}: expected 5 fields (minute hour day-of-month month "
            f"day-of-week), found {len(parts)}"
        )
    values = [
        _parse_field(part, spec, text)
        for part, spec in zip(parts, _FIELDS, strict=True)
    ]
    minute, hour, day_of_month, month, day_of_week = values
    day_of_week = tuple(sorted({0 if day == 7 else day for day in day_of_week}))
    if day_of_month != ALL_DAYS_OF_MONTH and day_of_week != ALL_DAYS_OF_WEEK:
        raise CronError(
            f"{text!r}: restricts both day-of-month and day-of-week; Temporal "
            "fires only when both match (cron(8) fires when either does), so "
            "restrict one of them"
        )
    return Calendar(
        second=(0,),
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month=month,
        day_of_week=day_of_week,
    )


def _parse_field(part: str, spec: _Field, text: str) -> tuple[int, ...]:
    values: set[int] = set()
    for item in part.split(","):
        match = _ITEM.match(item)
        if match is None:
            raise CronError(f"{text!r}: {spec.name} {item!r} is not valid")
        step = int(match["step"]) if match["step"] is not None else 1
        if step < 1:
            raise CronError(f"{text!r}: {spec.name} step must be at least 1")
        if match["range"] == "*":
            low, high = spec.low, spec.high
            if spec.name == "day-of-week":
                high = 6
        else:
            first, _, last = match["range"].partition("-")
            low = _value(first, spec, text)
            high = _value(last, spec, text) if last else low
            if match["step"] is not None and not last:
                high = spec.high  # a/n: from a to the end, as the server reads it
                if spec.name == "day-of-week":
                    high = 6
        if low > high:
            raise CronError(f"{text!r}: {spec.name} range {item!r} goes backwards")
        values.update(range(low, high + 1, step))
    return tuple(sorted(values))


def _value(token: str, spec: _Field, text: str) -> int:
    if token in spec.names:
        return spec.names[token]
    if not token.isdigit():
        raise CronError(f"{text!r}: {spec.name} {token!r} is not a number or name")
    number = int(token)
    if not spec.low <= number <= spec.high:
        raise CronError(
            f"{text!r}: {spec.name} {number} is outside {spec.low}-{spec.high}"
        )
    return number


class _Range(Protocol):
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def step(self) -> int: ...


class _CalendarSpec(Protocol):
    """temporalio.client.ScheduleCalendarSpec, without importing temporalio."""

    @property
    def second(self) -> Sequence[_Range]: ...
    @property
    def minute(self) -> Sequence[_Range]: ...
    @property
    def hour(self) -> Sequence[_Range]: ...
    @property
    def day_of_month(self) -> Sequence[_Range]: ...
    @property
    def month(self) -> Sequence[_Range]: ...
    @property
    def year(self) -> Sequence[_Range]: ...
    @property
    def day_of_week(self) -> Sequence[_Range]: ...


def from_spec(spec: _CalendarSpec) -> Calendar:
    """The calendar a live `ScheduleCalendarSpec` matches (absent = default)."""
    day_of_week = _expand(spec.day_of_week, ALL_DAYS_OF_WEEK)
    return Calendar(
        second=_expand(spec.second, (0,)),
        minute=_expand(spec.minute, (0,)),
        hour=_expand(spec.hour, (0,)),
        day_of_month=_expand(spec.day_of_month, ALL_DAYS_OF_MONTH),
        month=_expand(spec.month, ALL_MONTHS),
        day_of_week=tuple(sorted({0 if day == 7 else day for day in day_of_week})),
        year=_expand(spec.year, ()),
    )


def _expand(ranges: Sequence[_Range], default: tuple[int, ...]) -> tuple[int, ...]:
    if not ranges:
        return default
    values: set[int] = set()
    for item in ranges:
        end = item.end if item.end >= item.start else item.start
        values.update(range(item.start, end + 1, max(item.step, 1)))
    return tuple(sorted(values))


def render(calendar: Calendar) -> str:
    """`calendar` as a 5-field cron when it is one, else spelt out per field."""
    fields = (
        (calendar.minute, 0, 59),
        (calendar.hour, 0, 23),
        (calendar.day_of_month, 1, 31),
        (calendar.month, 1, 12),
        (calendar.day_of_week, 0, 6),
    )
    cron = " ".join(_compact(values, low, high) for values, low, high in fields)
    if calendar.second == (0,) and not calendar.year:
        return cron
    extra = f"second {_compact(calendar.second, 0, 59)}"
    if calendar.year:
        extra += f", year {_compact(calendar.year, 0, 9999)}"
    return f"{cron} ({extra})"


def _compact(values: Iterable[int], low: int, high: int) -> str:
    ordered = sorted(values)
    if ordered == list(range(low, high + 1)):
        return "*"
    if len(ordered) > 2 and ordered[0] == low:
        step = ordered[1] - ordered[0]
        if ordered == list(range(low, high + 1, step)):
            return f"*/{step}"
    runs: list[str] = []
    start = previous = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        runs.append(str(start) if start == previous else f"{start}-{previous}")
        if value is not None:
            start = previous = value
    return ",".join(runs)
