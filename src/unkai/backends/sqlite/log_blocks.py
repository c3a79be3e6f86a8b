"""The bytes of a log block: the records of one append, as they lie in a segment file.

Why blocks in files and not one SQLite row per record: a row is written twice (the WAL, then
the checkpoint) with its index entries, about 1.3 KB of disk per `GET /hello` record, and its
insert is several microseconds of the writer's CPU. That was 12-17% of the platform's
throughput (docs/benchmarks.md, session 7). A block is written once, by one `write`, and
SQLite keeps only one small index row per block (logs.py).

Layout (little-endian):
  groups   u32 count, then per group: u32 length + UTF-8 name
  records  per record: i64 id, i64 timestamp_ms, u8 kind, u32 group index, u32 stream
           length, u32 request id length (NO_REQUEST_ID: none), u32 body length, then the
           stream, the request id and the body
  body     TEXT: the message, UTF-8. FACTS: an invocation's record in parts
           (`InvocationFacts`): f64 duration ms, f64 init duration ms, u32 memory size MB,
           u32 max memory used MB, u8 flags (HAS_VERSION, HAS_ERROR, HAS_INIT), u32 lengths of
           the version, the output and the error block, then those three, UTF-8. Its text is
           made when the block is read: nobody formats it per invocation.
Text's lone surrogates (which UTF-8 cannot carry) are stored as backslash escapes, as printed
output is, and a message's NUL as U+FFFD, as other undecodable output is (docs/runtime.md): a
terminal or a C string would end the text there, END and REPORT included.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from unkai.backends.base import LogRecord
from unkai.observe.report import InvocationFacts

_COUNT = struct.Struct("<I")
_RECORD = struct.Struct("<qqBIIII")
#: A record's head is its id, then the rest (`Block`: the id is put in last).
_ID = struct.Struct("<q")
_AFTER_ID = struct.Struct("<qBIIII")
_FACTS = struct.Struct("<ddIIBIII")
NO_REQUEST_ID = 0xFFFFFFFF
TEXT, FACTS = 0, 1
HAS_VERSION, HAS_ERROR, HAS_INIT = 1, 2, 4


class CorruptBlock(ValueError):
    """A block's bytes do not parse (a segment cut short by an OS crash, say)."""


def _utf8(text: str) -> bytes:
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text.encode("utf-8", "backslashreplace")


def _facts_body(facts: InvocationFacts, versions: dict[str | None, bytes]) -> bytes:
    """The FACTS body of `facts`; `versions` caches the block's encoded versions."""
    version = versions.get(facts.version)
    if version is None:
        version = versions[facts.version] = _utf8(facts.version or "")
    if not facts.output and facts.error is None and facts.version is not None:
        # A warm invocation that printed nothing: most of them.
        has_init = facts.init_duration_ms is not None
        return (
            _FACTS.pack(
                facts.duration_ms,
                facts.init_duration_ms or 0.0,
                int(facts.memory_size_mb),
                facts.max_memory_used_mb,
                HAS_VERSION | HAS_INIT if has_init else HAS_VERSION,
                len(version),
                0,
                0,
            )
            + version
        )
    output = _utf8(facts.output) if facts.output else b""
    error = b"" if facts.error is None else _utf8(facts.error)
    flags = (
        (facts.version is not None) * HAS_VERSION
        | (facts.error is not None) * HAS_ERROR
        | (facts.init_duration_ms is not None) * HAS_INIT
    )
    head = _FACTS.pack(
        facts.duration_ms,
        facts.init_duration_ms or 0.0,
        int(facts.memory_size_mb),
        facts.max_memory_used_mb,
        flags,
        len(version),
        len(output),
        len(error),
    )
    return b"".join((head, version, output, error))


class Block(NamedTuple):
    """A block encoded but for its records' ids (`data` puts them in), and what the index
    keeps of it."""

    #: The group table.
    head: bytes
    #: Each record's bytes after its id.
    records: list[bytes]
    min_ts: int
    max_ts: int
    #: Its groups in first-seen order and its request ids, as SQLite can bind them
    #: (`storable_text`).
    groups: list[str]
    request_ids: list[str]

    def data(self, ids: Iterable[int]) -> bytes:
        """The block's bytes with `ids` (as many as it has records; ValueError otherwise)."""
        parts: list[bytes] = [b""] * (2 * len(self.records))
        parts[0::2] = [_ID.pack(record_id) for record_id in ids]
        parts[1::2] = self.records
        return self.head + b"".join(parts)


