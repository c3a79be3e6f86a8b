"""LogService against a real sqlite backend: formatting, group commits, retries, reads, purge."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Sequence

import pytest

from unkai.backends.base import LogQuery, LogRecord
from unkai.backends.sqlite.backend import SqliteBackend
from unkai.invoke.models import FunctionError, InvocationResult
from unkai.observe.logs import LogService, group_key, lambda_log_group_name
from unkai.observe.report import TIMEOUT_ERROR_TYPE

pytestmark = pytest.mark.anyio

NOW_MS = 1_714_564_800_000  # 2024-05-01T12:00:00Z


class Clock:
    def __init__(self) -> None:
        self.now_ms = NOW_MS

    def __call__(self) -> int:
        return self.now_ms


class CountingStore:
    """A LogStore in front of the real backend that counts appends and can fail some."""

    def __init__(self, inner: SqliteBackend, fail_appends: int = 0) -> None:
        self.inner = inner
        self.fail_appends = fail_appends
        self.append_calls = 0

    async def append_logs(self, records: Sequence[LogRecord]) -> None:
        self.append_calls += 1
        if self.fail_appends:
            self.fail_appends -= 1
            raise OSError("disk unplugged")
        await self.inner.append_logs(records)

    async def query_logs(self, query: LogQuery) -> list[LogRecord]:
        return await self.inner.query_logs(query)

    async def purge_logs(self, before_ms: int) -> int:
        return await self.inner.purge_logs(before_ms)


def invocation(rid: str = "r1", **changes: object) -> InvocationResult:
    result = InvocationResult(
        request_id=rid,
        payload=b"{}",
        error=None,
        duration_ms=12.5,
        max_memory_used_mb=40,
        memory_size_mb=256,
        log_text="hello\nworld\n",
    )
    for name, value in changes.items():
        setattr(result, name, value)
    return result


@contextlib.asynccontextmanager
async def started(store: SqliteBackend | CountingStore, flush_ms: int) -> AsyncIterator[LogService]:
    """A LogService with its flusher running, closed at the end of the block."""
    service = LogService(store, flush_ms=flush_ms)
    await service.start()
    try:
        yield service
    finally:
        await service.close()


async def wait_for_records(sqlite_backend: SqliteBackend, count: int) -> list[LogRecord]:
    """Poll the store (not the service, whose reads flush) until `count` records are in."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        records = await sqlite_backend.query_logs(LogQuery(limit=100_000))
        if len(records) >= count:
            return records
        await asyncio.sleep(0.005)
    raise AssertionError(f"fewer than {count} records after 5 s")


def test_group_names() -> None:
    assert group_key("dev", "hello") == "/unkai/dev/hello"
    assert lambda_log_group_name("hello") == "/aws/lambda/hello"


async def test_invocation_is_start_output_end_report(sqlite_backend: SqliteBackend) -> None:
    # Given a service with a fixed clock
    service = LogService(sqlite_backend, clock_ms=Clock())
    # When a cold, successful invocation is recorded and flushed
    result = invocation(init_duration_ms=80.0)
    service.record_invocation(stage="dev", function="f", stream="st", result=result, version="3")
    await service.flush()
    # Then the store holds one record with Lambda's lines in order, tagged with the group,
    # stream and request, stamped with the start time
    records = await sqlite_backend.query_logs(LogQuery())
    assert [r.message.split("\n") for r in records] == [
        [
            "START RequestId: r1 Version: 3",
            "hello",
            "world",
            "END RequestId: r1",
            "REPORT RequestId: r1\tDuration: 12.50 ms\tBilled Duration: 13 ms\t"
            "Memory Size: 256 MB\tMax Memory Used: 40 MB\tInit Duration: 80.00 ms\t",
        ]
    ]
    assert [(r.group, r.stream, r.request_id) for r in records] == [("/unkai/dev/f", "st", "r1")]
    assert [r.timestamp_ms for r in records] == [NOW_MS - 12]


async def test_version_defaults_to_the_executed_version(sqlite_backend: SqliteBackend) -> None:
    # Given a service
    service = LogService(sqlite_backend)
    # When an invocation without output is recorded with no version
    service.record_invocation(stage="dev", function="f", stream="s", result=invocation(log_text=""))
    await service.flush()
    # Then START names the executed version and END follows it directly
    records = await sqlite_backend.query_logs(LogQuery())
    assert len(records) == 1
    assert records[0].message.split("\n")[:2] == [
        "START RequestId: r1 Version: $LATEST",
        "END RequestId: r1",
    ]


