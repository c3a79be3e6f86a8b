"""Quota periods are UTC calendar periods: day, ISO week from Monday, month."""

from __future__ import annotations

import datetime as dt

import pytest

from unkai.access.keys import period_start


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    ("period", "moment", "start"),
    [
        ("DAY", "2026-12-01T23:59:59", "2026-12-01"),
        ("DAY", "2026-12-02T00:00:00", "2026-12-02"),
        ("WEEK", "2026-12-06T12:00:00", "2026-11-30"),  # a Sunday: its week began on Monday
        ("WEEK", "2026-12-07T00:00:00", "2026-12-07"),
        ("MONTH", "2026-12-31T23:59:59", "2026-12-01"),
        ("MONTH", "2027-01-01T00:00:00", "2027-01-01"),
    ],
)
def test_period_start(period: str, moment: str, start: str) -> None:
    assert period_start(period, at(moment)) == start


def test_the_remembered_day_is_not_reused_for_another_day() -> None:
    # Given a lookup that fills the cache, then one a day later and one a day earlier
    assert period_start("DAY", at("2026-12-01T10:00:00")) == "2026-12-01"
    assert period_start("DAY", at("2026-12-02T10:00:00")) == "2026-12-02"
    assert period_start("DAY", at("2026-11-30T10:00:00")) == "2026-11-30"
