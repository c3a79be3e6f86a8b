"""Scaling policy as pure functions: counts in, decisions out; no processes, no clock reads.

Lambda starts a new execution environment for every request that finds none idle; unkai does
the same up to the node-wide cap, but a waiting request takes whichever instance frees up first
(a warm one or the new one), so a short burst rarely pays a cold start it did not need.
"""

from __future__ import annotations

from collections.abc import Sequence


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
