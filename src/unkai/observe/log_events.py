"""Log events: the lines of stored log records, addressed by position, read a page at a time
forward or backward, selected by stream, time and CloudWatch's unstructured filter patterns.
The reading half of CloudWatch Logs' GetLogEvents and FilterLogEvents (aws/logs.py).

Events. A record (observe/logs.py) holds one or more lines; each line is one event, its message
ending in "\n" as the Lambda runtime's do. Events come in the store's order (record id, then
line): that is timestamp order, except that an invocation's START..REPORT record is stored when
the invocation ends but carries its start time (output streamed while it ran comes first).

Positions. A `Gap` is the place between two events: before line L of record R. Reading forward
from a gap yields the events at or after it, backward the events before it, so a page's stop
gap resumes the next page with nothing missed and nothing repeated in either direction. A page
ends where the next matching event would exceed its limit or MAX_PAGE_BYTES (so a full page
that ends the reading is `done`), or after SCAN_RECORDS records, so it can be short or empty
and still not be the end.

Filter patterns (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html)
match one line, case-sensitively: `ERROR` and `"exact phrase"` must all occur, of `?ERROR ?WARN`
at least one, and of `-DEBUG` none. JSON patterns (`{ $.x = 1 }`), space-delimited patterns
(`[ip, user, ...]`) and regular expressions (`%...%`) are refused (InvalidRequest naming them).
The longest required term is handed to the store as `contains`, which narrows the records read.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from typing import Any

from unkai.backends.base import LogRecord
from unkai.errors import InvalidRequest
from unkai.observe.logs import LogService

#: "Each page returned can contain up to 1 MB of log events or up to 10,000 log events"
#: (API_FilterLogEvents); an event counts its UTF-8 message plus 26 bytes, as PutLogEvents does.
MAX_PAGE_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
#: Records read per store query, and at most per page before answering with a token.
PAGE_RECORDS = 1000
SCAN_RECORDS = 20_000

_TERM = re.compile(r'(?P<op>[?-]?)(?:"(?P<phrase>(?:[^"\\]|\\.)*)"|(?P<word>[^\s"]+))')


@dataclass(frozen=True, slots=True)
class FilterPattern:
    """The terms of an unstructured CloudWatch filter pattern (see the module docstring)."""

    all_of: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    none_of: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> FilterPattern:
        """Raises InvalidRequest for an unterminated quote or an unsupported pattern kind."""
        kind = _unsupported_kind(text.strip())
        if kind is not None:
            raise InvalidRequest(
                f"unkai does not support {kind} filter patterns ({text!r}); it supports "
                'terms, "quoted phrases", ?either terms and -excluded terms',
            )
        terms: dict[str, list[str]] = {"": [], "?": [], "-": []}
        pos = 0
        while (pos := _skip_space(text, pos)) < len(text):
            match = _TERM.match(text, pos)
            if match is None:
                raise InvalidRequest(
                    f"Invalid filter pattern {text!r}: unterminated quote at character {pos + 1}"
                )
            phrase = match["phrase"]
            term = re.sub(r"\\(.)", r"\1", phrase) if phrase is not None else match["word"]
            terms[match["op"]].append(term)
            pos = match.end()
        return cls(tuple(terms[""]), tuple(terms["?"]), tuple(terms["-"]))

    def matches(self, line: str) -> bool:
        return (
            all(t in line for t in self.all_of)
            and (not self.any_of or any(t in line for t in self.any_of))
            and not any(t in line for t in self.none_of)
        )

    @property
    def required(self) -> str | None:
        """A term every match contains, for the store to narrow records by (the longest)."""
        candidates = [t for t in self.all_of if t and "\n" not in t]
        return max(candidates, key=len) if candidates else None


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _unsupported_kind(text: str) -> str | None:
    if text.startswith("{"):
        return "JSON"
    if text.startswith("["):
        return "space-delimited"
    if len(text) > 1 and text.startswith("%"):
        return "regular expression"
    return None


@dataclass(frozen=True, slots=True)
class Gap:
    """The place before line `line` of record `record_id` (between two events)."""

    record_id: int
    line: int

    def token(self, direction: str) -> str:
        return f"{direction}/{self.record_id}/{self.line}"


START = Gap(0, 0)


def parse_token(token: Any) -> tuple[bool, Gap]:
    """(forward, gap) of a token this module issued; InvalidParameterException otherwise."""
    parts = token.split("/") if isinstance(token, str) else []
    if len(parts) != 3 or parts[0] not in ("f", "b") or not all(p.isdigit() for p in parts[1:]):
        raise InvalidRequest(f"The specified nextToken is invalid: {token!r}")
    return parts[0] == "f", Gap(int(parts[1]), int(parts[2]))


@dataclass(frozen=True, slots=True)
class Selection:
    """What a read selects from one group: streams, inclusive time bounds, a pattern."""

    stage: str
    function: str
    since_ms: int | None = None
    until_ms: int | None = None
    streams: tuple[str, ...] = ()
    stream_prefix: str | None = None
    pattern: FilterPattern = FilterPattern()


@dataclass(frozen=True, slots=True)
class Event:
    record: LogRecord
    line: int
    text: str

    @property
    def message(self) -> str:
        return self.text + "\n"

    @property
    def size_bytes(self) -> int:
        return len(self.message.encode()) + EVENT_OVERHEAD_BYTES

    def before(self, forward: bool) -> Gap:
        """The gap before this event in the reading direction."""
        return Gap(self.record.id, self.line if forward else self.line + 1)

    def after(self, forward: bool) -> Gap:
        """The gap after this event in the reading direction."""
        return Gap(self.record.id, self.line + 1 if forward else self.line)


@dataclass(frozen=True, slots=True)
class Page:
    events: list[Event]  # in reading order
    #: Where reading began (a backward read from the newest: after the newest record read).
    start: Gap
    #: Where reading stopped; a read resumed from here misses nothing and repeats nothing.
    stop: Gap
    #: True when nothing further matches in this direction (for now).
    done: bool


class EventReader:
    """Pages of events of one selection, forward or backward from a gap."""

    def __init__(
        self,
        logs: LogService,
        selection: Selection,
        *,
        page_records: int = PAGE_RECORDS,
        scan_records: int = SCAN_RECORDS,
    ) -> None:
        self._logs = logs
        self._sel = selection
        self._page_records = page_records
        self._scan_records = scan_records

    async def page(self, start: Gap | None, *, forward: bool, limit: int) -> Page:
        """Up to `limit` events from `start` (None: backward from the newest record)."""
        if forward and start is None:
            start = START
        records = self._forward(start or START) if forward else self._backward(start)
        events: list[Event] = []
        size_bytes = scanned = 0
        first, stop = start, start or START
        async with contextlib.aclosing(records):
            async for record in records:
                first = first or Gap(record.id + 1, 0)
                for event in self._events(record, start, forward):
                    size_bytes += event.size_bytes
                    if len(events) == limit or (events and size_bytes > MAX_PAGE_BYTES):
                        # One event beyond the page: the next page starts at it.
                        return Page(events, first, event.before(forward), done=False)
                    events.append(event)
                stop = Gap(record.id + 1, 0) if forward else Gap(record.id, 0)
                scanned += 1
                if scanned >= self._scan_records:
                    return Page(events, first, stop, done=False)
        return Page(events, first or START, stop, done=True)

    def _events(self, record: LogRecord, start: Gap | None, forward: bool) -> Iterator[Event]:
        prefix = self._sel.stream_prefix
        if prefix is not None and not record.stream.startswith(prefix):
            return
        lines = record.message.split("\n")
        order = range(len(lines)) if forward else range(len(lines) - 1, -1, -1)
        for i in order:
            if (
                start is not None
                and record.id == start.record_id
                and ((i < start.line) if forward else (i >= start.line))
            ):
                continue  # on the other side of the gap
            if self._sel.pattern.matches(lines[i]):
                yield Event(record, i, lines[i])

    async def _forward(self, start: Gap) -> AsyncGenerator[LogRecord, None]:
        after_id = max(start.record_id - 1, 0)
        while True:
            page = await self._query(after_id=after_id, limit=self._page_records)
            for record in page:
                yield record
            if len(page) < self._page_records:
                return
            after_id = page[-1].id

    async def _backward(self, start: Gap | None) -> AsyncGenerator[LogRecord, None]:
        before_id = None if start is None else start.record_id + 1
        while True:
            page = await self._before(before_id)
            for record in reversed(page):
                yield record
            if len(page) < self._page_records:
                return
            before_id = page[0].id

    async def _before(self, before_id: int | None) -> list[LogRecord]:
        """The last `page_records` records with an id below `before_id` (None: the newest).

        The store reads forward from a cursor or back from the newest record, but takes no
        upper bound; so this asks for the newest records, doubling the request until enough
        fall below `before_id`. Cost: the records newer than `before_id` are read again for
        every page, which is small when paging back from recent logs (the usual case); an
        upper bound in LogQuery would remove it.
        """
        want = self._page_records
        while True:
            records = await self._query(limit=want, newest=True)
            if before_id is None:
                return records
            older = [r for r in records if r.id < before_id]
            if len(older) >= self._page_records or len(records) < want:
                return older[-self._page_records :]
            want = max(want * 2, len(records) - len(older) + self._page_records)

    async def _query(
        self, *, limit: int, after_id: int = 0, newest: bool = False
    ) -> list[LogRecord]:
        sel = self._sel
        return await self._logs.query(
            stage=sel.stage,
            function=sel.function,
            since_ms=sel.since_ms,
            until_ms=sel.until_ms,
            contains=sel.pattern.required,
            after_id=after_id,
            limit=limit,
            newest=newest,
            streams=sel.streams,
            whole_records=True,
        )


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """One log stream of a group, as its stored records show it."""

    name: str
    first_event_ms: int
    last_event_ms: int


async def stream_summaries(
    logs: LogService, *, stage: str, function: str, page_records: int = 5000
) -> list[StreamSummary]:
    """Every stream of one function's group with its first and last event time, by name.

    The store keeps no list of streams, so this reads the group's records page by page
    (memory: one page and one summary per stream); its cost grows with the group's size.
    """
    bounds: dict[str, tuple[int, int]] = {}
    after_id = 0
    while True:
        page = await logs.query(
            stage=stage, function=function, after_id=after_id, limit=page_records
        )
        for record in page:
            ts = record.timestamp_ms
            first, last = bounds.get(record.stream, (ts, ts))
            bounds[record.stream] = (min(first, ts), max(last, ts))
        if len(page) < page_records:
            return [StreamSummary(name, *bounds[name]) for name in sorted(bounds)]
        after_id = page[-1].id
