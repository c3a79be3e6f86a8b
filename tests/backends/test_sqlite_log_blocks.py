"""The sqlite backend's log blocks: segment files, their purge, damaged blocks, and the move
of layout 1's one-row-per-record table into blocks."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from unkai.backends.base import LogQuery, LogRecord
from unkai.backends.sqlite import log_blocks, logs
from unkai.backends.sqlite.backend import SqliteBackend
from unkai.observe.report import InvocationFacts

pytestmark = pytest.mark.anyio

A, B = "/unkai/dev/a", "/unkai/dev/b"


@pytest.fixture
async def small_segments(tmp_path: Path) -> AsyncIterator[SqliteBackend]:
    backend = SqliteBackend(tmp_path / "unkai.db", log_segment_bytes=4096)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


def records(count: int, *, ts: int = 0, group: str = A) -> list[LogRecord]:
    return [
        LogRecord(ts + i, group, "s", f"line {ts + i} " + "x" * 200, f"r{ts + i}")
        for i in range(count)
    ]


async def test_appends_fill_segments_in_turn_and_purges_delete_the_unused_ones(
    small_segments: SqliteBackend,
) -> None:
    # Given ten appends of 40 records (about 10 KB each) into 4 KB segments
    for n in range(10):
        await small_segments.append_logs(records(40, ts=n * 100))
    files = small_segments.log_files
    assert len(files.segments()) == 10
    # When the first half is past retention: the purge deletes their records at once
    assert await small_segments.purge_logs(before_ms=500) == 200
    left = await small_segments.query_logs(LogQuery(limit=1000))
    assert [r.timestamp_ms for r in left] == [
        t for n in range(5, 10) for t in range(n * 100, n * 100 + 40)
    ]
    # And their segments at the next purge (a query may still read the ones this one emptied)
    assert len(files.segments()) == 10
    assert await small_segments.purge_logs(before_ms=500) == 0
    assert len(files.segments()) == 5
    assert await small_segments.query_logs(LogQuery(limit=1000)) == left


async def test_a_query_reading_across_a_purge_still_finds_the_records_it_kept(
    tmp_path: Path,
) -> None:
    # Given a block straddling the cutoff in segment 1, and a newer block in segment 2
    backend = SqliteBackend(tmp_path / "unkai.db", log_segment_bytes=1000)
    await backend.open()
    try:
        await backend.append_logs(records(10, ts=0))
        await backend.append_logs(records(1, ts=100))
        assert backend.log_files.segments() == [1, 2]
        # When a query's read snapshot began before a purge that rewrites that block
        reader = sqlite3.connect(tmp_path / "unkai.db", isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM log_blocks").fetchone()
        assert await backend.purge_logs(before_ms=5) == 5
        got = logs.query(reader, backend.log_files, LogQuery())
        reader.execute("COMMIT")
        reader.close()
        # Then it still reads every record of its snapshot, the rewritten ones included
        assert [r.timestamp_ms for r in got] == [*range(10), 100]
        fresh = await backend.query_logs(LogQuery())
        assert [r.timestamp_ms for r in fresh] == [5, 6, 7, 8, 9, 100]
    finally:
        await backend.close()


async def test_two_processes_on_one_file_keep_each_other_s_records(tmp_path: Path) -> None:
    # Two backends on one database stand for two processes (each has its own segment files'
    # state); SQLite lets both write, one at a time
    first = SqliteBackend(tmp_path / "unkai.db", log_segment_bytes=600)
    second = SqliteBackend(tmp_path / "unkai.db", log_segment_bytes=600)
    await first.open()
    await second.open()
    try:
        for n in range(6):
            await (first if n % 2 else second).append_logs(records(2, ts=n * 10))
        got = await first.query_logs(LogQuery())
        assert [r.timestamp_ms for r in got] == [n * 10 + i for n in range(6) for i in range(2)]
        assert [r.message for r in got] == [
            r.message for n in range(6) for r in records(2, ts=n * 10)
        ]
    finally:
        await first.close()
        await second.close()


async def test_a_block_straddling_the_cutoff_keeps_its_newer_records_and_their_ids(
    small_segments: SqliteBackend,
) -> None:
    batch = records(10)
    await small_segments.append_logs(batch)
    assert await small_segments.purge_logs(before_ms=4) == 4
    kept = await small_segments.query_logs(LogQuery())
    assert [(r.id, r.timestamp_ms) for r in kept] == [(r.id, r.timestamp_ms) for r in batch[4:]]
    # And the rewritten block still answers every filter
    assert [r.message for r in await small_segments.query_logs(LogQuery(request_id="r7"))] == [
        batch[7].message
    ]
    assert len(await small_segments.query_logs(LogQuery(group=A, start_ms=4, end_ms=6))) == 3


async def test_a_damaged_block_is_skipped_with_a_warning_and_the_others_still_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = SqliteBackend(tmp_path / "unkai.db")
    await backend.open()
    try:
        await backend.append_logs(records(3, ts=0))
        await backend.append_logs(records(3, ts=10))
        await backend.append_logs(records(3, ts=20))
        # When the middle block's bytes are overwritten on disk (an OS crash, a bad disk)
        [segment] = backend.log_files.segments()
        path = backend.log_files.directory / f"{segment:012d}.log"
        data = bytearray(path.read_bytes())
        middle = data.index(b"line 11 ")
        data[middle : middle + 4] = b"XXXX"
        path.write_bytes(bytes(data))
        with caplog.at_level(logging.WARNING, "unkai.backends.sqlite.logs"):
            got = await backend.query_logs(LogQuery())
        # Then the other two blocks come back, and the log says which block was skipped
        assert [r.timestamp_ms for r in got] == [0, 1, 2, 20, 21, 22]
        assert "does not read back whole; skipped" in caplog.text
    finally:
        await backend.close()


LAYOUT_1 = """
CREATE TABLE logs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp_ms INTEGER NOT NULL,
    log_group    TEXT    NOT NULL,
    stream       TEXT    NOT NULL,
    request_id   TEXT,
    message      TEXT    NOT NULL
);
CREATE INDEX logs_by_group_id ON logs (log_group, id);
CREATE INDEX logs_by_request_id ON logs (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX logs_by_time ON logs (timestamp_ms);
PRAGMA user_version = 1;
"""


async def test_records_of_layout_1_move_into_blocks_with_their_ids(tmp_path: Path) -> None:
    # Given a file of the one-row-per-record layout, 2,500 records with ids 1..2500, and the
    # newest 100 already deleted (the id high-water mark stays at 2500)
    path = tmp_path / "unkai.db"
    conn = sqlite3.connect(path)
    conn.executescript(LAYOUT_1)
    conn.executemany(
        "INSERT INTO logs (timestamp_ms, log_group, stream, request_id, message)"
        " VALUES (?, ?, ?, ?, ?)",
        [(i, A if i % 2 else B, "s", f"r{i}" if i % 3 else None, f"m{i}") for i in range(2500)],
    )
    conn.execute("DELETE FROM logs WHERE id > 2400")
    conn.commit()
    conn.close()
    # When the backend opens it
    backend = SqliteBackend(path)
    await backend.open()
    try:
        # Then every record is there with its id and fields, and the old table is gone
        got = await backend.query_logs(LogQuery(limit=5000))
        assert [(r.id, r.timestamp_ms, r.message) for r in got] == [
            (i + 1, i, f"m{i}") for i in range(2400)
        ]
        assert got[4].request_id == "r4" and got[3].request_id is None and got[4].group == B
        assert await backend.query_logs(LogQuery(request_id="r1000")) == [got[1000]]
        # And new records continue after the old high-water mark
        later = [LogRecord(1, A, "s", "later")]
        await backend.append_logs(later)
        assert later[0].id == 2501
    finally:
        await backend.close()
    conn = sqlite3.connect(path)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "logs" not in tables and "log_blocks" in tables


async def test_a_lone_surrogate_in_a_group_or_request_id_fails_no_append(
    small_segments: SqliteBackend,
) -> None:
    odd = [
        LogRecord(1, "/unkai/dev/\udcff", "s", "odd group"),
        LogRecord(2, A, "s", "x", "r\udcff"),
    ]
    await small_segments.append_logs(odd)
    await small_segments.append_logs(records(1, ts=3))
    got = await small_segments.query_logs(LogQuery())
    assert [r.message for r in got] == ["odd group", "x", records(1, ts=3)[0].message]
    assert got[0].group == "/unkai/dev/\\udcff" and got[1].request_id == "r\\udcff"


def test_a_block_encoded_without_ids_reads_back_with_the_ids_the_writer_puts_in() -> None:
    warm = InvocationFacts("3", "", None, 1.5, 256, 40, None)
    cold = InvocationFacts("3", "hi\n", None, 2.0, 256, 41, 12.5)
    batch = [
        LogRecord(10, A, "s1", "", "r1", facts=warm),
        LogRecord(12, B, "s2", "plain text", None),
        LogRecord(11, A, "s1", "", "r2", facts=cold),
    ]
    block = log_blocks.encode(batch)
    assert (block.min_ts, block.max_ts) == (10, 12)
    assert block.groups == [A, B]
    assert block.request_ids == ["r1", "r2"]
    got = list(log_blocks.decode(block.data([7, 9, 30])))
    assert [r.id for r in got] == [7, 9, 30]
    assert [r.group for r in got] == [A, B, A]
    assert got[0].message == warm.text("r1")
    assert got[1].message == "plain text" and got[1].request_id is None
    assert got[2].message == cold.text("r2")
    with pytest.raises(ValueError):
        block.data([1, 2])


async def test_one_append_over_several_blocks_keeps_its_ids_in_order(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "unkai.db")
    await backend.open()
    try:
        await backend.append_logs(records(1))
        # Given one append of more records than two blocks hold, in two groups
        batch = records(2 * logs.BLOCK_RECORDS + 10, ts=10)
        for record in batch[::3]:
            record.group = B
        await backend.append_logs(batch)
        # Then its ids follow the earlier append's, one by one, across its three blocks
        assert [r.id for r in batch] == list(range(2, len(batch) + 2))
        blocks = await asyncio.to_thread(_index_rows, tmp_path / "unkai.db")
        assert [count for _, count in blocks] == [1, logs.BLOCK_RECORDS, logs.BLOCK_RECORDS, 10]
        got = await backend.query_logs(LogQuery(group=B, limit=10_000))
        assert [(r.id, r.message) for r in got] == [(r.id, r.message) for r in batch[::3]]
    finally:
        await backend.close()


def _index_rows(path: Path) -> list[tuple[int, int]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT last_id, records FROM log_blocks ORDER BY last_id").fetchall()
