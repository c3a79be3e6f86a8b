"""The one writer thread of a sqlite database: group commits, and the loop never blocks.

SQLite allows one writer at a time, and a commit's cost is mostly fixed (WAL append, lock
dance), so the cheapest way to take many small writes from many asyncio tasks is to queue them
to a single thread that owns the only write connection:

  submit(job) --SimpleQueue--> writer thread: take every job queued so far (up to
  `max_batch_jobs`), BEGIN IMMEDIATE, run each job inside its own SAVEPOINT, COMMIT once,
  then settle the jobs' futures on their loops (one `call_soon_threadsafe` per loop per batch).

A job is a plain function of the connection. A job that raises rolls back to its savepoint:
its writes vanish, the rest of the batch commits, and its future gets the exception (this is
how a failed optimistic check writes nothing). Futures resolve only after COMMIT returned, so
"awaited" means "committed". If BEGIN, a rollback or COMMIT fails, every job of the batch fails
with that error and nothing of it is stored.

Durability: WAL with synchronous=NORMAL. A committed transaction survives the process being
killed (it is in the WAL file); it may be lost only on power failure or an OS crash before the
next checkpoint's fsync (https://www.sqlite.org/pragma.html#pragma_synchronous). That is the
usual trade for a single-node platform; the redis backend has its own story.

A job submitted by a task that is later cancelled still runs: like any database, a cancelled
caller does not know whether its write landed. Callers that record outcomes shield them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], T]

log = logging.getLogger(__name__)

#: Waits this long for a lock held by another process (a second platform on the same file,
#: or the sqlite3 shell) before a write fails with "database is locked".
BUSY_TIMEOUT_MS = 5000


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the platform's pragmas; autocommit mode (we issue BEGIN ourselves)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


@dataclass(slots=True)
class _Item:
    job: Job[Any] | None  # None: the stop marker
    future: asyncio.Future[Any]


#: (future, value, error) after a batch; the loop side sets one of them.
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


class Writer:
    """Owns the write connection of `path`; see the module docstring for the pipeline."""

    def __init__(self, path: Path, schema_sql: str, *, max_batch_jobs: int = 1024) -> None:
        self._path = path
        self._schema_sql = schema_sql
        self._max_batch_jobs = max_batch_jobs
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._accepting = False

    async def start(self) -> None:
        """Start the thread, open the file and apply the schema; raises what opening raised."""
        if self._thread is not None:
            raise RuntimeError(f"sqlite writer for {self._path} was already started")
        self._thread = threading.Thread(
            target=self._run, name=f"sqlite-writer:{self._path.name}", daemon=True
        )
        self._accepting = True
        self._thread.start()
        await self.submit(self._apply_schema)

    def submit(self, job: Job[T]) -> asyncio.Future[T]:
        """Queue `job`; the future resolves with its return value once its batch committed."""
        if not self._accepting:
            raise RuntimeError(f"sqlite writer for {self._path} is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Item(job, future))
        return future

    async def stop(self) -> None:
        """Commit everything queued so far, close the connection and end the thread."""
        if not self._accepting:
            return
        self._accepting = False
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put(_Item(None, done))
        await done

    def _apply_schema(self, conn: sqlite3.Connection) -> None:
        # executescript would COMMIT our batch transaction; the statements run one by one.
        for statement in _statements(self._schema_sql):
            conn.execute(statement)

    def _run(self) -> None:
        try:
            conn = connect(self._path)
        except Exception as exc:
            log.error("cannot open %s for writing: %s", self._path, exc)
            self._fail_until_stopped(exc)
            return
        try:
            stops = self._serve(conn)
        except Exception as exc:  # a bug: fail later callers rather than leave them waiting
            log.exception("sqlite writer for %s stopped", self._path)
            conn.close()
            self._fail_until_stopped(exc)
            return
        conn.close()
        _settle([(item.future, None, None) for item in stops])

    def _serve(self, conn: sqlite3.Connection) -> list[_Item]:
        """Commit batches until a stop marker arrives; returns the stop markers."""
        while True:
            batch = self._next_batch()
            jobs = [item for item in batch if item.job is not None]
            if jobs:
                _settle(self._commit(conn, jobs))
            stops = [item for item in batch if item.job is None]
            if stops:
                return stops

    def _next_batch(self) -> list[_Item]:
        """Block for one item, then take whatever else is already queued (group commit)."""
        batch = [self._queue.get()]
        while len(batch) < self._max_batch_jobs:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _commit(self, conn: sqlite3.Connection, jobs: list[_Item]) -> list[_Outcome]:
        try:
            conn.execute("BEGIN IMMEDIATE")
            outcomes = [_run_in_savepoint(conn, item) for item in jobs]
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.error("sqlite batch of %d jobs on %s failed: %s", len(jobs), self._path, exc)
            with contextlib.suppress(sqlite3.Error):  # already rolled back by sqlite
                conn.execute("ROLLBACK")
            return [(item.future, None, exc) for item in jobs]
        return outcomes

    def _fail_until_stopped(self, error: Exception) -> None:
        while True:
            item = self._queue.get()
            _settle([(item.future, None, None if item.job is None else error)])
            if item.job is None:
                return


def _run_in_savepoint(conn: sqlite3.Connection, item: _Item) -> _Outcome:
    """Run one job; on its exception undo only its writes. sqlite3.Error fails the batch."""
    job = item.job
    if job is None:  # filtered out by the caller; keeps mypy and readers honest
        return (item.future, None, None)
    conn.execute("SAVEPOINT job")
    try:
        value = job(conn)
    except Exception as exc:
        conn.execute("ROLLBACK TO job")
        conn.execute("RELEASE job")
        return (item.future, None, exc)
    conn.execute("RELEASE job")
    return (item.future, value, None)


def _settle(outcomes: list[_Outcome]) -> None:
    """Hand results to each future's loop: one thread-safe call per loop, not per future."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_set_all, items)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            log.debug("dropping %d sqlite results for a closed loop", len(items))


def _set_all(outcomes: list[_Outcome]) -> None:
    for future, value, error in outcomes:
        if future.done():  # cancelled while queued
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)


def _statements(script: str) -> list[str]:
    """Split schema.sql into statements (it has no semicolons inside literals or triggers)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
