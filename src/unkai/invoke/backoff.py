"""Exponential backoff with full jitter, the one retry delay of the platform (asynchronous
events, topic deliveries, throttled queue pollers): a uniform draw between 0 and
`base * 2^(attempt - 1)`, capped, which spreads retries that failed together
(https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/)."""

from __future__ import annotations

import random


def ceiling_s(attempt: int, base_s: float, cap_s: float | None = None) -> float:
    """The longest wait before retry number `attempt` (1 = the first retry)."""
    # The exponent is bounded: 2.0 ** 1024 overflows, and a doubling past 2^62 means nothing.
    ceiling: float = base_s * 2.0 ** min(max(0, attempt - 1), 62)
    return ceiling if cap_s is None else min(ceiling, cap_s)


def full_jitter(attempt: int, base_s: float, cap_s: float | None = None) -> float:
    """A wait drawn uniformly from [0, ceiling_s(attempt, base_s, cap_s)]."""
    return random.uniform(0, ceiling_s(attempt, base_s, cap_s))
