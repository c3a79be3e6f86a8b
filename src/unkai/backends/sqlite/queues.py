"""The QueueStore's SQL: plain functions of a connection, each run as one writer job.

A receive is a write (it moves the message's visibility and receipt), so every function here
runs on the writer thread and commits with its group: a thousand concurrent receives and
deletes cost one commit, not a thousand. Layout and indexes: schema.sql (`queue_messages`,
`queue_dedup`).
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from unkai.backends.base import (
    NewMessage,
    QueueCounts,
    QueuedMessage,
    ReceiveRequest,
    SentMessage,
)

_INSERT = (
    "INSERT INTO queue_messages (queue, message_id, body, attributes, sent_ms, visible_ms, "
    "group_id, dedup_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_DEDUP_GET = (
    "SELECT message_id, sequence, expires_ms FROM queue_dedup WHERE queue = ? AND dedup_id = ?"
)
_DEDUP_PUT = (
    "INSERT INTO queue_dedup (queue, dedup_id, message_id, sequence, expires_ms) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (queue, dedup_id) DO UPDATE SET "
    "message_id = excluded.message_id, sequence = excluded.sequence, "
    "expires_ms = excluded.expires_ms"
)
_COLUMNS = (
    "id, message_id, body, attributes, sent_ms, receive_count, first_receive_ms, group_id, dedup_id"
)
_VISIBLE = (
    f"SELECT {_COLUMNS} FROM queue_messages WHERE queue = ? AND visible_ms <= ? "
    "ORDER BY visible_ms LIMIT ?"
)
_FIFO_SCAN = (
    "SELECT id, group_id, visible_ms, receive_count, sent_ms FROM queue_messages "
    "WHERE queue = ? ORDER BY id"
)
_BY_ID = f"SELECT {_COLUMNS} FROM queue_messages WHERE id = ?"
_TAKE = (
    "UPDATE queue_messages SET visible_ms = ?, receive_count = receive_count + 1, "
    "first_receive_ms = coalesce(first_receive_ms, ?), receipt = ? WHERE id = ?"
)
_MOVE_ONE = (
    "UPDATE queue_messages SET queue = ?, visible_ms = ?, receive_count = 0, "
    "first_receive_ms = NULL, receipt = NULL WHERE id = ?"
)
#: A FIFO queue's message moved to its dead-letter queue starts its retention again there
#: (SQS resets the enqueue timestamp for FIFO queues; a standard queue's keeps the original).
_MOVE_ONE_RESTARTED = (
    "UPDATE queue_messages SET queue = ?, visible_ms = ?, sent_ms = ?, receive_count = 0, "
    "first_receive_ms = NULL, receipt = NULL WHERE id = ?"
)
_RETURN = (
    "UPDATE queue_messages SET visible_ms = ?, receive_count = max(receive_count - 1, 0), "
    "receipt = NULL WHERE id = ? AND queue = ? AND receipt = ? AND visible_ms > ?"
)
_DELETE_ONE = "DELETE FROM queue_messages WHERE id = ?"
_DELETE_BY_RECEIPT = "DELETE FROM queue_messages WHERE id = ? AND queue = ? AND receipt = ?"
_CHANGE_VISIBILITY = (
    "UPDATE queue_messages SET visible_ms = ? "
    "WHERE id = ? AND queue = ? AND receipt = ? AND visible_ms > ?"
)

Row = tuple[Any, ...]

#: A FIFO receive looks at most this many of the oldest messages for groups that are free
#: (SQS documents a similar window): a receive's cost stays bounded behind a blocked group.
FIFO_SCAN_LIMIT = 20_000
#: Rounds of "fetch, drop the expired and redriven, fetch again" per standard receive.
_MAX_ROUNDS = 8


def send(
    conn: sqlite3.Connection,
    queue: str,
    messages: Sequence[NewMessage],
    now_ms: int,
    dedup_window_ms: int,
) -> list[SentMessage]:
    if all(m.dedup_id is None for m in messages):
        return _send_many(conn, queue, messages, now_ms)
    sent: list[SentMessage] = []
    for m in messages:
        if m.dedup_id is not None:
            row = conn.execute(_DEDUP_GET, (queue, _dedup_key(m))).fetchone()
            if row is not None and row[2] > now_ms:
                sent.append(SentMessage(row[0], row[1], duplicate=True))
                continue
        cursor = conn.execute(
            _INSERT,
            (
                queue,
                m.message_id,
                m.body,
                m.attributes,
                now_ms,
                now_ms + m.delay_ms,
                m.group_id,
                m.dedup_id,
            ),
        )
        sequence = cursor.lastrowid
        assert sequence is not None
        if m.dedup_id is not None:
            conn.execute(
                _DEDUP_PUT,
                (queue, _dedup_key(m), m.message_id, sequence, now_ms + dedup_window_ms),
            )
        sent.append(SentMessage(m.message_id, sequence))
    return sent


def _dedup_key(message: NewMessage) -> str:
    """The id deduplicates in the whole queue, or only within its message group (a group id
    has no newline: SQS allows printable ASCII only)."""
    if message.dedup_per_group:
        return f"{message.group_id}\n{message.dedup_id}"
    return str(message.dedup_id)


def _send_many(
    conn: sqlite3.Connection, queue: str, messages: Sequence[NewMessage], now_ms: int
) -> list[SentMessage]:
    """One executemany; the ids are consecutive (AUTOINCREMENT, one writer, one transaction)
    and end at the table's sequence."""
    conn.executemany(
        _INSERT,
        [
            (
                queue,
                m.message_id,
                m.body,
                m.attributes,
                now_ms,
                now_ms + m.delay_ms,
                m.group_id,
                None,
            )
            for m in messages
        ],
    )
    last = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'queue_messages'").fetchone()[
        0
    ]
    first = last - len(messages) + 1
    return [SentMessage(m.message_id, first + i) for i, m in enumerate(messages)]


