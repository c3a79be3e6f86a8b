"""The LogStore on blocks: appends, filtered queries and the purge, for the sqlite backend.

An append writes its records as blocks (log_blocks.py) to the segment files (log_files.py) and
one index row per block to `log_blocks` (schema.sql), in the writer's transaction. Ids: the
writer is the only writer of the file and appends run inside its transaction, so the ids of
one append are `seq + 1 .. seq + n`, where `seq` is the AUTOINCREMENT high-water mark of
`log_blocks` read in the same transaction; a block's row key is its last id, which moves the
mark past every id given.

A query picks candidate blocks by the index (group, id cursor, time bounds, request id), reads
them, and filters their records exactly. A purge deletes blocks whose records are all past the
cutoff, and rewrites a block that straddles it without its older records (they keep their ids).
"""

from __future__ import annotations

import logging
import sqlite3
import zlib
from collections.abc import Sequence

from unkai.backends.base import LogQuery, LogRecord
from unkai.backends.sqlite import log_blocks
from unkai.backends.sqlite.log_files import LogFiles

log = logging.getLogger(__name__)

#: Records per block; an append of more is written as several. A query that wants one record
#: of a block also reads the whole block. (When the writer thread encoded blocks, holding the
#: GIL, 1024 put 0.4-0.7 ms more on the loop's p99 lag than 256, docs/benchmarks.md session
#: 8; the loop encodes them now, log_blocks.encode.)
BLOCK_RECORDS = 256
#: Blocks purged (deleted or rewritten) per transaction: other writes queued behind a purge of
#: millions of records wait milliseconds, not seconds.
PURGE_CHUNK_BLOCKS = 64

