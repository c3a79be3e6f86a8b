"""Log events over a real sqlite LogService: filter patterns, and pages read forward and
backward from gaps, splitting records, skipping other groups, across many store pages."""

from __future__ import annotations

import pytest

from unkai.backends.sqlite.backend import SqliteBackend
from unkai.errors import InvalidRequest
from unkai.observe.log_events import (
    START,
    EventReader,
    FilterPattern,
    Gap,
    Selection,
    parse_token,
    stream_summaries,
)
from unkai.observe.logs import LogService

pytestmark = pytest.mark.anyio


@pytest.fixture
def logs(sqlite_backend: SqliteBackend) -> LogService:
    return LogService(sqlite_backend)


def record(logs: LogService, function: str, stream: str, ts: int, *lines: str) -> None:
    logs.record_text(
        stage="dev", function=function, stream=stream, message="\n".join(lines), timestamp_ms=ts
    )


async def read_all(reader: EventReader, *, forward: bool, limit: int) -> list[str]:
    """Every event, page after page from the gap each page stopped at, in reading order."""
    seen: list[str] = []
    start = None if not forward else START
    while True:
        page = await reader.page(start, forward=forward, limit=limit)
        assert len(page.events) <= limit
        seen += [e.text for e in page.events]
        if page.done:
            return seen
        start = page.stop


def test_filter_patterns_parse_terms_phrases_either_and_excluded() -> None:
    pattern = FilterPattern.parse(' ERROR "disk \\"full\\"" ?a ?b -DEBUG ')
    assert pattern == FilterPattern(("ERROR", 'disk "full"'), ("a", "b"), ("DEBUG",))
    assert pattern.matches('ERROR: a disk "full"')
    assert not pattern.matches('ERROR: disk "full"')  # neither a nor b
    assert not pattern.matches('ERROR a disk "full" DEBUG')
    assert pattern.required == 'disk "full"'
    assert FilterPattern.parse("").matches("anything") and FilterPattern.parse("").required is None
    for text, kind in [
        ("{ $.x = 1 }", "JSON"),
        ("[ip, user]", "space-delimited"),
        ("%a+%", "regular"),
    ]:
        with pytest.raises(InvalidRequest, match=kind):
            FilterPattern.parse(text)
    with pytest.raises(InvalidRequest, match="unterminated quote at character 7"):
        FilterPattern.parse('ERROR "open')


def test_tokens_round_trip_and_reject_others() -> None:
    assert parse_token(Gap(12, 3).token("b")) == (False, Gap(12, 3))
    for bad in ("x/1/2", "f/1", "f/-1/0", 7):
        with pytest.raises(InvalidRequest):
            parse_token(bad)


async def test_pages_split_records_and_resume_from_gaps_both_ways(logs: LogService) -> None:
    # Given multi-line records of one group interleaved with another group's
    for n in range(4):
        record(logs, "f", "s1", 1000 + n, f"a{n}", f"b{n}", f"c{n}")
        record(logs, "other", "s1", 1000 + n, "not mine")
    everything = [f"{c}{n}" for n in range(4) for c in "abc"]
    reader = EventReader(logs, Selection("dev", "f"))
    # When it is read in pages of two (pages end inside records), forward and backward
    assert await read_all(reader, forward=True, limit=2) == everything
    assert await read_all(reader, forward=False, limit=2) == everything[::-1]
    # Then a filtered read keeps its gaps on the unfiltered lines
    filtered = EventReader(logs, Selection("dev", "f", pattern=FilterPattern.parse("?b1 ?c2")))
    assert await read_all(filtered, forward=True, limit=1) == ["b1", "c2"]
    assert await read_all(filtered, forward=False, limit=1) == ["c2", "b1"]
    # And time bounds are inclusive
    ranged = EventReader(logs, Selection("dev", "f", since_ms=1001, until_ms=1002))
    assert await read_all(ranged, forward=True, limit=100) == everything[3:9]


async def test_reads_cross_many_store_pages(logs: LogService) -> None:
    # Given more records than one store page holds (pages made small to keep the test short)
    for n in range(40):
        record(logs, "f", f"s{n % 3}", 1000 + n, f"line {n}")
        record(logs, "other", "s0", 1000 + n, "noise")
    reader = EventReader(logs, Selection("dev", "f", streams=("s0", "s1")), page_records=7)
    expected = [f"line {n}" for n in range(40) if n % 3 != 2]
    # When it is read backward from the newest in pages of five, and forward
    backward = await read_all(reader, forward=False, limit=5)
    forward = await read_all(reader, forward=True, limit=5)
    # Then each event comes once, in order
    assert backward == expected[::-1]
    assert forward == expected


async def test_a_page_stops_after_its_scan_budget_with_a_gap(logs: LogService) -> None:
    for n in range(5):
        record(logs, "f", "s", 1000 + n, f"line {n}")
    selection = Selection("dev", "f", pattern=FilterPattern.parse("?4 ?nothing"))  # not narrowed
    reader = EventReader(logs, selection, scan_records=3)
    # The first page reads three records, finds nothing, and is not the end
    page = await reader.page(None, forward=True, limit=10)
    assert page.events == [] and not page.done
    # The next one resumes after them
    rest = await reader.page(page.stop, forward=True, limit=10)
    assert [e.text for e in rest.events] == ["line 4"] and rest.done


async def test_stream_summaries_span_each_streams_records(logs: LogService) -> None:
    record(logs, "f", "b", 2000, "x")
    record(logs, "f", "a", 1000, "x")
    record(logs, "f", "b", 1500, "x")
    record(logs, "g", "c", 1000, "x")
    summaries = await stream_summaries(logs, stage="dev", function="f", page_records=2)
    assert [(s.name, s.first_event_ms, s.last_event_ms) for s in summaries] == [
        ("a", 1000, 1000),
        ("b", 1500, 2000),
    ]