def receive(conn: sqlite3.Connection, request: ReceiveRequest) -> list[QueuedMessage]:
    candidates = _fifo_candidates if request.fifo else _standard_candidates
    rows = candidates(conn, request)
    taken: list[QueuedMessage] = []
    visible_until = request.now_ms + request.visibility_ms
    updates = []
    tokens = os.urandom(9 * len(rows)).hex()
    for index, row in enumerate(rows):
        token = f"{row[0]}:{tokens[18 * index : 18 * index + 18]}"
        first = row[6] if row[6] is not None else request.now_ms
        updates.append((visible_until, request.now_ms, token, row[0]))
        taken.append(
            QueuedMessage(
                row[0], row[1], row[2], row[3], row[4], row[5] + 1, first, token, row[7], row[8]
            )
        )
    conn.executemany(_TAKE, updates)
    return taken


def _standard_candidates(conn: sqlite3.Connection, request: ReceiveRequest) -> list[Row]:
    chosen: list[Row] = []
    seen: set[int] = set()
    for _ in range(_MAX_ROUNDS):
        # Rows chosen in an earlier round are not updated yet, so the query returns them
        # again: ask for that many more and skip them.
        limit = request.max_messages
        rows = conn.execute(_VISIBLE, (request.queue, request.now_ms, limit)).fetchall()
        for row in rows:
            if row[0] in seen:
                continue
            seen.add(row[0])
            if not _set_aside(conn, request, row[0], row[4], row[5]):
                chosen.append(row)
                if len(chosen) >= request.max_messages:
                    break
        if len(rows) < limit or len(chosen) >= request.max_messages:
            break
    return chosen


def _fifo_candidates(conn: sqlite3.Connection, request: ReceiveRequest) -> list[Row]:
    """The oldest messages of free groups, in send order (several of one group in a row)."""
    blocked: set[str | None] = set()
    ids: list[int] = []
    aside: list[tuple[int, int, int]] = []
    scan = conn.execute(_FIFO_SCAN, (request.queue,))
    for row_id, group, visible_ms, receive_count, sent_ms in itertools.islice(
        scan, FIFO_SCAN_LIMIT
    ):
        if group in blocked:
            continue
        if visible_ms > request.now_ms:
            blocked.add(group)  # in flight or delayed: the group waits for it
            continue
        if _expired(request, sent_ms) or _redriven(request, receive_count):
            aside.append((row_id, sent_ms, receive_count))
            continue
        ids.append(row_id)
        if len(ids) >= request.max_messages:
            break
    scan.close()  # the rows are changed below, after the scan
    for row_id, sent_ms, receive_count in aside:
        _set_aside(conn, request, row_id, sent_ms, receive_count)
    return [conn.execute(_BY_ID, (row_id,)).fetchone() for row_id in ids]


def _expired(request: ReceiveRequest, sent_ms: int) -> bool:
    return sent_ms < request.expired_before_ms


def _redriven(request: ReceiveRequest, receive_count: int) -> bool:
    return request.dead_letter is not None and receive_count >= request.dead_letter[1]