_LAST_ID = "SELECT seq FROM sqlite_sequence WHERE name = 'log_blocks'"
_INSERT_BLOCK = (
    "INSERT INTO log_blocks (last_id, min_ts, max_ts, records, segment, position, length, crc,"
    " groups, request_ids) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_GROUP = "INSERT OR IGNORE INTO log_block_groups (log_group, last_id) VALUES (?, ?)"
_BLOCK_COLUMNS = "b.last_id, b.segment, b.position, b.length, b.crc"


def append(conn: sqlite3.Connection, files: LogFiles, blocks: Sequence[log_blocks.Block]) -> int:
    """Write `blocks` (from log_blocks.encode, of up to BLOCK_RECORDS records each) in order;
    returns the id given to their first record (the rest follow)."""
    row = conn.execute(_LAST_ID).fetchone()
    first_id: int = (row[0] if row else 0) + 1
    begin = first_id
    for block in blocks:
        end = begin + len(block.records)
        _write_block(conn, files, block, range(begin, end), end - 1)
        begin = end
    return first_id


def _write_block(
    conn: sqlite3.Connection,
    files: LogFiles,
    block: log_blocks.Block,
    ids: Sequence[int],
    key: int,
) -> None:
    """Append `block` (its records with `ids`) to the files and index it under `key`."""
    data = block.data(ids)
    segment, position = files.append(data)
    conn.execute(
        _INSERT_BLOCK,
        (
            key,
            block.min_ts,
            block.max_ts,
            len(block.records),
            segment,
            position,
            len(data),
            zlib.crc32(data),
            log_blocks.groups_text(block.groups),
            log_blocks.request_ids_text(block.request_ids),
        ),
    )
    conn.executemany(_INSERT_GROUP, [(group, key) for group in block.groups])


def query(conn: sqlite3.Connection, files: LogFiles, q: LogQuery) -> list[LogRecord]:
    """Matching records in ascending id order (the newest `limit` when `q.newest`)."""
    sql, args = _block_select(conn, q)
    if sql is None:
        return []
    found: list[LogRecord] = []
    for key, segment, position, length, crc in conn.execute(sql, args):
        records = _read_block(files, key, segment, position, length, crc)
        if q.newest:
            records.reverse()
        for record in records:
            if _matches(record, q):
                found.append(record)
                if len(found) >= q.limit:
                    break
        else:
            continue
        break
    if q.newest:
        found.reverse()
    return found


def _block_select(conn: sqlite3.Connection, q: LogQuery) -> tuple[str | None, list[object]]:
    """The SELECT of the blocks that may hold a match of `q`, in id order (None: none can)."""
    where = ["b.last_id > ?"]
    args: list[object] = [q.after_id]
    if q.start_ms is not None:
        # Blocks are written in time order, but their records are dated by when each
        # invocation started: the first block with a record at or after the start bounds the
        # id range from below.
        (floor,) = conn.execute(
            "SELECT min(last_id) FROM log_blocks WHERE max_ts >= ?", (q.start_ms,)
        ).fetchone()
        if floor is None:
            return None, []
        where += ("b.last_id >= ?", "b.max_ts >= ?")
        args += (floor, q.start_ms)
    if q.end_ms is not None:
        where.append("b.min_ts <= ?")
        args.append(q.end_ms)
    if q.request_id is not None:
        where.append("instr(b.request_ids, ?) > 0")
        args.append(f"\n{q.request_id}\n")
    if q.group_prefix:
        where.append("instr(b.groups, ?) > 0")
        args.append(f"\n{q.group_prefix}")
    order = "DESC" if q.newest else "ASC"
    if q.group is not None:
        where.insert(0, "g.log_group = ?")
        args.insert(0, q.group)
        source = "log_block_groups g JOIN log_blocks b ON b.last_id = g.last_id"
        order_by = f"g.last_id {order}"
    else:
        source = "log_blocks b"
        order_by = f"b.last_id {order}"
    sql = f"SELECT {_BLOCK_COLUMNS} FROM {source} WHERE {' AND '.join(where)} ORDER BY {order_by}"
    return sql, args


def _read_block(
    files: LogFiles,
    key: int,
    segment: int,
    position: int,
    length: int,
    crc: int,
) -> list[LogRecord]:
    """A block's records; none, with a warning, when it cannot be read back whole."""
    data = files.read(segment, position, length)
    if data is None:
        log.warning("log block %d: its segment %d is gone; skipped", key, segment)
        return []
    if len(data) != length or zlib.crc32(data) != crc:
        log.warning("log block %d in segment %d does not read back whole; skipped", key, segment)
        return []
    try:
        return list(log_blocks.decode(data))
    except log_blocks.CorruptBlock as exc:
        log.warning("log block %d in segment %d does not parse (%s); skipped", key, segment, exc)
        return []


def _matches(r: LogRecord, q: LogQuery) -> bool:
    """Whether a record of a candidate block matches every filter of `q` (all ANDed; both time
    bounds inclusive, as CloudWatch Logs' FilterLogEvents startTime/endTime)."""
    return (
        r.id > q.after_id
        and (q.group is None or r.group == q.group)
        and (not q.group_prefix or r.group.startswith(q.group_prefix))
        and (q.start_ms is None or r.timestamp_ms >= q.start_ms)
        and (q.end_ms is None or r.timestamp_ms <= q.end_ms)
        and (q.request_id is None or r.request_id == q.request_id)
        and (q.contains is None or q.contains in r.message)
        and (not q.streams or r.stream in q.streams)
    )


def purge_chunk(conn: sqlite3.Connection, files: LogFiles, before_ms: int) -> tuple[int, bool]:
    """Purge up to PURGE_CHUNK_BLOCKS blocks with records older than `before_ms`; returns how
    many records went and whether more blocks may have such records."""
    rows = conn.execute(
        "SELECT last_id, max_ts, records, segment, position, length, crc FROM log_blocks"
        " WHERE min_ts < ? ORDER BY min_ts LIMIT ?",
        (before_ms, PURGE_CHUNK_BLOCKS),
    ).fetchall()
    deleted = 0
    for key, max_ts, count, segment, position, length, crc in rows:
        survivors = []
        if max_ts >= before_ms:
            records = _read_block(files, key, segment, position, length, crc)
            survivors = [r for r in records if r.timestamp_ms >= before_ms]
        conn.execute("DELETE FROM log_blocks WHERE last_id = ?", (key,))
        conn.execute("DELETE FROM log_block_groups WHERE last_id = ?", (key,))
        if survivors:
            block = log_blocks.encode(survivors)
            _write_block(conn, files, block, [r.id for r in survivors], key)
        deleted += count - len(survivors)
    return deleted, len(rows) == PURGE_CHUNK_BLOCKS


def used_segments(conn: sqlite3.Connection) -> list[int]:
    """The segments some block still lives in."""
    return [row[0] for row in conn.execute("SELECT DISTINCT segment FROM log_blocks")]


def migrate_rows(conn: sqlite3.Connection, files: LogFiles) -> bool:
    """Move up to BLOCK_RECORDS records of the `logs` table of layout 1 (one row per record)
    into blocks, keeping their ids; drops the table once empty. Returns whether rows remain."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'logs'"
    ).fetchone()
    if exists is None:
        return False
    rows = conn.execute(
        "SELECT id, timestamp_ms, log_group, stream, request_id, message FROM logs"
        " ORDER BY id LIMIT ?",
        (BLOCK_RECORDS,),
    ).fetchall()
    if not rows:
        (seq,) = conn.execute(
            "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name IN ('logs', 'log_blocks')"
        ).fetchone()
        conn.execute("DELETE FROM sqlite_sequence WHERE name = 'log_blocks'")
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('log_blocks', ?)", (seq,))
        conn.execute("DROP TABLE logs")
        return False
    records = [LogRecord(ts, grp, stream, msg, rid, id_) for id_, ts, grp, stream, rid, msg in rows]
    block = log_blocks.encode(records)
    _write_block(conn, files, block, [r.id for r in records], records[-1].id)
    conn.execute("DELETE FROM logs WHERE id <= ?", (records[-1].id,))
    return True
