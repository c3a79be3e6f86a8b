"""Resource limits applied inside a freshly forked instance, and the RSS probe used to enforce them.

Stdlib only: the zygote imports this before it forks, so the child pays nothing for it.

Lambda enforces `MemorySize` on the whole sandbox and kills it when the limit is crossed
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html). We do the same in two
layers:

1. The platform's memory watchdog samples the resident set of BUSY instances every ~15 ms
   (`read_rss_kb`) and SIGKILLs one that exceeds `memory_size_mb`. RSS is what Lambda meters,
   so this decides the `Runtime.OutOfMemory` outcome in the normal case.
2. `apply_instance_limits` sets an `RLIMIT_AS` backstop in the child: the address space at fork,
   plus the function's memory, plus headroom. Virtual size is far above RSS for Python (arenas,
   thread stacks), so the backstop only stops a single giant allocation from taking the machine
   down before the watchdog's next sample; such a `MemoryError` is reported as OutOfMemory too.
"""

from __future__ import annotations

import contextlib
import os
import resource

#: Extra address space above "size at fork + memory limit": covers malloc arenas and thread
#: stacks, which reserve address space without using memory. At least this many MiB.
MIN_HEADROOM_MB = 256

#: Lambda's per-process file descriptor quota (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
MAX_OPEN_FILES = 1024

_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def read_rss_kb(pid: int) -> int | None:
    """Resident set of `pid` in KiB from /proc/<pid>/statm; None when the process is gone.

    One open/read/close; cheap enough to call every few milliseconds for each busy instance.
    """
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            fields = statm.read().split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[1]) * _PAGE_KB


class RssProbe:
    """`read_rss_kb` for one process sampled many times: /proc/<pid>/statm stays open, so a
    sample is one pread instead of open, fstat, ioctl, lseek, two reads and close (measured
    2.4 vs 15 us). The descriptor belongs to that process: once it is gone, reads fail
    (ESRCH) rather than read another process that got the same pid."""

    __slots__ = ("_fd",)

    def __init__(self, pid: int) -> None:
        try:
            self._fd: int | None = os.open(f"/proc/{pid}/statm", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._fd = None

    def read_kb(self) -> int | None:
        """Resident set in KiB; None when the process is gone."""
        if self._fd is None:
            return None
        try:
            return int(os.pread(self._fd, 128, 0).split()[1]) * _PAGE_KB
        except (OSError, IndexError, ValueError):
            self.close()
            return None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


#: How often a busy instance's resident set is sampled (the platform's watchdog, and
#: `unkai invoke local`).
WATCHDOG_INTERVAL_S = 0.015


def over_memory_size(rss_kb: int, memory_size_mb: int) -> bool:
    """Whether a resident set is past the function's memory size (Lambda then kills it)."""
    return rss_kb > memory_size_mb * 1024


def read_vm_size_kb() -> int:
    """Address space of the current process in KiB (VmSize), 0 when /proc is unavailable."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * _PAGE_KB
    except OSError:
        return 0


def address_space_limit_bytes(vm_size_kb: int, memory_size_mb: int) -> int:
    """The RLIMIT_AS backstop: size at fork + memory limit + headroom (see module docstring)."""
    headroom_mb = max(MIN_HEADROOM_MB, memory_size_mb)
    return vm_size_kb * 1024 + (memory_size_mb + headroom_mb) * 1024 * 1024


def use_batch_policy() -> None:
    """Put the calling thread (and the threads and processes it starts later) under SCHED_BATCH:
    a thread of this policy that wakes up does not preempt the one running on that core; it
    waits for the running one's time slice to end, or for a free core.

    Every instance runs so: every invocation wakes an instance, and under the default policy
    the woken instance preempted the platform mid-request (measured: about 3x fewer requests
    per second on 2 cores). The platform runs so too unless `--no-batch-scheduling`: when
    instances compute on every core, a platform that woke for each request and result
    preempted one of them each time, and ran its own Python on caches they had just filled
    (docs/benchmarks.md, session 17). No privileges needed; a CPU-bound process keeps its
    share of the CPU.
    """
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def apply_instance_limits(memory_size_mb: int) -> None:
    """Set the child's rlimits: address-space backstop, no core dumps, Lambda's fd quota.

    Called once, in the forked child, before the handler is imported. Limits can only be
    lowered, so each one is clamped to the current hard limit.
    """
    apply_fixed_limits()
    limit_address_space(read_vm_size_kb(), memory_size_mb)


def apply_fixed_limits() -> None:
    """The limits every instance has, whatever its function: no core dumps, Lambda's fd
    quota (a zygote's spare sets them while it waits)."""
    _lower(resource.RLIMIT_CORE, 0)
    _lower(resource.RLIMIT_NOFILE, MAX_OPEN_FILES)


def limit_address_space(vm_size_kb: int, memory_size_mb: int) -> None:
    """The RLIMIT_AS backstop for a process whose address space was `vm_size_kb` at fork."""
    _lower(resource.RLIMIT_AS, address_space_limit_bytes(vm_size_kb, memory_size_mb))


def _lower(which: int, value: int) -> None:
    _soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value if hard == resource.RLIM_INFINITY else hard))
