"""A pool's waiters at a node that has no instance to give: each is refused at its own
deadline, by one timer for the whole queue."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from unkai.errors import Throttled, UnkaiError
from unkai.runtime.instance import Instance
from unkai.runtime.pool import LendCallback, Pool
from unkai.runtime.spec import InstanceSpec


class _FullNode:
    """An InstanceSource at its cap: no slot, so no instance is ever started."""

    def reserve_slot(self, pool: Pool) -> bool:
        return False

    def release_slot(self) -> None:
        raise AssertionError("no slot was reserved")

    def note_busy(self) -> None:
        raise AssertionError("no instance may be lent")

    def note_idle(self) -> None:
        raise AssertionError("no instance may go idle")

    async def start_instance(self, pool: Pool) -> Instance:
        raise AssertionError("no instance may start")


def _pool() -> Pool:
    spec = InstanceSpec(
        version_key="dev/fn:1",
        function_name="fn",
        version="1",
        handler="handler.handler",
        task_root=Path("/nonexistent"),
        deps_dir=None,
        memory_size_mb=128,
        timeout_s=3,
    )
    return Pool(spec, _FullNode())


def _record(
    outcomes: list[tuple[str, float, UnkaiError | Instance]], name: str, started: float
) -> LendCallback:
    def callback(outcome: Instance | UnkaiError) -> None:
        outcomes.append((name, time.monotonic() - started, outcome))

    return callback


def test_waiters_are_refused_at_their_own_deadlines_in_any_order() -> None:
    async def main() -> list[tuple[str, float, UnkaiError | Instance]]:
        pool = _pool()
        outcomes: list[tuple[str, float, UnkaiError | Instance]] = []
        now = time.monotonic()
        # Given waiters whose deadlines are not in arrival order
        for name, after_s in (("late", 0.30), ("early", 0.05), ("middle", 0.15)):
            pool.lend(now + after_s, _record(outcomes, name, now))
        await asyncio.sleep(0.5)
        assert pool.stats()["waiting"] == 0
        return outcomes

    outcomes = asyncio.run(main())
    # Then each is refused, in deadline order, never before its deadline
    assert [name for name, _, _ in outcomes] == ["early", "middle", "late"]
    for (_, waited_s, outcome), due_s in zip(outcomes, (0.05, 0.15, 0.30), strict=True):
        assert isinstance(outcome, Throttled)
        assert waited_s >= due_s


def test_a_failing_callback_does_not_strand_the_other_waiters() -> None:
    async def main() -> list[str]:
        pool = _pool()
        refused: list[str] = []
        now = time.monotonic()

        def broken(_outcome: Instance | UnkaiError) -> None:
            raise RuntimeError("a caller's bug")

        def keep(name: str) -> LendCallback:
            return lambda _outcome: refused.append(name)

        # Given three waiters due at the same moment, the first with a broken callback
        pool.lend(now + 0.05, broken)
        pool.lend(now + 0.05, keep("second"))
        pool.lend(now + 0.05, keep("third"))
        await asyncio.sleep(0.2)
        assert pool.stats()["waiting"] == 0
        return refused

    # Then the others are still refused
    assert asyncio.run(main()) == ["second", "third"]
