"""The MetadataStore's SQL: plain functions of a connection, run by the writer or a reader.

Values are encoded with orjson by the caller (on the loop, so that a value that is not JSON
fails in the caller's frame) and stored as BLOBs; see schema.sql for the table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from unkai.backends.base import Document, Write
from unkai.errors import Conflict

_GET = "SELECT value, revision FROM documents WHERE kind = ? AND key = ?"
_REVISION = "SELECT revision FROM documents WHERE kind = ? AND key = ?"
_PUT = (
    "INSERT INTO documents (kind, key, value, revision) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, revision = excluded.revision"
)
_DELETE = "DELETE FROM documents WHERE kind = ? AND key = ?"
_LIST = "SELECT key, value, revision FROM documents WHERE kind = ? AND key >= ?"


@dataclass(frozen=True, slots=True)
class EncodedWrite:
    """A `Write` whose value is already JSON bytes (None deletes)."""

    kind: str
    key: str
    value: bytes | None
    expected_revision: int | None


def encode(writes: Sequence[Write]) -> list[EncodedWrite]:
    """Encode values; raises TypeError (orjson) for a value that is not JSON."""
    return [
        EncodedWrite(
            w.kind, w.key, None if w.value is None else orjson.dumps(w.value), w.expected_revision
        )
        for w in writes
    ]


def apply(conn: sqlite3.Connection, writes: Sequence[EncodedWrite]) -> None:
    """Apply writes in order inside the caller's transaction; raises Conflict on a failed check.

    Writes to the same key in one commit apply in sequence: the second sees the first's
    revision. The writer rolls the whole job back when this raises.
    """
    for w in writes:
        row = conn.execute(_REVISION, (w.kind, w.key)).fetchone()
        current: int = row[0] if row else 0
        if w.expected_revision is not None and w.expected_revision != current:
            raise _conflict(w, current)
        if w.value is not None:
            conn.execute(_PUT, (w.kind, w.key, w.value, current + 1))
        elif row:
            conn.execute(_DELETE, (w.kind, w.key))


def get(conn: sqlite3.Connection, kind: str, key: str) -> Document | None:
    row = conn.execute(_GET, (kind, key)).fetchone()
    return None if row is None else Document(kind, key, orjson.loads(row[0]), row[1])


def list_prefix(
    conn: sqlite3.Connection,
    kind: str,
    prefix: str,
    after: str | None = None,
    limit: int | None = None,
) -> list[Document]:
    sql = _LIST
    args: list[object] = [kind, prefix]
    upper = prefix_upper_bound(prefix)
    if upper is not None:
        sql += " AND key < ?"
        args.append(upper)
    if after is not None:
        sql += " AND key > ?"
        args.append(after)
    sql += " ORDER BY key"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    rows = conn.execute(sql, args).fetchall()
    return [Document(kind, key, orjson.loads(value), rev) for key, value, rev in rows]


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix`; None when unbounded.

    Lets a prefix match use the index as a range (`>= prefix AND < bound`). Strings compare by
    code point in Python and by UTF-8 bytes in SQLite's BINARY collation: the same order.
    """
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return None
    last = ord(stripped[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates cannot be stored; skip to the next scalar
        last = 0xE000
    return stripped[:-1] + chr(last)


def _conflict(w: EncodedWrite, current: int) -> Conflict:
    if w.expected_revision == 0:
        problem = f"already exists at revision {current}"
    elif current == 0:
        problem = f"does not exist (expected revision {w.expected_revision})"
    else:
        problem = f"is at revision {current}, expected {w.expected_revision}"
    return Conflict(
        f"{w.kind} {w.key!r} {problem}",
        hint="another writer changed it first; read it again and retry",
    )
