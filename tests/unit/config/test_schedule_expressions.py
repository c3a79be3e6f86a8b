"""EventBridge rate() and six-field cron() expressions, with time zones."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from unkai.config.schedule_expressions import ScheduleError, next_run, validate

UTC = dt.UTC


def at(text: str, zone: str = "UTC") -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=zoneinfo.ZoneInfo(zone))


@pytest.mark.parametrize(
    ("expression", "zone", "after", "expected_utc"),
    [
        ("rate(5 minutes)", "UTC", "2026-12-01T10:00:00", "2026-12-01T10:05:00"),
        ("rate(1 day)", "UTC", "2026-12-01T10:00:00", "2026-12-02T10:00:00"),
        # 12:00 every weekday (MON-FRI), Paris time: 11:00 UTC in winter
        ("cron(0 12 ? * MON-FRI *)", "Europe/Paris", "2026-12-05T00:00:00", "2026-12-07T11:00:00"),
        # AWS counts day-of-week from Sunday = 1: 2 is Monday
        ("cron(30 6 ? * 2 *)", "UTC", "2026-12-01T00:00:00", "2026-12-07T06:30:00"),
        ("cron(0 9 L * ? *)", "UTC", "2026-12-01T00:00:00", "2026-12-31T09:00:00"),
        ("cron(0 9 ? * 6#2 *)", "UTC", "2026-12-01T00:00:00", "2026-12-11T09:00:00"),
        ("cron(0 0 1 1 ? 2028)", "UTC", "2026-12-01T00:00:00", "2028-01-01T00:00:00"),
    ],
)
def test_next_run(expression: str, zone: str, after: str, expected_utc: str) -> None:
    got = next_run(expression, zone, at(after, zone))
    assert got == at(expected_utc).astimezone(UTC)


@pytest.mark.parametrize(
    ("expression", "zone", "problem"),
    [
        ("rate(0 minutes)", "UTC", "positive"),
        ("rate(1 minutes)", "UTC", "say '1 minute'"),
        ("rate(5 weeks)", "UTC", "neither"),
        ("cron(0 12 * * ?)", "UTC", "6 fields"),
        ("cron(0 12 * * MON *)", "UTC", "must be '?'"),
        ("cron(0 12 15W * ? *)", "UTC", "not supported"),
        ("cron(0 12 ? * 9 *)", "UTC", "1-7"),
        ("rate(5 minutes)", "Mars/Olympus", "unknown time zone"),
        # AWS's years are 1970-2199; a huge range is refused, not expanded
        ("cron(0 0 1 1 ? 2026-999999999)", "UTC", "between 1970 and 2199"),
        ("cron(0 0 1 1 ? 1969)", "UTC", "between 1970 and 2199"),
        ("cron(0 0 1 1 ? 2026/0)", "UTC", "at least 1"),
    ],
)
def test_invalid_expressions_name_the_problem(expression: str, zone: str, problem: str) -> None:
    with pytest.raises(ScheduleError, match=problem):
        validate(expression, zone)


def test_year_fields_jump_to_the_years_they_allow_and_end() -> None:
    after = at("2026-12-01T00:00:00")
    assert next_run("cron(0 * * * ? 2028)", "UTC", after) == at("2028-01-01T00:00:00")
    assert next_run("cron(0 0 1 1 ? 2026/2)", "UTC", after) == at("2028-01-01T00:00:00")
    assert next_run("cron(0 12 * * ? 2026)", "UTC", at("2026-12-31T13:00:00")) is None
    with pytest.raises(ScheduleError, match="no run in the future"):
        validate("cron(0 12 * * ? 2020)")


def test_day_of_week_lists_and_nth_are_shifted_item_by_item() -> None:
    # 2#1 is the first Monday, 6#3 the third Friday (AWS counts Sunday as 1)
    assert next_run("cron(0 9 ? * 2#1,6#3 *)", "UTC", at("2026-12-01T00:00:00")) == at(
        "2026-12-07T09:00:00"
    )
    with pytest.raises(ScheduleError, match="'L' in day-of-week"):
        validate("cron(0 9 ? * 6L *)")