async def test_errors_come_between_the_output_and_end(sqlite_backend: SqliteBackend) -> None:
    # Given a failed and a timed-out invocation
    service = LogService(sqlite_backend, clock_ms=Clock())
    failed = invocation("r1", error=FunctionError("ValueError", "boom", ["  File x\n"]))
    timed_out = invocation(
        "r2",
        duration_ms=3000.4,
        log_text="",
        error=FunctionError(TIMEOUT_ERROR_TYPE, "Task timed out after 3.00 seconds"),
    )
    # When both are recorded
    service.record_invocation(stage="dev", function="f", stream="s", result=failed)
    service.record_invocation(stage="dev", function="f", stream="s", result=timed_out)
    await service.flush()
    # Then each record's error block sits between its output and its END line
    records = await sqlite_backend.query_logs(LogQuery())
    assert [r.request_id for r in records] == ["r1", "r2"]
    r1_lines, r2_lines = (r.message.split("\n") for r in records)
    assert r1_lines[:7] == [
        "START RequestId: r1 Version: $LATEST",
        "hello",
        "world",
        "[ERROR] ValueError: boom",
        "Traceback (most recent call last):",
        "  File x",
        "END RequestId: r1",
    ]
    assert r1_lines[7].startswith("REPORT RequestId: r1\t") and len(r1_lines) == 8
    assert r2_lines[:3] == [
        "START RequestId: r2 Version: $LATEST",
        "2024-05-01T12:00:00.000Z r2 Task timed out after 3.00 seconds",
        "END RequestId: r2",
    ]
    assert r2_lines[3].startswith("REPORT RequestId: r2\t") and len(r2_lines) == 4


async def test_records_are_committed_within_flush_ms_in_one_append(
    sqlite_backend: SqliteBackend,
) -> None:
    # Given a started service flushing every 20 ms
    store = CountingStore(sqlite_backend)
    async with started(store, flush_ms=20) as service:
        # When 1000 invocations are recorded at once
        for i in range(1000):
            service.record_invocation(
                stage="dev", function="f", stream="s", result=invocation(f"r{i}")
            )
        # Then the flusher alone commits them, one record each, in one append and in order
        records = await wait_for_records(sqlite_backend, 1000)
        assert store.append_calls == 1
        assert [r.request_id for r in records] == [f"r{i}" for i in range(1000)]
        assert [r.id for r in records] == sorted(r.id for r in records)


async def test_after_an_idle_spell_a_record_is_still_committed(
    sqlite_backend: SqliteBackend,
) -> None:
    # Given a started service that has had nothing to commit for twenty flush periods (its
    # flusher sleeps until a record comes, rather than waking every period)
    store = CountingStore(sqlite_backend)
    async with started(store, flush_ms=5) as service:
        await asyncio.sleep(0.1)
        # When one record comes, and later another
        service.record_text(stage="dev", function="f", stream="s", message="first")
        assert [r.message for r in await wait_for_records(sqlite_backend, 1)] == ["first"]
        await asyncio.sleep(0.1)
        service.record_text(stage="dev", function="f", stream="s", message="second")
        # Then the flusher wakes for each and commits it, in one append each
        records = await wait_for_records(sqlite_backend, 2)
        assert [r.message for r in records] == ["first", "second"]
        assert store.append_calls == 2


async def test_a_failed_flush_keeps_the_records_and_retries(sqlite_backend: SqliteBackend) -> None:
    # Given a store whose first two appends fail
    store = CountingStore(sqlite_backend, fail_appends=2)
    async with started(store, flush_ms=5) as service:
        # When records are accepted before, between and after the failures
        service.record_text(stage="dev", function="f", stream="s", message="first")
        while store.append_calls < 1:
            await asyncio.sleep(0.001)
        service.record_text(stage="dev", function="f", stream="s", message="second")
        # Then all of them arrive, once each and in order
        records = await wait_for_records(sqlite_backend, 2)
        assert [r.message for r in records] == ["first", "second"]
        assert store.append_calls >= 3
    assert len(await sqlite_backend.query_logs(LogQuery())) == 2


async def test_close_flushes_everything(sqlite_backend: SqliteBackend) -> None:
    # Given a started service that would not flush on its own for 10 s
    service = LogService(sqlite_backend, flush_ms=10_000)
    await service.start()
    service.record_invocation(stage="dev", function="f", stream="s", result=invocation())
    # When it is closed (twice: close is idempotent)
    await service.close()
    await service.close()
    # Then the whole invocation is stored, once
    records = await sqlite_backend.query_logs(LogQuery())
    assert [r.request_id for r in records] == ["r1"]
    assert records[0].message.startswith("START RequestId: r1 ")
    assert records[0].message.split("\n")[-1].startswith("REPORT RequestId: r1\t")


