"""Token buckets with a controllable clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from unkai.config.http_api import ThrottleConfig
from unkai.gateway.throttle import Throttles, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_gives_its_burst_then_refuses_until_it_refills() -> None:
    clock = Clock()
    bucket = TokenBucket(ThrottleConfig(rate=2.0, burst=3), clock)
    # Given a full bucket of 3: three requests at once pass, the fourth is refused
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    # When half a second passes at 2 tokens/s: one more token
    clock.now += 0.5
    assert [bucket.take(), bucket.take()] == [True, False]
    # And a long pause refills to the burst, never beyond
    clock.now += 60
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


@given(
    rate=st.floats(min_value=0.5, max_value=1000),
    burst=st.integers(min_value=1, max_value=100),
    gaps=st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=200),
)
def test_never_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: int, gaps: list[float]
) -> None:
    clock = Clock()
    bucket = TokenBucket(ThrottleConfig(rate, burst), clock)
    start = clock.now
    allowed = 0
    for gap in gaps:
        clock.now += gap
        allowed += bucket.take()
    assert allowed <= burst + rate * (clock.now - start) + 1e-6


def test_throttles_keep_one_bucket_per_key_and_reset_on_a_new_config() -> None:
    clock = Clock()
    throttles = Throttles(clock)
    one = ThrottleConfig(rate=1.0, burst=1)
    assert throttles.allow("a", one) and not throttles.allow("a", one)
    # Another key has its own bucket
    assert throttles.allow("b", one)
    # A changed config (a redeploy) starts a new, full bucket
    assert throttles.allow("a", ThrottleConfig(rate=1.0, burst=2))
    throttles.forget({"b"})
    assert throttles.allow("a", one)


def test_forget_with_kinds_keeps_other_kinds_of_buckets() -> None:
    clock = Clock()
    throttles = Throttles(clock)
    one = ThrottleConfig(rate=1.0, burst=1)
    for key in [("route", "dev", "GET /a"), ("route", "dev", "GET /b"), ("key", "dev", "k1")]:
        assert throttles.allow(key, one)
    throttles.forget({("route", "dev", "GET /a")}, kinds=("route",))
    # The used-up buckets that were kept still refuse; the forgotten route starts full again
    assert not throttles.allow(("route", "dev", "GET /a"), one)
    assert not throttles.allow(("key", "dev", "k1"), one)
    assert throttles.allow(("route", "dev", "GET /b"), one)
