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

from unkai.backends.base import LogRecord
from unkai.observe.report import InvocationFacts

_COUNT = struct.Struct("<I")
_RECORD = struct.Struct("<qqBIIII")
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


def _facts_body(facts: InvocationFacts) -> bytes:
    version = b"" if facts.version is None else _utf8(facts.version)
    output = _utf8(facts.output)
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


def encode(records: Sequence[LogRecord], ids: Iterable[int]) -> bytes:
    """The block of `records`, with the ids `ids` (new ones on append, their own when a
    purge rewrites a block's survivors)."""
    groups: dict[str, int] = {}
    parts: list[bytes] = []
    pack = _RECORD.pack
    for record_id, r in zip(ids, records, strict=True):
        index = groups.get(r.group)
        if index is None:
            index = groups[r.group] = len(groups)
        stream = r.stream.encode("utf-8", "backslashreplace")
        if r.facts is None:
            kind, body = TEXT, _utf8(r.message)
        else:
            kind, body = FACTS, _facts_body(r.facts)
        if r.request_id is None:
            head = pack(
                record_id, r.timestamp_ms, kind, index, len(stream), NO_REQUEST_ID, len(body)
            )
            parts += (head, stream, body)
        else:
            rid = r.request_id.encode("utf-8", "backslashreplace")
            head = pack(record_id, r.timestamp_ms, kind, index, len(stream), len(rid), len(body))
            parts += (head, stream, rid, body)
    names = [_COUNT.pack(len(groups))]
    for name in groups:
        raw = name.encode("utf-8", "backslashreplace")
        names += (_COUNT.pack(len(raw)), raw)
    return b"".join(names + parts)


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


def request_ids_text(records: Sequence[LogRecord]) -> str:
    """The block's request ids as the index keeps them: each between newlines, so that
    `instr(request_ids, '\\n' || id || '\\n')` finds exactly one id."""
    ids = {storable_text(r.request_id) for r in records if r.request_id is not None}
    return "\n" + "\n".join(ids) + "\n" if ids else ""


def groups_text(records: Sequence[LogRecord]) -> str:
    """The block's groups, each after a newline (and the last before one): a group prefix
    matches with `instr(groups, '\\n' || prefix)`."""
    return "\n" + "\n".join(dict.fromkeys(storable_text(r.group) for r in records)) + "\n"


def storable_text(value: str) -> str:
    """`value` as SQLite can bind it: a lone surrogate (which UTF-8 cannot carry) escaped, as
    the block stores it, so that one odd name cannot fail every append after it."""
    return value if value.isascii() else value.encode("utf-8", "backslashreplace").decode()
