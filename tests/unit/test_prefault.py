"""prefault: which pages a forked child copied, and copying them ahead, against the real kernel."""

from __future__ import annotations

import ctypes
import mmap
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from unkai.runtime import prefault

PAGE = prefault.PAGE_SIZE

MAPS = """\
55d0a0000000-55d0a0002000 r--p 00000000 08:01 1234   /usr/bin/python3.11
55d0a0002000-55d0a0004000 r-xp 00002000 08:01 1234   /usr/bin/python3.11
55d0a0010000-55d0a0012000 rw-p 00010000 08:01 1234   /usr/bin/python3.11
55d0a1000000-55d0a1100000 rw-p 00000000 00:00 0      [heap]
7f0000000000-7f0000004000 rw-s 00000000 00:01 99     /dev/shm/shared
7f0000010000-7f0000020000 rw-p 00000000 00:00 0
7f0000020000-7f0000021000 ---p 00000000 00:00 0
"""


def test_only_writable_private_mappings_are_candidates() -> None:
    assert prefault.writable_private_ranges(MAPS) == [
        (0x55D0A0010000, 0x55D0A0012000),  # a binary's data: copied on write too
        (0x55D0A1000000, 0x55D0A1100000),
        (0x7F0000010000, 0x7F0000020000),
    ]


def test_consecutive_pages_become_one_run() -> None:
    assert prefault.runs_of(set()) == []
    assert prefault.runs_of({5, 3, 4, 9, 11, 10}) == [(3 * PAGE, 3 * PAGE), (9 * PAGE, 3 * PAGE)]
    assert prefault.runs_of({7}) == [(7 * PAGE, PAGE)]


def pages_of(buffer: mmap.mmap) -> list[int]:
    start = ctypes.addressof(ctypes.c_char.from_buffer(buffer)) // PAGE
    return [start + i for i in range(len(buffer) // PAGE)]


@contextmanager
def child(work: Callable[[], None]) -> Iterator[int]:
    """A forked child that runs `work`, then waits (so its pagemap can be read) until the
    context ends. If `work` raises, the child exits at once and entering the context fails."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(go_w)
            os.close(ready_r)
            work()
            os.write(ready_w, b"x")
            os.read(go_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(go_r)
    try:
        assert os.read(ready_r, 1) == b"x", "the child's work failed"
        yield pid
    finally:
        os.close(go_w)
        os.close(ready_r)
        os.waitpid(pid, 0)


def shared_buffer(pages: int) -> mmap.mmap:
    """Private anonymous memory, every page present in this process (so a child shares it)."""
    buffer = mmap.mmap(-1, pages * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    for offset in range(0, pages * PAGE, PAGE):
        buffer[offset] = 1
    return buffer


def test_the_pages_a_child_wrote_are_its_exclusive_ones() -> None:
    buffer = shared_buffer(8)
    pages = pages_of(buffer)

    def write_pages_2_and_5() -> None:
        buffer[2 * PAGE] = 2
        buffer[5 * PAGE] = 2

    with child(write_pages_2_and_5) as pid:
        found = prefault.exclusive_pages(pid, prefault.own_writable_ranges())
    assert set(pages) & found == {pages[2], pages[5]}


def test_populate_copies_the_runs_without_writing_them() -> None:
    buffer = shared_buffer(8)
    pages = pages_of(buffer)

    def populate_pages_1_to_3() -> None:  # an assertion that fails here fails `child`
        assert prefault.populate(prefault.runs_of(set(pages[1:4]))) == 3 * PAGE
        assert buffer[PAGE] == 1  # contents unchanged

    with child(populate_pages_1_to_3) as pid:
        found = prefault.exclusive_pages(pid, prefault.own_writable_ranges())
    assert set(pages) & found == set(pages[1:4])


def test_populate_stops_when_its_socket_has_data() -> None:
    buffer = shared_buffer(4)
    readable_r, readable_w = os.pipe()
    os.write(readable_w, b"SPAWN")
    try:
        assert prefault.populate(prefault.runs_of(set(pages_of(buffer))), readable_r) == 0
    finally:
        os.close(readable_r)
        os.close(readable_w)


def test_a_gone_process_teaches_nothing() -> None:
    with child(lambda: None) as pid:
        pass
    assert prefault.exclusive_pages(pid, prefault.own_writable_ranges()) == set()


def test_a_process_is_alive_until_it_exits() -> None:
    with child(lambda: None) as pid:
        assert prefault.alive(pid)
    assert not prefault.alive(pid)
    assert prefault.alive(os.getpid())


def test_a_zombie_is_not_alive() -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os._exit(0)
    try:
        deadline = time.monotonic() + 5
        while b") Z " not in Path(f"/proc/{pid}/stat").read_bytes():
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.001)
        assert not prefault.alive(pid)
    finally:
        os.waitpid(pid, 0)
