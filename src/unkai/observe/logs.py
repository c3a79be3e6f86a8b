"""`LogService`: function logs, formatted as Lambda writes them, group-committed to the backend.

Group names. Lambda gives each function the log group `/aws/lambda/<function>` in an account
and region. unkai runs several stages in one backend, so the key the store keeps is
`/unkai/<stage>/<function>` (`group_key`), while the function still sees
AWS_LAMBDA_LOG_GROUP_NAME = `/aws/lambda/<function>` (`lambda_log_group_name`), as on Lambda:
the stage plays the role of the account. Queries name a stage and a function; with no
function the prefix `/unkai/<stage>/` selects every function of the stage.

Pipeline:
  record_invocation, record_text   hot path, synchronous, on the loop thread: build
                                   LogRecords (report.py formats the lines) and append them to
                                   an in-memory list. No I/O, no await, no lock.
  flusher task                     every `flush_ms` (sooner once `flush_records` are waiting)
                                   swaps the list out and awaits `append_logs`: one writer
                                   transaction for everything recorded since the last flush.
                                   A failed flush puts its records back in front, logs, backs
                                   off and retries: accepted records are never dropped. Only
                                   when `max_buffered_records` wait (the store has been failing
                                   for a long time) are new records refused and counted in
                                   `dropped_records`.
  query, tail                      flush what is buffered (read your writes), then read.
  purge task                       every `purge_interval_s`, delete records older than
                                   `retention_hours`.
  close                            stop the tasks, flush the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, Callable

from unkai.backends.base import LogQuery, LogRecord, LogStore
from unkai.invoke.models import InvocationResult
from unkai.observe.report import InvocationFacts, error_text, start_line

log = logging.getLogger(__name__)

GROUP_PREFIX = "/unkai/"
#: One append transaction carries at most this many records; a backlog after an outage is
#: written in several transactions so that other writes interleave.
MAX_FLUSH_RECORDS = 20_000
_MAX_RETRY_DELAY_S = 5.0
#: Invocations with streamed output whose end is not yet recorded (each ends by its timeout).
MAX_STREAMING = 10_000
#: A streamed line still without its newline is held at most this long, then recorded as is.
MAX_PARTIAL_LINE_CHARS = 64 * 1024
#: Group keys kept by (stage, function); past this many (functions come and go) they are
#: dropped and made again.
MAX_CACHED_GROUPS = 4096


def matching_lines(records: list[LogRecord], contains: str) -> list[LogRecord]:
    """Keep only the lines of each record that contain the text (an event is a line)."""
    kept = []
    for record in records:
        lines = [line for line in record.message.split("\n") if contains in line]
        if lines:
            kept.append(dataclasses.replace(record, message="\n".join(lines)))
    return kept


def group_key(stage: str, function: str) -> str:
    """The store's group of a function's logs: `/unkai/<stage>/<function>`."""
    return f"{GROUP_PREFIX}{stage}/{function}"


def lambda_log_group_name(function: str) -> str:
    """What the function sees as its log group, as on Lambda."""
    return f"/aws/lambda/{function}"


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class LogService:
    """Buffers log records and commits them in groups; queries and tails them.

    `record_*` must be called on the event loop thread (they touch the buffer unlocked).
    """

    def __init__(
        self,
        store: LogStore,
        *,
        flush_ms: int = 50,
        retention_hours: float = 168.0,
        purge_interval_s: float = 600.0,
        flush_records: int = 5000,
        max_buffered_records: int = 1_000_000,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self._store = store
        self._flush_s = flush_ms / 1000
        self._retention_ms = int(retention_hours * 3_600_000)
        self._purge_interval_s = purge_interval_s
        self._flush_records = flush_records
        self._max_buffered = max_buffered_records
        self._clock_ms = clock_ms
        self._buffer: list[LogRecord] = []
        self._wake = asyncio.Event()
        #: Set when the buffer gets its first record: the flusher of an idle platform sleeps
        #: on it, instead of waking every `flush_ms` to find nothing.
        self._pending = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        #: Invocations that streamed output before they ended, by request id: their START is
        #: recorded, and this is their last output line still without its newline.
        self._streaming: dict[str, str] = {}
        self._groups: dict[tuple[str, str], str] = {}
        #: Records refused because the buffer was full (the store kept failing).
        self.dropped_records = 0
        self._dropped_reported = 0

    @property
    def retention_hours(self) -> float:
        """How long records are kept before the purge deletes them."""
        return self._retention_ms / 3_600_000

    async def start(self) -> None:
        """Start the flusher and the retention purge."""
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._flush_loop(), name="logs-flush"),
            loop.create_task(self._purge_loop(), name="logs-purge"),
        ]

    async def close(self) -> None:
        """Stop the background tasks and commit every buffered record. Idempotent.

        The flusher is asked to stop, not cancelled, so that no append is cut off midway.
        """
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._pending.set()
        for task in self._tasks:
            if task.get_name() == "logs-purge":
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._final_flush()

    # Hot path

    def record_invocation(
        self,
        stage: str,
        function: str,
        stream: str,
        result: InvocationResult,
        version: str | None = None,
    ) -> None:
        """Record START, the output, the error block, END and REPORT of one invocation.

        They go in ONE record (lines joined by newlines), kept in parts until a query reads
        it (`InvocationFacts`): nothing formats text per invocation, in the platform or in the
        instance. Queries with `contains` still answer line by line, as CloudWatch's events
        would.
        `result.log_text` is the output not already recorded through `record_text` (the
        runtime streams long outputs as LOG frames and sends the rest with the result).
        """
        rid = result.request_id
        now_ms = self._clock_ms()
        partial = self._streaming.pop(rid, None) if self._streaming else None
        # `_make` and positional arguments: once per invocation, on the loop, the keyword
        # and NamedTuple `__new__` calls cost about 0.45 µs more (microbenchmark).
        facts = InvocationFacts._make(
            (
                # After streamed output its START is recorded already.
                None if partial is not None else (version or result.executed_version),
                result.log_text if partial is None else partial + result.log_text,
                error_text(result, now_ms) if result.error is not None else None,
                result.duration_ms,
                result.memory_size_mb,
                result.max_memory_used_mb,
                result.init_duration_ms,
            )
        )
        # After streamed output the record comes last, at the end; else it is the whole
        # invocation, dated at its start as Lambda dates START.
        when_ms = now_ms if partial is not None else now_ms - int(result.duration_ms)
        group = self._groups.get((stage, function)) or self._group(stage, function)
        self._accept(LogRecord(when_ms, group, stream, "", rid, 0, facts))

    def _group(self, stage: str, function: str) -> str:
        """`group_key`, kept per (stage, function): every invocation's record names one."""
        if len(self._groups) >= MAX_CACHED_GROUPS:
            self._groups.clear()
        key = self._groups[(stage, function)] = group_key(stage, function)
        return key

    def record_output(
        self,
        *,
        stage: str,
        function: str,
        stream: str,
        request_id: str,
        version: str,
        started_ms: int,
        text: str,
    ) -> None:
        """Output an invocation wrote while it runs (a long one streams it, so that `logs -t`
        shows it live and a timeout or crash does not lose it). The first output records the
        invocation's START ahead of it; whole lines are recorded as they come, and a line still
        without its newline waits for the next output or for `record_invocation`, so that a
        `print` split across two sends stays one line."""
        group = group_key(stage, function)
        partial = self._streaming.get(request_id)
        if partial is None:
            if len(self._streaming) >= MAX_STREAMING:
                self._streaming.pop(next(iter(self._streaming)))  # a lost end; keep memory bounded
            self._accept(
                LogRecord(started_ms, group, stream, start_line(request_id, version), request_id)
            )
            partial = ""
        text = partial + text
        if len(text) > MAX_PARTIAL_LINE_CHARS and "\n" not in text[-MAX_PARTIAL_LINE_CHARS:]:
            text += "\n"  # a line that never ends (progress bars): recorded as it stands
        cut = text.rfind("\n") + 1
        self._streaming[request_id] = text[cut:]
        lines = text[: cut - 1] if cut else ""
        if lines:
            self._accept(LogRecord(self._clock_ms(), group, stream, lines, request_id))

    def record_text(
        self,
        *,
        stage: str,
        function: str,
        stream: str,
        message: str,
        request_id: str | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        """Record one chunk of text: streamed output (LOG frames) or a platform message."""
        message = message.removesuffix("\n")
        if not message:
            return
        ts = self._clock_ms() if timestamp_ms is None else timestamp_ms
        self._accept(LogRecord(ts, group_key(stage, function), stream, message, request_id))

    def record_stream_output(
        self, *, stage: str, function: str, stream: str, request_id: str | None, data: bytes
    ) -> None:
        """A LOG frame's bytes (UTF-8; invalid bytes become U+FFFD, as CloudWatch does)."""
        self.record_text(
            stage=stage,
            function=function,
            stream=stream,
            message=data.decode("utf-8", "replace"),
            request_id=request_id,
        )

    def _accept(self, record: LogRecord) -> None:
        buffer = self._buffer
        if len(buffer) >= self._max_buffered:
            self.dropped_records += 1
            return
        if not buffer:
            self._pending.set()
        buffer.append(record)
        if len(buffer) >= self._flush_records:
            self._wake.set()

    # Commit

    async def flush(self) -> None:
        """Commit the records accepted before this call; on failure they stay buffered (in
        order, in front) and this raises. Records accepted meanwhile wait for the next flush.
        """
        async with self._flush_lock:
            remaining = len(self._buffer)
            while remaining > 0 and self._buffer:
                take = min(remaining, MAX_FLUSH_RECORDS)
                batch = self._buffer[:take]
                del self._buffer[:take]
                # Shielded: a cancelled caller must not cut the append off; `_append`
                # settles the batch either way, and unsent records never left the buffer.
                await asyncio.shield(self._append(batch))
                remaining -= take

    async def _append(self, batch: list[LogRecord]) -> None:
        try:
            await self._store.append_logs(batch)
        except BaseException:
            self._buffer[:0] = batch
            raise

    async def _flush_loop(self) -> None:
        failures = 0
        while not self._closed:
            if not self._buffer:
                # Nothing to commit: sleep until a record comes. The first record of a burst
                # is then committed `flush_ms` after it (before, at the next tick: within
                # `flush_ms` either way).
                self._pending.clear()
                await self._pending.wait()
                if self._closed:
                    return  # close() flushes
            delay_s = min(self._flush_s * 2**failures, _MAX_RETRY_DELAY_S)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay_s):
                    await self._wake.wait()
            self._wake.clear()
            if self._closed:
                return  # close() flushes
            failures = 0 if await self._flush_logged(failures) else failures + 1

    async def _flush_logged(self, failures: int) -> bool:
        """Flush; on failure log it (the records stay buffered) and return False."""
        self._report_dropped()
        try:
            await self.flush()
        except Exception as exc:  # boundary: the store failed; keep the records, retry later
            log.warning(
                "log flush failed (attempt %d, %d records buffered, retrying): %r",
                failures + 1,
                len(self._buffer),
                exc,
            )
            return False
        return True

    def _report_dropped(self) -> None:
        if self.dropped_records != self._dropped_reported:
            log.error(
                "dropped %d log records: %d were buffered and the store keeps failing",
                self.dropped_records - self._dropped_reported,
                self._max_buffered,
            )
            self._dropped_reported = self.dropped_records

    async def _final_flush(self) -> None:
        for attempt in range(3):
            if await self._flush_logged(attempt):
                return
            await asyncio.sleep(min(self._flush_s * 2**attempt, _MAX_RETRY_DELAY_S))
        log.error("closing with %d log records that could not be stored", len(self._buffer))

    # Read

    async def query(
        self,
        *,
        stage: str,
        function: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        request_id: str | None = None,
        contains: str | None = None,
        after_id: int = 0,
        limit: int = 1000,
        newest: bool = False,
        streams: tuple[str, ...] = (),
        whole_records: bool = False,
    ) -> list[LogRecord]:
        """Records of one function (or of the whole stage), ascending by id.

        Both time bounds are inclusive; `contains` is a case-sensitive substring; `newest`
        returns the last `limit` matches instead of the first. A record matched by `contains`
        keeps only its matching lines, unless `whole_records` (the caller splits and matches
        lines itself and needs their positions). Buffered records are committed first, so a
        query sees every record recorded before it.
        """
        if self._buffer:
            await self._flush_logged(0)
        records = await self._store.query_logs(
            LogQuery(
                group=None if function is None else group_key(stage, function),
                group_prefix=f"{GROUP_PREFIX}{stage}/" if function is None else None,
                start_ms=since_ms,
                end_ms=until_ms,
                request_id=request_id,
                contains=contains,
                after_id=after_id,
                limit=limit,
                newest=newest,
                streams=streams,
            )
        )
        if contains is None or "\n" in contains or whole_records:
            # Text spanning lines matches whole records; dropping one would stall cursors.
            return records
        return matching_lines(records, contains)

    async def tail(
        self,
        *,
        stage: str,
        function: str | None = None,
        after_id: int | None = None,
        request_id: str | None = None,
        contains: str | None = None,
        poll_s: float = 0.25,
        batch_limit: int = 1000,
    ) -> AsyncGenerator[LogRecord, None]:
        """Yield matching records as they are committed, forever (until the service closes).

        Starts after `after_id`, or with None after the newest stored record (only new
        lines, as `unkai logs -t` after printing the recent ones). Polls every `poll_s`
        while there is nothing new.
        """
        cursor = after_id
        if cursor is None:
            last = await self.query(stage=stage, function=function, limit=1, newest=True)
            cursor = last[-1].id if last else 0
        while not self._closed:
            records = await self.query(
                stage=stage,
                function=function,
                request_id=request_id,
                contains=contains,
                after_id=cursor,
                limit=batch_limit,
            )
            for record in records:
                yield record
            if records:
                cursor = records[-1].id
            if len(records) < batch_limit:
                await asyncio.sleep(poll_s)

    # Retention

    async def purge_expired(self) -> int:
        """Delete records older than the retention; returns how many went."""
        return await self._store.purge_logs(self._clock_ms() - self._retention_ms)

    async def _purge_loop(self) -> None:
        while True:
            try:
                purged = await self.purge_expired()
            except Exception:  # boundary: retention is best effort; the next round retries
                log.exception("log retention purge failed")
            else:
                if purged:
                    log.info("purged %d log records older than the retention", purged)
            await asyncio.sleep(self._purge_interval_s)