def _set_aside(
    conn: sqlite3.Connection, request: ReceiveRequest, row_id: int, sent_ms: int, count: int
) -> bool:
    """Delete a message past retention, or move one received too often to the dead-letter
    queue; True when it was set aside and is not to be returned."""
    if _expired(request, sent_ms):
        conn.execute(_DELETE_ONE, (row_id,))
        return True
    if request.dead_letter is not None and _redriven(request, count):
        if request.fifo:
            conn.execute(
                _MOVE_ONE_RESTARTED,
                (request.dead_letter[0], request.now_ms, request.now_ms, row_id),
            )
        else:
            conn.execute(_MOVE_ONE, (request.dead_letter[0], request.now_ms, row_id))
        return True
    return False


def delete(conn: sqlite3.Connection, queue: str, receipts: Sequence[str]) -> int:
    return conn.executemany(
        _DELETE_BY_RECEIPT, [(_receipt_id(r), queue, r) for r in receipts]
    ).rowcount


def change_visibility(
    conn: sqlite3.Connection, queue: str, changes: Sequence[tuple[str, int]], now_ms: int
) -> list[bool]:
    return [
        conn.execute(
            _CHANGE_VISIBILITY, (now_ms + timeout_ms, _receipt_id(r), queue, r, now_ms)
        ).rowcount
        > 0
        for r, timeout_ms in changes
    ]


def move(conn: sqlite3.Connection, source: str, destination: str, limit: int, now_ms: int) -> int:
    ids = [
        (destination, now_ms, row[0])
        for row in conn.execute(
            "SELECT id FROM queue_messages WHERE queue = ? ORDER BY id LIMIT ?", (source, limit)
        )
    ]
    conn.executemany(_MOVE_ONE, ids)
    return len(ids)


def return_unreceived(
    conn: sqlite3.Connection, queue: str, receipts: Sequence[str], now_ms: int
) -> int:
    return sum(
        conn.execute(_RETURN, (now_ms, _receipt_id(r), queue, r, now_ms)).rowcount for r in receipts
    )


def purge(conn: sqlite3.Connection, queue: str) -> int:
    return conn.execute("DELETE FROM queue_messages WHERE queue = ?", (queue,)).rowcount


def drop(conn: sqlite3.Connection, queue: str) -> int:
    conn.execute("DELETE FROM queue_dedup WHERE queue = ?", (queue,))
    return purge(conn, queue)


def expire(conn: sqlite3.Connection, queue: str, sent_before_ms: int, now_ms: int) -> int:
    conn.execute("DELETE FROM queue_dedup WHERE queue = ? AND expires_ms <= ?", (queue, now_ms))
    oldest = conn.execute(
        "SELECT sent_ms FROM queue_messages WHERE queue = ? ORDER BY id LIMIT 1", (queue,)
    ).fetchone()
    if oldest is None or oldest[0] >= sent_before_ms:
        return 0  # nothing expired: no scan of a deep queue on the writer
    # Rows are in send order, so the expired ones are a prefix of the queue's id range.
    return conn.execute(
        "DELETE FROM queue_messages WHERE queue = ? AND sent_ms < ? AND id <= ("
        "SELECT max(id) FROM (SELECT id FROM queue_messages WHERE queue = ? AND sent_ms < ? "
        "ORDER BY id LIMIT 10000))",
        (queue, sent_before_ms, queue, sent_before_ms),
    ).rowcount


def counts(conn: sqlite3.Connection, queue: str, now_ms: int) -> QueueCounts:
    visible = conn.execute(
        "SELECT count(*) FROM queue_messages WHERE queue = ? AND visible_ms <= ?", (queue, now_ms)
    ).fetchone()[0]
    in_flight, delayed = conn.execute(
        "SELECT coalesce(sum(receive_count > 0), 0), coalesce(sum(receive_count = 0), 0) "
        "FROM queue_messages WHERE queue = ? AND visible_ms > ?",
        (queue, now_ms),
    ).fetchone()
    oldest = conn.execute(
        "SELECT sent_ms FROM queue_messages WHERE queue = ? ORDER BY id LIMIT 1", (queue,)
    ).fetchone()
    return QueueCounts(visible, in_flight, delayed, oldest[0] if oldest else None)


def _receipt_id(receipt: str) -> int:
    """The row id a receipt names; the core checked its shape ("<digits>:<hex>")."""
    return int(receipt.partition(":")[0])
