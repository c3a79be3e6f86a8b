"""Quota counters of ended periods are deleted, from memory and from the real sqlite store."""

from __future__ import annotations

import datetime as dt

import pytest

from unkai.access.keys import QUOTA_KIND, KeyService
from unkai.backends.sqlite.backend import SqliteBackend

pytestmark = pytest.mark.anyio


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


async def stored_counters(sqlite_backend: SqliteBackend) -> dict[str, int]:
    return {doc.key: doc.value["used"] for doc in await sqlite_backend.list(QUOTA_KIND)}


async def test_counters_of_ended_periods_are_deleted_on_a_new_day(
    sqlite_backend: SqliteBackend,
) -> None:
    # Given a key counted against a day, a week and a month quota on Wednesday 2026-12-30
    keys = KeyService(sqlite_backend)
    keys.now = lambda: at("2026-12-30T10:00:00")
    record, _ = await keys.create("dev", "k1", "plan")
    for period in ("DAY", "WEEK", "MONTH"):
        assert keys.consume(record, period.lower(), 100, period)
    await keys.flush()
    assert len(await stored_counters(sqlite_backend)) == 3

    # When the next day, in the same week but a new month, counts again and flushes
    keys.now = lambda: at("2027-01-01T09:00:00")
    assert keys.consume(record, "day", 100, "DAY")
    await keys.flush()

    # Then only the week's counter and the new day's remain, stored and in memory
    assert await stored_counters(sqlite_backend) == {
        f"{record.id}/week/2026-12-28": 1,
        f"{record.id}/day/2027-01-01": 1,
    }
    assert keys.usage(record, "week", "WEEK") == 1
    assert keys.usage(record, "month", "MONTH") == 0
    assert sorted(c[2] for c in keys._used) == ["2026-12-28", "2027-01-01"]


async def test_counters_loaded_at_start_are_pruned_and_counting_goes_on(
    sqlite_backend: SqliteBackend,
) -> None:
    # Given counters stored by an earlier run, one of them from the month before
    first = KeyService(sqlite_backend)
    first.now = lambda: at("2027-01-31T23:00:00")
    record, _ = await first.create("dev", "k1", "plan")
    assert first.consume(record, "plan", 5, "DAY")
    await first.flush()
    first.now = lambda: at("2027-02-01T08:00:00")
    assert first.consume(record, "plan", 5, "DAY")
    first._pruned_day = "2027-02-01"  # as if this day's prune had already run: it keeps both
    await first.flush()
    assert len(await stored_counters(sqlite_backend)) == 2

    # When a new service starts from the store on that day and flushes with nothing counted
    second = KeyService(sqlite_backend)
    second.now = lambda: at("2027-02-01T09:00:00")
    await second.start()
    try:
        await second.flush()
        # Then January's counter is gone and today's usage is intact
        assert await stored_counters(sqlite_backend) == {f"{record.id}/plan/2027-02-01": 1}
        assert second.usage(record, "plan", "DAY") == 1
        assert second.consume(record, "plan", 2, "DAY")
        assert not second.consume(record, "plan", 2, "DAY")
    finally:
        await second.close()
