"""Copy-on-write faults taken ahead of a cold start: a zygote learns which of its pages its
instances write to, and a spare (zygote_main.py) copies those pages while it waits.

Stdlib only: the zygote imports this before it forks, so the child pays nothing for it.

Why: a forked instance shares the zygote's pages until it writes to one, and Python writes to
almost everything it touches (reference counts). An instance's start (environment, log capture,
the handler's import, the first invocation) writes to about 470 of the zygote's pages after
its SPAWN arrives, and on this machine each copy-on-write fault costs 5-6.5 µs: 2.5-3 ms of a
cold start (docs/benchmarks.md, session 14). A spare is forked before anyone waits for it, so
the copies it makes then cost no one time.

Which pages: the kernel tells. `/proc/<pid>/pagemap` has one 64-bit entry per virtual page,
with bit 63 set when the page is present and bit 56 when it is mapped by that process alone
(https://docs.kernel.org/admin-guide/mm/pagemap.html). In the zygote's writable private
mappings, an instance's exclusive pages are the ones it copied (or that were first touched
after the fork). The zygote reads them from an instance after its first result, and a spare
asks for exactly those with `madvise(MADV_POPULATE_WRITE)` (Linux 5.14): the same copies the
instance would make, made earlier, so the memory each instance uses does not change. On an
older kernel, or where pagemap cannot be read, nothing is learned and nothing changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
from array import array

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
#: madvise(2) advice, Linux 5.14 and later.
MADV_POPULATE_WRITE = 23
_PRESENT = 1 << 63
_EXCLUSIVE = 1 << 56
#: The task flag set when a process begins to exit (include/linux/sched.h).
_PF_EXITING = 0x4

#: How many instances a zygote learns its pages from: their union is what a spare copies (one
#: start is much like the next, and each lesson costs a pagemap read).
MAX_LESSONS = 4

#: A run of pages: (start address, length in bytes).
Run = tuple[int, int]


def writable_private_ranges(maps: str) -> list[tuple[int, int]]:
    """The (start, end) address ranges of the writable private mappings in a
    /proc/<pid>/maps text: where a child's writes make copy-on-write faults."""
    ranges = []
    for line in maps.splitlines():
        fields = line.split(maxsplit=2)
        if len(fields) < 2:
            continue
        perms = fields[1]
        if perms[1:2] == "w" and perms[3:4] == "p":
            start, _, end = fields[0].partition("-")
            ranges.append((int(start, 16), int(end, 16)))
    return ranges


def own_writable_ranges() -> list[tuple[int, int]]:
    with open("/proc/self/maps") as maps:
        return writable_private_ranges(maps.read())


def exclusive_pages(pid: int, ranges: list[tuple[int, int]]) -> set[int]:
    """Page numbers (address // PAGE_SIZE) within `ranges` that `pid` has present and maps
    alone. Empty when its pagemap cannot be read (gone, or not ours to read)."""
    pages: set[int] = set()
    try:
        fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return pages
    wanted = _PRESENT | _EXCLUSIVE
    try:
        for start, end in ranges:
            first = start // PAGE_SIZE
            entries = array("Q")
            with contextlib.suppress(OSError):
                entries.frombytes(os.pread(fd, (end - start) // PAGE_SIZE * 8, first * 8))
            pages.update(first + i for i, entry in enumerate(entries) if entry & wanted == wanted)
    finally:
        os.close(fd)
    return pages


def alive(pid: int) -> bool:
    """Whether `pid` still runs: not gone, not a zombie, not exiting. Asked after reading its
    pagemap: a process killed meanwhile (a drain) is marked exiting before its memory goes."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        state, flags = fields[0], int(fields[6])
    except (OSError, IndexError, ValueError):
        return False
    return state not in (b"Z", b"X", b"x") and not flags & _PF_EXITING


def runs_of(pages: set[int]) -> list[Run]:
    """Consecutive pages merged into (address, length) runs: one madvise call each."""
    runs: list[Run] = []
    start = previous = -2
    for page in sorted(pages):
        if page != previous + 1:
            if start >= 0:
                runs.append((start * PAGE_SIZE, (previous + 1 - start) * PAGE_SIZE))
            start = page
        previous = page
    if start >= 0:
        runs.append((start * PAGE_SIZE, (previous + 1 - start) * PAGE_SIZE))
    return runs


#: How many runs to populate between two looks at the spare's socket.
RUNS_PER_CHECK = 16


def populate(runs: list[Run], stop_when_readable: int = -1) -> int:
    """Make this process's private copies of `runs` now; returns the bytes populated.

    With `stop_when_readable`, stops early once that descriptor has data: a SPAWN that
    arrives meanwhile is not kept waiting (the rest fault in as the instance runs).

    A run that is no longer mapped (the zygote freed it after learning) is skipped; an
    EINVAL before anything was populated means a kernel without MADV_POPULATE_WRITE."""
    if not runs:
        return 0
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    madvise.restype = ctypes.c_int
    poller = None
    if stop_when_readable >= 0:
        poller = select.poll()
        poller.register(stop_when_readable, select.POLLIN)
    done = 0
    for index, (address, length) in enumerate(runs):
        if poller is not None and index % RUNS_PER_CHECK == 0 and poller.poll(0):
            break
        if madvise(address, length, MADV_POPULATE_WRITE) == 0:
            done += length
        elif ctypes.get_errno() == errno.EINVAL and not done:
            break
    return done
