"""`SqliteBackend`: the default backend, one SQLite file in WAL mode (and its log segments).

  writes  -> Writer (writer.py): one thread, one connection, group commits; a method returns
             when its transaction committed.
  reads   -> Reader (reader.py): reader threads with their own connections; never wait for
             the writer, see everything committed before they started.
  SQL     -> documents.py (MetadataStore), logs.py (LogStore), queues.py (QueueStore: every
             call is a writer job, receives included); layout in schema.sql.
  logs    -> log records in blocks in segment files beside the file (`<file>-logs/`,
             log_files.py), indexed in the file; the writer appends, readers read.

The event loop only encodes/decodes and awaits. Safe for any number of concurrent tasks; one
process per file (a second process on the same file works, but waits on SQLite's lock).
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from unkai.backends.base import (
    Document,
    LogQuery,
    LogRecord,
    NewMessage,
    QueueCounts,
    QueuedMessage,
    ReceiveRequest,
    SentMessage,
    Write,
)
from unkai.backends.sqlite import documents, log_blocks, logs, queues
from unkai.backends.sqlite.log_files import SEGMENT_BYTES, LogFiles
from unkai.backends.sqlite.reader import Reader
from unkai.backends.sqlite.writer import Writer
from unkai.errors import ConfigError


def _schema_sql() -> str:
    return resources.files("unkai.backends.sqlite").joinpath("schema.sql").read_text("utf-8")


class SqliteBackend:
    """Implements `unkai.backends.base.Backend` on the file at `path` (created on open)."""

    def __init__(
        self, path: Path, *, reader_threads: int = 2, log_segment_bytes: int = SEGMENT_BYTES
    ) -> None:
        self.path = path
        self._writer = Writer(path, _schema_sql())
        self._reader = Reader(path, threads=reader_threads)
        self.log_files = LogFiles(
            path.with_name(path.name + "-logs"), segment_bytes=log_segment_bytes
        )

    async def open(self) -> None:
        """Create the file and its directory if needed, apply the schema, and move the log
        records of an older layout (one row each) into blocks."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.log_files.open()
        await self._writer.start()
        files = self.log_files
        while await self._writer.submit(lambda conn: logs.migrate_rows(conn, files)):
            pass

    async def close(self) -> None:
        """Commit every queued write, then close all connections. Idempotent."""
        await self._writer.stop()
        await self._reader.close()
        self.log_files.close()

    # MetadataStore

    async def get(self, kind: str, key: str) -> Document | None:
        return await self._reader.run(lambda conn: documents.get(conn, kind, key))

    async def list(
        self, kind: str, prefix: str = "", *, after: str | None = None, limit: int | None = None
    ) -> list[Document]:
        if limit is not None and limit < 1:
            raise ConfigError(f"must be at least 1, got {limit}", field="limit")
        return await self._reader.run(
            lambda conn: documents.list_prefix(conn, kind, prefix, after, limit)
        )

    async def commit(self, writes: Sequence[Write]) -> None:
        """Apply `writes` atomically; raises Conflict (nothing written) on a failed check.

        Raises ConfigError for a negative `expected_revision` and TypeError for a value that
        is not JSON-serializable; both before anything is queued.
        """
        for w in writes:
            if w.expected_revision is not None and w.expected_revision < 0:
                raise ConfigError(
                    f"must be None, 0 or a revision >= 1, got {w.expected_revision} "
                    f"for {w.kind} {w.key!r}",
                    field="expected_revision",
                )
        if not writes:
            return
        encoded = documents.encode(writes)
        await self._writer.submit(lambda conn: documents.apply(conn, encoded))

    # LogStore

    async def append_logs(self, records: Sequence[LogRecord]) -> None:
        """Commit `records`, then set their ids (increasing in append order)."""
        if not records:
            return
        files = self.log_files
        blocks: list[log_blocks.Block] = []
        for start in range(0, len(records), logs.BLOCK_RECORDS):
            if blocks:
                # The loop serves what is ready between two blocks: about 0.3 ms each, where
                # a whole flush (~700 records of `GET /hello` under load) held it ~1 ms.
                await asyncio.sleep(0)
            blocks.append(log_blocks.encode(records[start : start + logs.BLOCK_RECORDS]))
        first_id = await self._writer.submit(lambda conn: logs.append(conn, files, blocks))
        for offset, record in enumerate(records):
            record.id = first_id + offset

    async def query_logs(self, query: LogQuery) -> builtins.list[LogRecord]:
        """Matching records in ascending id order; raises ConfigError for a limit below 1."""
        if query.limit < 1:
            raise ConfigError(f"must be at least 1, got {query.limit}", field="limit")
        files = self.log_files
        return await self._reader.run(lambda conn: logs.query(conn, files, query))

    async def purge_logs(self, before_ms: int) -> int:
        """Delete records older than `before_ms` in chunks, so other writes interleave, then
        the segment files no block uses any more.

        Not atomic as a whole (it need not be): a crash midway leaves only newer records.
        """
        files = self.log_files
        total = 0
        more = True
        while more:
            deleted, more = await self._writer.submit(
                lambda conn: logs.purge_chunk(conn, files, before_ms)
            )
            total += deleted
        # After the purge committed: a file is deleted only once no committed row uses it.
        await self._writer.submit(lambda conn: files.drop_unused(logs.used_segments(conn)))
        return total

    # QueueStore

    async def send_messages(
        self, queue: str, messages: Sequence[NewMessage], now_ms: int, dedup_window_ms: int
    ) -> builtins.list[SentMessage]:
        return await self._writer.submit(
            lambda conn: queues.send(conn, queue, messages, now_ms, dedup_window_ms)
        )

    async def receive_messages(self, request: ReceiveRequest) -> builtins.list[QueuedMessage]:
        return await self._writer.submit(lambda conn: queues.receive(conn, request))

    async def delete_messages(self, queue: str, receipts: Sequence[str]) -> int:
        return await self._writer.submit(lambda conn: queues.delete(conn, queue, receipts))

    async def change_visibility(
        self, queue: str, changes: Sequence[tuple[str, int]], now_ms: int
    ) -> builtins.list[bool]:
        return await self._writer.submit(
            lambda conn: queues.change_visibility(conn, queue, changes, now_ms)
        )

    async def move_messages(self, source: str, destination: str, limit: int, now_ms: int) -> int:
        return await self._writer.submit(
            lambda conn: queues.move(conn, source, destination, limit, now_ms)
        )

    async def return_messages(self, queue: str, receipts: Sequence[str], now_ms: int) -> int:
        return await self._writer.submit(
            lambda conn: queues.return_unreceived(conn, queue, receipts, now_ms)
        )

    async def purge_queue(self, queue: str) -> int:
        return await self._writer.submit(lambda conn: queues.purge(conn, queue))

    async def drop_queue(self, queue: str) -> int:
        return await self._writer.submit(lambda conn: queues.drop(conn, queue))

    async def expire_messages(self, queue: str, sent_before_ms: int, now_ms: int) -> int:
        return await self._writer.submit(
            lambda conn: queues.expire(conn, queue, sent_before_ms, now_ms)
        )

    async def count_messages(self, queue: str, now_ms: int) -> QueueCounts:
        return await self._reader.run(lambda conn: queues.counts(conn, queue, now_ms))
