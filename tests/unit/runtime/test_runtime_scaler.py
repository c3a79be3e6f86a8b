"""The scaling policy, without processes."""

from __future__ import annotations

import pytest

from unkai.runtime import scaler


@pytest.mark.parametrize(
    ("waiting", "starting", "expected"),
    [(0, 0, 0), (1, 0, 1), (3, 1, 2), (1, 2, 0)],
)
def test_one_start_per_uncovered_waiter(waiting: int, starting: int, expected: int) -> None:
    assert scaler.instances_to_start(waiting=waiting, starting=starting) == expected


def test_expired_counts_the_oldest_idle_instances_only() -> None:
    # Given idle instances ordered oldest first (the pool's LIFO stack, bottom to top)
    last_used = [1.0, 5.0, 9.0]
    # Then only those idle for at least keep-alive expire
    assert scaler.expired_count(last_used, now=10.0, keep_alive_s=5.0) == 2
    assert scaler.expired_count(last_used, now=10.0, keep_alive_s=100.0) == 0
    assert scaler.expired_count([], now=10.0, keep_alive_s=0.0) == 0