async def test_full_buffer_refuses_new_records_and_counts_them(
    sqlite_backend: SqliteBackend,
) -> None:
    store = CountingStore(sqlite_backend, fail_appends=1)
    service = LogService(store, max_buffered_records=3)
    for i in range(5):
        service.record_text(stage="dev", function="f", stream="s", message=f"m{i}")
    with pytest.raises(OSError):
        await service.flush()
    assert service.dropped_records == 2
    await service.flush()
    assert [r.message for r in await sqlite_backend.query_logs(LogQuery())] == ["m0", "m1", "m2"]


async def test_query_sees_its_own_writes_and_filters(sqlite_backend: SqliteBackend) -> None:
    # Given invocations of two functions in two stages, not yet flushed
    clock = Clock()
    service = LogService(sqlite_backend, flush_ms=10_000, clock_ms=clock)
    for stage, function, rid in [("dev", "a", "r1"), ("dev", "b", "r2"), ("prod", "a", "r3")]:
        service.record_invocation(
            stage=stage, function=function, stream="s", result=invocation(rid)
        )
        clock.now_ms += 1000
    service.record_text(stage="dev", function="a", stream="s2", message="platform note")
    # Then queries see them, by function, by stage, and with every filter
    dev_a = await service.query(stage="dev", function="a")
    assert [r.request_id for r in dev_a] == ["r1", None] and dev_a[-1].message == "platform note"
    assert [r.request_id for r in await service.query(stage="dev")] == ["r1", "r2", None]
    assert [r.request_id for r in await service.query(stage="prod", function="a")] == ["r3"]
    by_request = await service.query(stage="dev", function="a", request_id="r1")
    assert by_request == dev_a[:1]
    started = await service.query(stage="dev", contains="START")
    assert [(r.request_id, r.message) for r in started] == [
        ("r1", "START RequestId: r1 Version: $LATEST"),
        ("r2", "START RequestId: r2 Version: $LATEST"),
    ]
    window = await service.query(stage="dev", since_ms=NOW_MS + 1, until_ms=NOW_MS + 2000)
    assert {r.request_id for r in window} == {"r2"}
    assert [r.message for r in await service.query(stage="dev", streams=("s2",))] == [
        "platform note"
    ]
    assert await service.query(stage="dev", function="a", limit=1) == dev_a[:1]
    newest = await service.query(stage="dev", function="a", limit=1, newest=True)
    assert newest == dev_a[-1:]
    assert await service.query(stage="dev", function="a", after_id=dev_a[0].id) == dev_a[1:]


async def test_contains_keeps_only_the_matching_lines_of_each_record(
    sqlite_backend: SqliteBackend,
) -> None:
    # Given an invocation whose output matches on two of its lines, one that does not match,
    # and a platform line that does
    service = LogService(sqlite_backend, clock_ms=Clock())
    service.record_invocation(
        stage="dev",
        function="f",
        stream="s",
        result=invocation("r1", log_text="hello world\nbye\nhello again\n"),
    )
    service.record_invocation(
        stage="dev", function="f", stream="s", result=invocation("r2", log_text="bye\n")
    )
    service.record_text(stage="dev", function="f", stream="s2", message="hello from unkai")
    full = await service.query(stage="dev", function="f")
    # When the records are queried for a text
    hello = await service.query(stage="dev", function="f", contains="hello")
    # Then each matching record keeps only its matching lines, in order, with its own id,
    # time, group, stream and request; the record without a match is left out
    assert hello == [
        dataclasses.replace(full[0], message="hello world\nhello again"),
        full[2],
    ]
    # And lines of different parts of one invocation are kept together, in order
    r1 = await service.query(stage="dev", function="f", contains="RequestId: r1")
    assert [r.id for r in r1] == [full[0].id]
    assert r1[0].message.split("\n") == [
        "START RequestId: r1 Version: $LATEST",
        "END RequestId: r1",
        "REPORT RequestId: r1\tDuration: 12.50 ms\tBilled Duration: 13 ms\t"
        "Memory Size: 256 MB\tMax Memory Used: 40 MB\t",
    ]
    # And a text spanning two lines matches no line (no event), so no record is returned
    # Text spanning lines cannot match one line: it matches whole records (never dropped, so a
    # cursor always advances past what the store matched)
    spanning = await service.query(stage="dev", function="f", contains="world\nbye")
    assert [r.id for r in spanning] == [full[0].id]
    assert spanning[0].message == full[0].message
    # And the stored record is untouched
    assert await service.query(stage="dev", function="f") == full
    assert full[0].message.split("\n")[1:4] == ["hello world", "bye", "hello again"]


