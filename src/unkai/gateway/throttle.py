"""Token buckets, as API Gateway throttles: `rate` requests per second refill a bucket of
`burst` tokens; a request takes one token or is refused (429).

https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-throttling.html
The bucket starts full, so a quiet route can take a burst at once. Buckets live in memory:
a restart refills them, as a new API Gateway deployment would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from unkai.config.http_api import ThrottleConfig


class TokenBucket:
    __slots__ = ("_clock", "_stamp", "_tokens", "burst", "rate")

    def __init__(self, config: ThrottleConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = config.rate
        self.burst = config.burst
        self._clock = clock
        self._tokens = float(config.burst)
        self._stamp = clock()

    def take(self) -> bool:
        """Take one token if there is one; refills lazily from the time since the last call."""
        now = self._clock()
        tokens = self._tokens + (now - self._stamp) * self.rate
        self._stamp = now
        if tokens > self.burst:
            tokens = self.burst
        if tokens < 1.0:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1.0
        return True


class Throttles:
    """One bucket per key (e.g. a stage's route); a changed config replaces the bucket."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[Hashable, tuple[ThrottleConfig, TokenBucket]] = {}

    def allow(self, key: Hashable, config: ThrottleConfig) -> bool:
        entry = self._buckets.get(key)
        if entry is None or (entry[0] is not config and entry[0] != config):
            entry = self._buckets[key] = (config, TokenBucket(config, self._clock))
        return entry[1].take()

    def forget(self, keep: set[Hashable], kinds: tuple[str, ...] | None = None) -> None:
        """Drop the buckets no longer in use (after a deploy). With `kinds`, only keys that are
        tuples starting with one of them are considered (others, e.g. per API key, stay)."""
        for key in list(self._buckets):
            considered = kinds is None or (isinstance(key, tuple) and key[:1] in _firsts(kinds))
            if considered and key not in keep:
                del self._buckets[key]


def _firsts(kinds: tuple[str, ...]) -> set[tuple[str]]:
    return {(kind,) for kind in kinds}
