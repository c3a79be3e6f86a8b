"""`LogFiles`: the segment files that hold log blocks, beside the database.

`<db>-logs/<segment>.log`, numbered from 1. The writer thread appends each block with one
`write` to the newest segment and starts a new segment once that one holds `segment_bytes`;
reader threads read a block by (segment, offset, length). A block is written before the index
row that points at it is committed, so a reader never finds a row without its bytes; bytes
without a row (a crash between the two, or a failed commit) are never read, and go with their
segment.

Appends run inside the writer's transaction, so they hold SQLite's write lock: a second
process on the same database (which SQLite allows) appends only while this one does not, and
each takes its offset from the file's real end. A segment is deleted only once no block uses
it, it is older than the newest used one (another process may be filling a newer one), and it
was already unused at the previous purge: a query reads the index rows of its snapshot, which
may still name a segment the purge just emptied.

Durability: the bytes are in the OS's cache when `write` returns, so they survive `kill -9` of
the platform. The active segment is fdatasync'ed at most once per `sync_interval_s` (and when
it is left for the next), so an OS crash may lose about the last second of records, as it may
lose the WAL's newest commits (synchronous=NORMAL). A block that no longer reads back whole
(its row survived, its bytes did not) is skipped by queries with a warning (logs.py), never
returned cut.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from pathlib import Path

SEGMENT_BYTES = 64 * 1024 * 1024
SYNC_INTERVAL_S = 1.0
_SUFFIX = ".log"


class LogFiles:
    """Appends (one thread at a time: the writer's) and reads (any thread) of segments."""

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = SEGMENT_BYTES,
        sync_interval_s: float = SYNC_INTERVAL_S,
    ) -> None:
        self.directory = directory
        self._segment_bytes = segment_bytes
        self._sync_interval_s = sync_interval_s
        self._fd = -1
        self._segment = 0
        self._size = 0
        self._synced_at = 0.0
        #: Segments no block used at the previous `drop_unused`.
        self._unused: set[int] = set()

    def open(self) -> None:
        """Create the directory if needed and continue the newest segment."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._open_segment(max(self.segments(), default=1))

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.fdatasync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def append(self, data: bytes) -> tuple[int, int]:
        """Write `data` at the end of the newest segment; returns (segment, offset). Call
        with SQLite's write lock held (in a writer job)."""
        if self._size >= self._segment_bytes:
            self._open_segment(self._segment + 1)
        offset = os.fstat(self._fd).st_size  # another process may have appended since
        written = os.write(self._fd, data)
        self._size = offset + written
        if written != len(data):  # a full disk: the caller's commit fails, the block is retried
            raise OSError(f"short write to log segment {self._segment}: {written} of {len(data)}")
        now = time.monotonic()
        if now - self._synced_at >= self._sync_interval_s:
            os.fdatasync(self._fd)
            self._synced_at = now
        return self._segment, offset

    def read(self, segment: int, offset: int, length: int) -> bytes | None:
        """A block's bytes, or None when its segment is gone."""
        try:
            fd = os.open(self._path(segment), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    def segments(self) -> list[int]:
        """The numbers of the segment files on disk, ascending."""
        numbers = []
        for path in self.directory.glob(f"*{_SUFFIX}"):
            with contextlib.suppress(ValueError):
                numbers.append(int(path.stem))
        return sorted(numbers)

    def drop_unused(self, used: Iterable[int]) -> int:
        """Delete the segments no block uses that were unused at the previous call too (see
        the module docstring); returns how many went."""
        used = set(used)
        newest = max(used | {self._segment})
        unused = {n for n in self.segments() if n not in used and n < newest}
        dropped = 0
        for number in sorted(unused & self._unused):
            with contextlib.suppress(FileNotFoundError):
                self._path(number).unlink()
                dropped += 1
        self._unused = unused - self._unused
        return dropped

    def _open_segment(self, number: int) -> None:
        self.close()
        self._fd = os.open(self._path(number), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._segment = number
        self._size = os.fstat(self._fd).st_size

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:012d}{_SUFFIX}"
