"""Reads of a sqlite database, off the event loop.

A few threads, each with its own read-only connection, run plain functions of a connection.
In WAL mode readers never wait for the writer thread and always see every transaction that
committed before their statement began, so a read awaited after a commit sees that commit.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from unkai.backends.sqlite.writer import connect

T = TypeVar("T")


class Reader:
    """Runs read functions on `threads` threads; each thread opens its connection lazily."""

    def __init__(self, path: Path, *, threads: int = 2) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="sqlite-reader")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._open = True

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(connection)` on a reader thread; raises what `fn` raises."""
        if not self._open:
            raise RuntimeError(f"sqlite reader for {self._path} is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn)

    async def close(self) -> None:
        """Wait for running reads, then close every connection."""
        if not self._open:
            return
        self._open = False
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._path)
            conn.execute("PRAGMA query_only = 1")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return fn(conn)
