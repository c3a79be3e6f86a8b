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


def test_a_window_is_short_when_three_in_four_invocations_are() -> None:
    assert scaler.mostly_short(24, 32)
    assert not scaler.mostly_short(23, 32)


def test_a_computing_function_needs_one_instance_per_cpu() -> None:
    # Given 32 short invocations, 30 of which kept the CPU busy (two were preempted and
    # waited 0.9 ms each, which would halve a ratio of sums)
    useful = scaler.useful_instances(
        busy=30, short=32, sum_ms=30 * 0.02 + 1.8, sum_cpu_ms=0.7, cpus=2
    )
    assert useful == 2


def test_a_waiting_function_needs_as_many_as_fill_the_cpus() -> None:
    # Given invocations of 0.5 ms that each use 0.05 ms of CPU (they wait on I/O)
    useful = scaler.useful_instances(busy=0, short=32, sum_ms=16.0, sum_cpu_ms=1.6, cpus=2)
    assert useful == 20
