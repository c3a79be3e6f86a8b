"""The LogStore's SQL: append with contiguous ids, filtered queries, chunked purge.

Ids: the writer is the only process-wide writer and appends run inside its transaction, so the
ids of one append are `seq + 1 .. seq + n` where `seq` is the table's AUTOINCREMENT high-water
mark read in the same transaction. Inserting explicit ids moves the high-water mark, so ids
never repeat, even after a purge empties the table (schema.sql explains why that matters).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence

from unkai.backends.base import LogQuery, LogRecord
from unkai.backends.sqlite.documents import prefix_upper_bound

_LAST_ID = "SELECT seq FROM sqlite_sequence WHERE name = 'logs'"
#: Rows per INSERT statement: 6 parameters each stays under 999, the lowest limit any SQLite
#: build has had (SQLITE_MAX_VARIABLE_NUMBER before 3.32).
ROWS_PER_INSERT = 160
#: An append binds its rows to multi-row INSERTs of up to ROWS_PER_INSERT rows: sqlite runs each
#: statement with the GIL released once, where `executemany` takes the GIL back for every row
#: and so stalls the event loop thread a little per row (measured: 26 vs 49 us per row under a
#: busy main thread, and the longest main-thread stall 8 vs 22 ms). Bound parameters also cost
#: less than the JSON array parsed by `json_each` used before (4.7 against 7.4 us per record
#: with all three indexes, docs/benchmarks.md).
_INSERT_HEAD = "INSERT INTO logs (id, timestamp_ms, log_group, stream, request_id, message) VALUES "
_COLUMNS = "id, timestamp_ms, log_group, stream, request_id, message"
#: Rows deleted per purge transaction: small enough that other writes queued behind a purge of
#: millions of rows wait milliseconds, not seconds.
PURGE_CHUNK_ROWS = 5000
_PURGE = (
    "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE timestamp_ms < ? LIMIT "
    f"{PURGE_CHUNK_ROWS})"
)


@functools.cache
def _insert(rows: int) -> str:
    return _INSERT_HEAD + ",".join(["(?,?,?,?,?,?)"] * rows)


def append(conn: sqlite3.Connection, records: Sequence[LogRecord]) -> int:
    """Insert `records` in order; returns the id given to the first (the rest follow it)."""
    row = conn.execute(_LAST_ID).fetchone()
    first_id: int = (row[0] if row else 0) + 1
    for start in range(0, len(records), ROWS_PER_INSERT):
        chunk = records[start : start + ROWS_PER_INSERT]
        params: list[object] = []
        for i, r in enumerate(chunk, first_id + start):
            params += (i, r.timestamp_ms, r.group, r.stream, r.request_id, _storable(r.message))
        conn.execute(_insert(len(chunk)), params)
    return first_id


def _storable(message: str) -> str:
    """A NUL a function printed is stored as U+FFFD, as other undecodable output is
    (docs/runtime.md): SQLite's string and JSON functions end a string at U+0000, so a filter
    or an export could see a record cut there, END and REPORT included. A lone surrogate (from
    an error message, say), which UTF-8 cannot encode, becomes a backslash escape, as in
    printed output: binding it would fail the whole append, and every flush after it."""
    if "\x00" in message:
        message = message.replace("\x00", "\ufffd")
    if not message.isascii():
        try:
            message.encode()
        except UnicodeEncodeError:
            message = message.encode("utf-8", "backslashreplace").decode()
    return message


def purge_chunk(conn: sqlite3.Connection, before_ms: int) -> int:
    """Delete up to PURGE_CHUNK_ROWS records older than `before_ms`; returns how many."""
    return conn.execute(_PURGE, (before_ms,)).rowcount


def query(conn: sqlite3.Connection, q: LogQuery) -> list[LogRecord]:
    sql, args = build_select(q)
    rows = conn.execute(sql, args).fetchall()
    if q.newest:
        rows.reverse()
    return [LogRecord(ts, grp, stream, msg, rid, id_) for id_, ts, grp, stream, rid, msg in rows]


def build_select(q: LogQuery) -> tuple[str, list[object]]:
    """The SELECT for `q`: every filter is ANDed; `newest` scans backwards from the end.

    Time bounds are both inclusive, as CloudWatch Logs' FilterLogEvents startTime/endTime.
    `contains` uses instr() because LIKE is case-insensitive for ASCII and treats % and _.
    """
    where = ["id > ?"]
    args: list[object] = [q.after_id]
    _group_filter(q, where, args)
    if q.streams:
        where.append(f"stream IN ({', '.join('?' * len(q.streams))})")
        args.extend(q.streams)
    for clause, value in (
        ("timestamp_ms >= ?", q.start_ms),
        ("timestamp_ms <= ?", q.end_ms),
        ("request_id = ?", q.request_id),
        ("instr(message, ?) > 0", q.contains),
    ):
        if value is not None:
            where.append(clause)
            args.append(value)
    order = "DESC" if q.newest else "ASC"
    args.append(q.limit)
    sql = f"SELECT {_COLUMNS} FROM logs WHERE {' AND '.join(where)} ORDER BY id {order} LIMIT ?"
    return sql, args


def _group_filter(q: LogQuery, where: list[str], args: list[object]) -> None:
    if q.group is not None:
        where.append("log_group = ?")
        args.append(q.group)
    if q.group_prefix:
        where.append("log_group >= ?")
        args.append(q.group_prefix)
        upper = prefix_upper_bound(q.group_prefix)
        if upper is not None:
            where.append("log_group < ?")
            args.append(upper)
