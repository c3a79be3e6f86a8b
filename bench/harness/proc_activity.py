"""What an idle process does: its CPU time and how often its main thread wakes, from /proc.

CPU time is the sum of every thread's run time in `/proc/<pid>/task/<tid>/schedstat`
(nanoseconds, unlike the 10 ms ticks of `/proc/<pid>/stat`); wake-ups are the main thread's
`voluntary_ctxt_switches` (each sleep ends in one wake-up), which for an asyncio server is
its event loop. Source: https://docs.kernel.org/scheduler/sched-stats.html
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Activity:
    cpu_ms_per_s: float
    wakeups_per_s: float


def _run_ns(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
    return total


def _wakeups(pid: int) -> int:
    for line in Path(f"/proc/{pid}/task/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise OSError(f"no voluntary_ctxt_switches for {pid}")


def idle_activity(pid: int, seconds: float) -> Activity:
    """Watch `pid` for `seconds` (bounded; nothing is sent to it meanwhile)."""
    run0, wake0, t0 = _run_ns(pid), _wakeups(pid), time.monotonic()
    time.sleep(seconds)
    run1, wake1, t1 = _run_ns(pid), _wakeups(pid), time.monotonic()
    elapsed = t1 - t0
    return Activity((run1 - run0) / 1e6 / elapsed, (wake1 - wake0) / elapsed)