def encode(records: Sequence[LogRecord]) -> Block:
    """The block of `records`, but for the ids (new ones come from the writer's transaction;
    a purge keeps the survivors' own).

    An append's blocks are encoded on the event loop, where the records were made
    (SqliteBackend.append_logs), in one pass that encodes a block's repeated names (groups,
    streams, versions) once: on the SQLite writer thread this held the GIL away from the loop
    and slowed the loop by as much again (docs/benchmarks.md, session 9), so the writer only
    puts the ids in. A purge's rewrite and the layout-1 move still encode on the writer."""
    groups: dict[str, int] = {}
    streams: dict[str, bytes] = {}
    versions: dict[str | None, bytes] = {None: b""}
    request_ids: dict[str, None] = {}
    encoded: list[bytes] = []
    pack = _AFTER_ID.pack
    min_ts = max_ts = records[0].timestamp_ms if records else 0
    for r in records:
        ts = r.timestamp_ms
        if ts < min_ts:
            min_ts = ts
        elif ts > max_ts:
            max_ts = ts
        index = groups.get(r.group)
        if index is None:
            index = groups[r.group] = len(groups)
        stream = streams.get(r.stream)
        if stream is None:
            stream = streams[r.stream] = r.stream.encode("utf-8", "backslashreplace")
        if r.facts is None:
            kind, body = TEXT, _utf8(r.message)
        else:
            kind, body = FACTS, _facts_body(r.facts, versions)
        rid = r.request_id
        if rid is None:
            head = pack(ts, kind, index, len(stream), NO_REQUEST_ID, len(body))
            encoded.append(b"".join((head, stream, body)))
        else:
            request_ids[rid] = None
            raw = rid.encode("utf-8", "backslashreplace")
            head = pack(ts, kind, index, len(stream), len(raw), len(body))
            encoded.append(b"".join((head, stream, raw, body)))
    names = [_COUNT.pack(len(groups))]
    for name in groups:
        raw = name.encode("utf-8", "backslashreplace")
        names += (_COUNT.pack(len(raw)), raw)
    return Block(
        b"".join(names),
        encoded,
        min_ts,
        max_ts,
        [storable_text(name) for name in groups],
        [storable_text(rid) for rid in request_ids],
    )


def decode(data: bytes) -> Iterator[LogRecord]:
    """The records of a block, in id order, an invocation's as its text; raises CorruptBlock
    where the bytes do not parse."""
    try:
        yield from _decode(data)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise CorruptBlock(str(exc)) from exc


def _decode(data: bytes) -> Iterator[LogRecord]:
    (count,) = _COUNT.unpack_from(data, 0)
    pos = 4
    groups: list[str] = []
    for _ in range(count):
        (size,) = _COUNT.unpack_from(data, pos)
        pos += 4
        groups.append(data[pos : pos + size].decode())
        pos += size
    unpack = _RECORD.unpack_from
    step = _RECORD.size
    end = len(data)
    while pos < end:
        record_id, ts, kind, index, stream_len, rid_len, body_len = unpack(data, pos)
        pos += step
        stream = data[pos : pos + stream_len].decode()
        pos += stream_len
        rid = None
        if rid_len != NO_REQUEST_ID:
            rid = data[pos : pos + rid_len].decode()
            pos += rid_len
        body = data[pos : pos + body_len]
        pos += body_len
        if pos > end:
            raise CorruptBlock(f"record {record_id} runs past the end of its block")
        message = _facts(body).text(rid or "") if kind == FACTS else body.decode()
        yield LogRecord(ts, groups[index], stream, message, rid, record_id)


def _facts(body: bytes) -> InvocationFacts:
    duration_ms, init_ms, memory, used, flags, version_len, output_len, error_len = (
        _FACTS.unpack_from(body)
    )
    pos = _FACTS.size
    version = body[pos : pos + version_len].decode()
    pos += version_len
    output = body[pos : pos + output_len].decode()
    pos += output_len
    error = body[pos : pos + error_len].decode()
    if pos + error_len != len(body):
        raise CorruptBlock("an invocation's parts do not fill its record")
    return InvocationFacts(
        version if flags & HAS_VERSION else None,
        output,
        error if flags & HAS_ERROR else None,
        duration_ms,
        memory,
        used,
        init_ms if flags & HAS_INIT else None,
    )


def request_ids_text(request_ids: Iterable[str]) -> str:
    """A block's request ids as the index keeps them: each between newlines, so that
    `instr(request_ids, '\\n' || id || '\\n')` finds exactly one id."""
    joined = "\n".join(request_ids)
    return "\n" + joined + "\n" if joined else ""


def groups_text(groups: Iterable[str]) -> str:
    """A block's groups, each after a newline (and the last before one): a group prefix
    matches with `instr(groups, '\\n' || prefix)`."""
    return "\n" + "\n".join(groups) + "\n"


def storable_text(value: str) -> str:
    """`value` as SQLite can bind it: a lone surrogate (which UTF-8 cannot carry) escaped, as
    the block stores it, so that one odd name cannot fail every append after it."""
    return value if value.isascii() else value.encode("utf-8", "backslashreplace").decode()
