"""Scaling policy as pure functions: counts in, decisions out; no processes, no clock reads.

Lambda starts a new execution environment for every request that finds none idle; unkai does
the same up to the node-wide cap, but a waiting request takes whichever instance frees up first
(a warm one or the new one), so a short burst rarely pays a cold start it did not need.
A short function is held to fewer instances with calls queued on them (`useful_instances`,
and `Pool.lend` for how the pool uses it).
"""

from __future__ import annotations

from collections.abc import Sequence

#: Calls of a function whose invocations mostly take less than this (the handler's own
#: time) may be queued on a busy instance instead of waking another one (see `Pool.lend`).
#: Three calls queued behind one such invocation wait at most 15 ms, under STALLED_AFTER_S.
#: Why not 1 ms (until session 14): a handler computing for about 1 ms took longer than that
#: once eight instances took turns on two CPUs, so the pool never queued it, and the turns
#: cost each call 220 µs more of the instances' CPU (docs/benchmarks.md, session 14).
QUEUE_BELOW_MS = 5.0
#: "Mostly": this share of a window's invocations.
SHORT_SHARE = 0.75
#: Invocations one instance holds at once: the running one and those queued behind it. It
#: also bounds how many calls wait behind an invocation that turns out slow.
QUEUE_DEPTH = 4
#: A busy instance whose invocation has run this long is passed over: nothing more is queued
#: on it, and it does not count towards `useful_instances`, so others serve in its place.
STALLED_AFTER_S = 0.02
#: Invocations averaged before the pool decides again whether to queue.
SAMPLE_WINDOW = 32


def instances_to_start(*, waiting: int, starting: int) -> int:
    """One new instance per request that waits and is not already covered by one starting."""
    return max(0, waiting - starting)


def expired_count(idle_last_used: Sequence[float], now: float, keep_alive_s: float) -> int:
    """How many of the idle instances (oldest first) have been idle longer than keep-alive."""
    count = 0
    for last_used in idle_last_used:
        if now - last_used < keep_alive_s:
            break
        count += 1
    return count


def useful_instances(busy: int, short: int, sum_ms: float, sum_cpu_ms: float, cpus: int) -> int:
    """How many instances of a short function keep the node's CPUs busy, from a window's
    `short` invocations, `busy` of which used the CPU for at least half their time.

    An instance that computes (the CPU figure covers the runtime's whole cycle, so a trivial
    handler counts as busy) needs no more than one per CPU: more only take turns on the same
    cores, and each turn costs a context switch. One that mostly waits needs proportionally
    more to fill them. Counting busy invocations, rather than dividing sums, keeps a few
    invocations that a loaded machine preempted from turning a computing function into a
    waiting one."""
    if busy * 2 >= short or sum_cpu_ms <= 0:
        return cpus
    return max(cpus, round(cpus * sum_ms / sum_cpu_ms))


def mostly_short(short: int, total: int) -> bool:
    """Whether enough of a window's invocations were short for the pool to queue."""
    return short >= total * SHORT_SHARE
