"""LogStore conformance: ids, every LogQuery filter, cursors, purge."""

from __future__ import annotations

import asyncio

import pytest

from unkai.backends.base import Backend, LogQuery, LogRecord
from unkai.errors import ConfigError
from unkai.observe.report import InvocationFacts

pytestmark = pytest.mark.anyio

A, B, PROD_A = "/unkai/dev/a", "/unkai/dev/b", "/unkai/prod/a"


def rec(ts: int, group: str, message: str, stream: str = "s1", rid: str | None = None) -> LogRecord:
    return LogRecord(ts, group, stream, message, rid)


@pytest.fixture
async def sample(backend: Backend) -> list[LogRecord]:
    """Ten records over three groups, two streams, three request ids, ts 100..1000."""
    records = [
        rec(100, A, "START r1", rid="r1"),
        rec(200, A, "hello world", rid="r1"),
        rec(300, B, "START r2", "s2", rid="r2"),
        rec(400, A, "END r1", rid="r1"),
        rec(500, PROD_A, "hello prod", rid="r3"),
        rec(600, B, "Hello capital", "s2", rid="r2"),
        rec(700, A, "platform message"),
        rec(800, B, "100% _literal_", "s1", rid="r2"),
        rec(900, A, "multi\nline\ntext", "s2", rid="r4"),
        rec(1000, "/unkai/devx/a", "other stage", rid="r5"),
    ]
    await backend.append_logs(records)
    return records


def messages(records: list[LogRecord]) -> list[str]:
    return [r.message for r in records]


async def query(backend: Backend, **kwargs: object) -> list[str]:
    return messages(await backend.query_logs(LogQuery(**kwargs)))  # type: ignore[arg-type]


async def test_append_assigns_increasing_ids_in_order(backend: Backend) -> None:
    first = [rec(1, A, f"m{i}") for i in range(3)]
    second = [rec(0, A, f"n{i}") for i in range(2)]
    await backend.append_logs(first)
    await backend.append_logs(second)
    ids = [r.id for r in first + second]
    assert ids == sorted(ids) and len(set(ids)) == 5 and ids[0] > 0
    stored = await backend.query_logs(LogQuery())
    assert [(r.id, r.message) for r in stored] == [(r.id, r.message) for r in first + second]


async def test_append_of_nothing_is_a_no_op(backend: Backend) -> None:
    await backend.append_logs([])
    assert await backend.query_logs(LogQuery()) == []


async def test_records_round_trip_every_field(backend: Backend, sample: list[LogRecord]) -> None:
    stored = await backend.query_logs(LogQuery())
    assert stored == sample


async def test_a_large_append_keeps_its_order_and_every_field(backend: Backend) -> None:
    # Given one append larger than any single statement or batch a store may split it into
    records = [
        rec(i, A if i % 2 else B, f"line {i}", f"s{i % 3}", f"r{i}" if i % 5 else None)
        for i in range(1, 1001)
    ]
    await backend.append_logs(records)
    # Then ids are contiguous in append order and every field comes back as written
    assert [r.id for r in records] == list(range(records[0].id, records[0].id + 1000))
    stored = await backend.query_logs(LogQuery(limit=5000))
    assert stored == records


async def test_concurrent_appends_get_unique_ids(backend: Backend) -> None:
    batches = [[rec(t, A, f"{t}-{i}") for i in range(20)] for t in range(50)]
    await asyncio.gather(*(backend.append_logs(b) for b in batches))
    for batch in batches:
        assert [r.id for r in batch] == list(range(batch[0].id, batch[0].id + 20))
    stored = await backend.query_logs(LogQuery(limit=5000))
    assert sorted(r.id for b in batches for r in b) == [r.id for r in stored]


async def test_filter_by_group(backend: Backend, sample: list[LogRecord]) -> None:
    assert await query(backend, group=B) == ["START r2", "Hello capital", "100% _literal_"]


async def test_filter_by_group_prefix(backend: Backend, sample: list[LogRecord]) -> None:
    dev = await query(backend, group_prefix="/unkai/dev/")
    assert dev == messages([r for r in sample if r.group in (A, B)])
    assert await query(backend, group_prefix="/unkai/devx") == ["other stage"]
    assert len(await query(backend, group_prefix="/unkai/")) == 10


async def test_filter_by_time_range_is_inclusive(backend: Backend, sample: list[LogRecord]) -> None:
    assert await query(backend, group=A, start_ms=200, end_ms=700) == [
        "hello world",
        "END r1",
        "platform message",
    ]
    assert await query(backend, start_ms=950) == ["other stage"]
    assert await query(backend, end_ms=100) == ["START r1"]


async def test_filter_by_request_id(backend: Backend, sample: list[LogRecord]) -> None:
    assert await query(backend, request_id="r1") == ["START r1", "hello world", "END r1"]
    assert await query(backend, group=B, request_id="r1") == []


async def test_contains_is_a_case_sensitive_literal_substring(
    backend: Backend, sample: list[LogRecord]
) -> None:
    assert await query(backend, contains="hello") == ["hello world", "hello prod"]
    assert await query(backend, contains="Hello") == ["Hello capital"]
    assert await query(backend, contains="% _") == ["100% _literal_"]
    assert await query(backend, contains="_l") == ["100% _literal_"]
    assert await query(backend, contains="line\ntext") == ["multi\nline\ntext"]