async def test_tail_yields_only_new_records_as_they_are_committed(
    sqlite_backend: SqliteBackend,
) -> None:
    # Given a service with old records and a tail started after them
    service = LogService(sqlite_backend, flush_ms=5)
    await service.start()
    service.record_text(stage="dev", function="f", stream="s", message="old")
    await service.flush()
    tail = service.tail(stage="dev", function="f", poll_s=0.01)
    try:
        first = asyncio.ensure_future(anext(tail))
        await asyncio.sleep(0.05)  # the tail is polling; nothing new yet
        assert not first.done()
        # When new lines are recorded for this and another function
        service.record_text(stage="dev", function="other", stream="s", message="elsewhere")
        service.record_text(stage="dev", function="f", stream="s", message="new 1")
        service.record_text(stage="dev", function="f", stream="s", message="new 2")
        # Then the tail yields just this function's new lines, in order
        got = [await asyncio.wait_for(first, 5), await asyncio.wait_for(anext(tail), 5)]
        assert [r.message for r in got] == ["new 1", "new 2"]
    finally:
        await tail.aclose()
        await service.close()


async def test_tail_from_a_cursor_replays_what_follows_it(sqlite_backend: SqliteBackend) -> None:
    service = LogService(sqlite_backend)
    for i in range(3):
        service.record_text(stage="dev", function="f", stream="s", message=f"m{i}")
    await service.flush()
    first = (await service.query(stage="dev", function="f"))[0]
    tail = service.tail(stage="dev", function="f", after_id=first.id, batch_limit=1)
    try:
        assert [(await anext(tail)).message for _ in range(2)] == ["m1", "m2"]
    finally:
        await tail.aclose()


async def test_purge_removes_records_older_than_the_retention(
    sqlite_backend: SqliteBackend,
) -> None:
    clock = Clock()
    service = LogService(sqlite_backend, retention_hours=1, clock_ms=clock)
    service.record_text(stage="dev", function="f", stream="s", message="old")
    clock.now_ms += 30 * 60_000
    service.record_text(stage="dev", function="f", stream="s", message="recent")
    await service.flush()
    clock.now_ms += 45 * 60_000
    assert await service.purge_expired() == 1
    assert [r.message for r in await service.query(stage="dev", function="f")] == ["recent"]


async def test_stream_output_decodes_utf8_and_replaces_invalid_bytes(
    sqlite_backend: SqliteBackend,
) -> None:
    service = LogService(sqlite_backend)
    service.record_stream_output(
        stage="dev", function="f", stream="s", request_id="r9", data="é ok\n".encode() + b"\xff"
    )
    service.record_text(stage="dev", function="f", stream="s", message="\n")  # empty: skipped
    await service.flush()
    records = await sqlite_backend.query_logs(LogQuery())
    assert [(r.message, r.request_id) for r in records] == [("é ok\n\ufffd", "r9")]


async def test_streamed_output_comes_after_start_in_whole_lines(
    sqlite_backend: SqliteBackend,
) -> None:
    # Given a long invocation that streams its output in sends that split lines
    clock = Clock()
    service = LogService(sqlite_backend, clock_ms=clock)
    common = {"stage": "dev", "function": "f", "stream": "st", "request_id": "r9"}
    started = NOW_MS - 3000
    service.record_output(**common, version="2", started_ms=started, text="started 1\nfinis")
    clock.now_ms += 1000
    service.record_output(**common, version="2", started_ms=started, text="hed")
    service.record_output(**common, version="2", started_ms=started, text=" 1\nabout to ")
    clock.now_ms += 1000
    # When it ends with the rest of its output
    result = invocation("r9", log_text="return\n", duration_ms=2000.0)
    service.record_invocation(stage="dev", function="f", stream="st", result=result, version="2")
    await service.flush()
    # Then START comes first (at the start), each line whole, and END and REPORT last
    records = await sqlite_backend.query_logs(LogQuery())
    assert [r.message for r in records] == [
        "START RequestId: r9 Version: 2",
        "started 1",
        "finished 1",
        "about to return\nEND RequestId: r9\n" + records[-1].message.split("\n", 2)[2],
    ]
    assert records[-1].message.split("\n")[2].startswith("REPORT RequestId: r9\t")
    assert [r.timestamp_ms for r in records] == [started, NOW_MS, NOW_MS + 1000, NOW_MS + 2000]
    assert all(r.request_id == "r9" for r in records)
    # And a later invocation that streams nothing is one record again, with its START
    service.record_invocation(stage="dev", function="f", stream="st", result=invocation("r10"))
    await service.flush()
    last = (await sqlite_backend.query_logs(LogQuery()))[-1]
    assert last.message.startswith("START RequestId: r10 ")
