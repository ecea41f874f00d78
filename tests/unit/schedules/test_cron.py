"""Cron strings turned into the calendars the server stores, compared by meaning."""

from __future__ import annotations

import re

import pytest
from temporalio.client import ScheduleCalendarSpec, ScheduleRange

from infraops.schedules import cron


def spec(**fields: tuple[tuple[int, int, int], ...]) -> ScheduleCalendarSpec:
    """A calendar spec as dev server 1.32 returns it (all fields explicit)."""
    full = {
        "second": ((0, 0, 1),),
        "minute": ((0, 0, 1),),
        "hour": ((0, 0, 1),),
        "day_of_month": ((1, 31, 1),),
        "month": ((1, 12, 1),),
        "day_of_week": ((0, 6, 1),),
    } | fields
    return ScheduleCalendarSpec(
        **{
            name: tuple(ScheduleRange(start, end, step) for start, end, step in value)
            for name, value in full.items()
        },
        year=(),
    )


# What `describe()` returned on the dev server for each cron (observed).
SERVER = [
    ("0 1 * * *", spec(hour=((1, 1, 1),))),
    (
        "30 2 * * 1-5",
        spec(minute=((30, 30, 1),), hour=((2, 2, 1),), day_of_week=((1, 5, 1),)),
    ),
    ("*/15 * * * *", spec(minute=((0, 59, 15),), hour=((0, 23, 1),))),
    ("@daily", spec()),
    ("@hourly", spec(hour=((0, 23, 1),))),
    ("@weekly", spec(day_of_week=((0, 0, 1),))),
    ("@monthly", spec(day_of_month=((1, 1, 1),))),
    ("@yearly", spec(day_of_month=((1, 1, 1),), month=((1, 1, 1),))),
    ("0 12 * * MON-FRI", spec(hour=((12, 12, 1),), day_of_week=((1, 5, 1),))),
    ("0 2 * * 7", spec(hour=((2, 2, 1),), day_of_week=((0, 0, 1),))),
    ("0 2 * * SUN", spec(hour=((2, 2, 1),), day_of_week=((0, 0, 1),))),
    (
        "5-10/2 3 * JAN,MAR *",
        spec(minute=((5, 10, 2),), hour=((3, 3, 1),), month=((1, 1, 1), (3, 3, 1))),
    ),
    ("0 0 * * 5-7", spec(day_of_week=((0, 0, 1), (5, 6, 1)))),
    ("0 0 */2 * *", spec(day_of_month=((1, 31, 2),))),
    ("1/5 * * * *", spec(minute=((1, 59, 5),), hour=((0, 23, 1),))),
]


@pytest.mark.parametrize(("text", "live"), SERVER, ids=[s[0] for s in SERVER])
def test_declared_cron_means_what_the_server_stored(
    text: str, live: ScheduleCalendarSpec
) -> None:
    assert cron.parse(text) == cron.from_spec(live)


def test_equal_meanings_compare_equal() -> None:
    assert cron.parse("*/15 * * * *") == cron.parse("0,15,30,45 * * * *")
    assert cron.parse("0 1 * * *") != cron.parse("30 1 * * *")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0 1 * *", "expected 5 fields"),
        ("0 30 2 * * *", "expected 5 fields"),
        ("60 1 * * *", "minute 60 is outside 0-59"),
        ("0 24 * * *", "hour 24"),
        ("0 0 L * *", "day-of-month 'l' is not a number"),
        ("0 2 ? * 0", "is not valid"),
        ("0 0 * * 1#2", "is not valid"),
        ("0 0 1 * 1", "restricts both day-of-month and day-of-week"),
        ("0 5-1 * * *", "goes backwards"),
        ("*/0 * * * *", "step must be at least 1"),
        ("@every 15m", "unknown shorthand"),
        ("CRON_TZ=Europe/Paris 0 5 * * *", "set time_zone"),
    ],
)
def test_refused_crons_say_why(text: str, says: str) -> None:
    with pytest.raises(cron.CronError, match=re.escape(says)):
        cron.parse(text)


@pytest.mark.parametrize(
    "text",
    ["0 1 * * *", "30 2 * * 1-5", "*/15 * * * *", "0 0 1,15 * *", "5-10/2 3 * 1,3 *"],
)
def test_render_reads_back_the_same_meaning(text: str) -> None:
    assert cron.parse(cron.render(cron.parse(text))) == cron.parse(text)


def test_render_of_a_live_calendar_with_seconds_spells_them_out() -> None:
    live = cron.from_spec(spec(second=((30, 30, 1),), hour=((1, 1, 1),)))
    assert cron.render(live) == "0 1 * * * (second 30)"