async def test_filter_by_streams(backend: Backend, sample: list[LogRecord]) -> None:
    assert await query(backend, group=A, streams=("s2",)) == ["multi\nline\ntext"]
    assert len(await query(backend, streams=("s1", "s2"))) == 10
    assert await query(backend, streams=("nope",)) == []


async def test_filters_combine(backend: Backend, sample: list[LogRecord]) -> None:
    got = await query(
        backend, group_prefix="/unkai/dev/", start_ms=150, contains="o", streams=("s1",)
    )
    assert got == ["hello world", "platform message"]


async def test_after_id_pages_through_everything_once(
    backend: Backend, sample: list[LogRecord]
) -> None:
    # When a reader pages with a cursor, three at a time
    seen: list[LogRecord] = []
    cursor = 0
    while page := await backend.query_logs(LogQuery(after_id=cursor, limit=3)):
        seen.extend(page)
        cursor = page[-1].id
    # Then it saw every record once, in order
    assert seen == sample
    # And a record appended later continues after the cursor
    await backend.append_logs([rec(5, A, "late")])
    assert await query(backend, after_id=cursor) == ["late"]


async def test_limit_takes_the_oldest_and_newest_the_latest(
    backend: Backend, sample: list[LogRecord]
) -> None:
    assert await query(backend, group=A, limit=2) == ["START r1", "hello world"]
    assert await query(backend, group=A, limit=2, newest=True) == [
        "platform message",
        "multi\nline\ntext",
    ]
    assert await query(backend, group=A, newest=True, after_id=sample[3].id) == [
        "platform message",
        "multi\nline\ntext",
    ]


async def test_limit_below_1_is_rejected(backend: Backend) -> None:
    with pytest.raises(ConfigError, match="limit"):
        await backend.query_logs(LogQuery(limit=0))


async def test_purge_deletes_only_older_records(backend: Backend, sample: list[LogRecord]) -> None:
    assert await backend.purge_logs(before_ms=500) == 4
    assert [r.timestamp_ms for r in await backend.query_logs(LogQuery())] == list(
        range(500, 1001, 100)
    )
    assert await backend.purge_logs(before_ms=500) == 0


async def test_purge_of_many_records_counts_them_all(backend: Backend) -> None:
    await backend.append_logs([rec(i, A, "x") for i in range(12_345)])
    assert await backend.purge_logs(before_ms=12_000) == 12_000
    assert len(await backend.query_logs(LogQuery(limit=10_000))) == 345


async def test_ids_keep_increasing_after_everything_was_purged(
    backend: Backend, sample: list[LogRecord]
) -> None:
    await backend.purge_logs(before_ms=10**15)
    later = [rec(1, A, "after purge")]
    await backend.append_logs(later)
    assert later[0].id > sample[-1].id


async def test_a_nul_in_a_message_does_not_cut_it(backend: Backend) -> None:
    # A function printed a NUL in the middle of its output
    await backend.append_logs([rec(1, A, "before\x00after\nEND r1")])
    [stored] = await backend.query_logs(LogQuery())
    # The rest of the record (and its END line) is kept; a backend may keep the NUL or store
    # U+FFFD in its place (SQLite's JSON functions cannot carry it)
    assert stored.message in ("before\x00after\nEND r1", "before\ufffdafter\nEND r1")


async def test_a_lone_surrogate_in_a_message_fails_nothing(backend: Backend) -> None:
    # An error message with a lone surrogate (UTF-8 cannot encode it) between two good records
    records = [rec(1, A, "first"), rec(2, A, "bad \udcff end\nEND r1"), rec(3, A, "third")]
    await backend.append_logs(records)
    stored = await backend.query_logs(LogQuery())
    # Then all three are kept, the surrogate escaped (or replaced), the rest of its record intact
    assert [stored[0].message, stored[2].message] == ["first", "third"]
    assert stored[1].message.startswith("bad ") and stored[1].message.endswith(" end\nEND r1")
    assert "\udcff" not in stored[1].message
    assert [r.id for r in stored] == [r.id for r in records]


async def test_an_invocation_kept_in_parts_reads_back_as_its_text(backend: Backend) -> None:
    # Given an invocation's record in parts (as LogService records every invocation), one
    # with an error block and Init Duration, one streamed (no START), and a plain record
    facts = [
        InvocationFacts("$LATEST", "hi é\n", None, 1.5, 128, 40, 12.25),
        InvocationFacts(None, "", "[ERROR] ValueError: bad \udcff", 3.0, 256, 50, None),
    ]
    records = [
        LogRecord(1, A, "s1", "", "r1", facts=facts[0]),
        LogRecord(2, A, "s1", "plain"),
        LogRecord(3, A, "s2", "", "r2", facts=facts[1]),
    ]
    await backend.append_logs(records)
    # Then a query returns each as its text, the parts gone, with every field kept
    stored = await backend.query_logs(LogQuery())
    assert [(r.message, r.facts) for r in stored] == [
        (facts[0].text("r1"), None),
        ("plain", None),
        (facts[1].text("r2").replace("\udcff", "\\udcff"), None),
    ]
    assert stored[0].message.startswith("START RequestId: r1 Version: $LATEST\nhi é\nEND")
    assert [(r.id, r.timestamp_ms, r.stream, r.request_id) for r in stored] == [
        (r.id, r.timestamp_ms, r.stream, r.request_id) for r in records
    ]
    # And filters see the text: its lines, its request id
    assert await query(backend, contains="Init Duration: 12.25 ms") == [stored[0].message]
    assert await query(backend, request_id="r2") == [stored[2].message]
