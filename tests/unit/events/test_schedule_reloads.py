"""Schedules across a reload of their stage (a deploy): a run in progress is not run again,
and a schedule the manifest enables again waits for its next time from now."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from unkai.backends.factory import open_backend
from unkai.config.http_api import ScheduleConfig
from unkai.deploy.versions import SCHEDULE_METHOD
from unkai.events.schedules import Scheduler

#: 2026-12-02 10:30 UTC: an hourly cron's last run was at 10:00, its next is at 11:00.
NOW_S = 1_796_207_400.0


class _Registry:
    """The routes a deploy stored: one schedule of the `dev` stage."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def subscribe(self, listener: Any) -> None:
        """The tests reload the stage themselves (`_load`), as a deploy's notice would."""

    async def stages(self) -> list[str]:
        return ["dev"]

    async def routes(self, stage: str) -> list[Any]:
        schedule = ScheduleConfig("cron(0 * * * ? *)", enabled=self.enabled)
        route = SimpleNamespace(
            method=SCHEDULE_METHOD, schedule=schedule, service="svc", path="hourly", function="fn"
        )
        return [route]


class _AsyncEvents:
    """Takes runs; the first waits for `gate`, as a slow store write would."""

    def __init__(self) -> None:
        self.accepted: list[Any] = []
        self.gate = asyncio.Event()

    async def accept(self, target: Any, event: bytes) -> str:
        self.accepted.append(target)
        await self.gate.wait()
        return "id"


async def _schedules(tmp_path: Path, registry: _Registry, runs: _AsyncEvents) -> Any:
    store = open_backend("sqlite", tmp_path)
    await store.open()
    schedules = Scheduler(
        store,
        registry,  # type: ignore[arg-type]
        runs,  # type: ignore[arg-type]
        region="us-east-1",
        account_id="000000000000",
    )
    return store, schedules


def test_a_reload_while_a_run_is_handed_over_does_not_run_it_again(tmp_path: Path) -> None:
    async def main() -> int:
        runs = _AsyncEvents()
        store, schedules = await _schedules(tmp_path, _Registry(), runs)
        clock = [NOW_S]
        schedules._clock_s = lambda: clock[0]
        try:
            await schedules.start()
            # Given the 11:00 run due and being handed over (its store write is slow)
            clock[0] = NOW_S + 1800
            schedules._wake.set()
            while not runs.accepted:
                await asyncio.sleep(0.01)
            # When a deploy reloads the stage meanwhile, and the write then finishes
            await schedules._load("dev")
            runs.gate.set()
            await asyncio.sleep(0.1)
            schedules._wake.set()  # the loop looks again (any deploy or enable wakes it)
            await asyncio.sleep(0.3)
            # Then 11:00 ran once
            return len(runs.accepted)
        finally:
            await schedules.close()
            await store.close()

    assert asyncio.run(main()) == 1


def test_enabled_again_by_a_deploy_it_waits_for_its_next_time(tmp_path: Path) -> None:
    async def main() -> tuple[int, int]:
        runs = _AsyncEvents()
        runs.gate.set()
        registry = _Registry(enabled=False)
        store, schedules = await _schedules(tmp_path, registry, runs)
        clock = [NOW_S]
        schedules._clock_s = lambda: clock[0]
        try:
            await schedules.start()
            # Given a disabled hourly schedule, three hours later enabled by a deploy
            clock[0] = NOW_S + 3 * 3600
            registry.enabled = True
            await schedules._load("dev")
            await asyncio.sleep(0.2)
            entry = next(iter(schedules._entries.values()))
            return len(runs.accepted), entry.next_due_ms
        finally:
            await schedules.close()
            await store.close()

    accepted, next_due_ms = asyncio.run(main())
    # Then it did not run the 11:00 it skipped while disabled: its next run is 14:00
    assert accepted == 0
    assert next_due_ms == int(NOW_S + 3.5 * 3600) * 1000
