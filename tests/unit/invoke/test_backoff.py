"""The retry delay: every draw lies within [0, base * 2^(attempt-1)], capped, and the draws
spread over that range (full jitter), not clustered at the ceiling."""

from __future__ import annotations

import random

from unkai.invoke.backoff import ceiling_s, full_jitter


def test_ceiling_doubles_per_attempt_and_respects_the_cap() -> None:
    assert [ceiling_s(n, 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert ceiling_s(0, 1.0) == 1.0
    assert ceiling_s(10, 0.1, cap_s=5.0) == 5.0


def test_draws_stay_within_bounds_and_spread() -> None:
    random.seed(7)
    for attempt in (1, 2, 3):
        draws = [full_jitter(attempt, 60.0) for _ in range(2000)]
        top = 60.0 * 2 ** (attempt - 1)
        assert all(0 <= d <= top for d in draws)
        # Full jitter: about half the draws fall in the lower half of the range
        lower = sum(d < top / 2 for d in draws) / len(draws)
        assert 0.4 < lower < 0.6
    assert all(full_jitter(20, 0.1, cap_s=5.0) <= 5.0 for _ in range(500))
