"""`LogFiles`: the segment files that hold log blocks, beside the database.

`<db>-logs/<segment>.log`, numbered from 1. The writer thread appends each block with one
`write` to the newest segment and starts a new segment once that one holds `segment_bytes`;
reader threads read a block by (segment, offset, length). A block is written before the index
row that points at it is committed, so a reader never finds a row without its bytes; bytes
without a row (a crash between the two, or a failed commit) are never read, and go with their
segment.

Durability is the database's: the bytes are in the OS's cache when `write` returns, so they
survive `kill -9` of the platform; an OS crash may lose the newest blocks as it may lose the
WAL's newest commits (synchronous=NORMAL). A block that no longer reads back whole is skipped
by queries with a warning (logs.py), never returned cut.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

SEGMENT_BYTES = 64 * 1024 * 1024
_SUFFIX = ".log"


class LogFiles:
    """Appends (one thread at a time: the writer's) and reads (any thread) of segments."""

    def __init__(self, directory: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self._segment_bytes = segment_bytes
        self._fd = -1
        self._segment = 0
        self._size = 0

    def open(self) -> None:
        """Create the directory if needed and continue the newest segment."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._open_segment(max(self.segments(), default=1))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def append(self, data: bytes) -> tuple[int, int]:
        """Write `data` at the end of the newest segment; returns (segment, offset)."""
        if self._size >= self._segment_bytes:
            self._open_segment(self._segment + 1)
        offset = self._size
        try:
            written = os.write(self._fd, data)
        except OSError:
            self._size = os.fstat(self._fd).st_size  # a partial write moved the end
            raise
        self._size += written
        if written != len(data):  # a full disk: the caller's commit fails, the block is retried
            raise OSError(f"short write to log segment {self._segment}: {written} of {len(data)}")
        return self._segment, offset

    def read(self, segment: int, offset: int, length: int) -> bytes | None:
        """A block's bytes, or None when its segment is gone (purged meanwhile)."""
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
        """Delete the segments no block uses, except the newest; returns how many went."""
        keep = set(used) | {self._segment}
        dropped = 0
        for number in self.segments():
            if number not in keep:
                with contextlib.suppress(FileNotFoundError):
                    self._path(number).unlink()
                    dropped += 1
        return dropped

    def _open_segment(self, number: int) -> None:
        self.close()
        self._fd = os.open(self._path(number), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._segment = number
        self._size = os.fstat(self._fd).st_size

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:012d}{_SUFFIX}"
