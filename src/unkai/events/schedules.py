"""`Scheduler`: functions run on EventBridge schedule expressions, at least once.

Schedules come from `- schedule:` events, stored with the routes (method `SCHEDULE`). Each run
is an asynchronous invocation (`AsyncEvents.accept`, as EventBridge Scheduler invokes Lambda),
so it is durable and retried like any event. After a run is accepted, the time it was due is
stored (`schedule_state` documents); at start, a schedule whose next run after that time has
passed runs once now, not once per missed period, and then keeps its rhythm.

The event is the schedule's `input`, or EventBridge's scheduled event
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html).
`enable` / `disable` override the manifest's `enabled` until the next deploy that changes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from unkai.backends.base import MetadataStore, Write
from unkai.background import Background
from unkai.config.http_api import ScheduleConfig
from unkai.config.schedule_expressions import next_run
from unkai.deploy.registry import Registry
from unkai.deploy.versions import SCHEDULE_METHOD
from unkai.errors import NotFound, UnkaiError
from unkai.invoke.async_events import AsyncEvents
from unkai.invoke.models import Target
from unkai.invoke.request_ids import new_request_id

log = logging.getLogger("unkai.events")

STATE_KIND = "schedule_state"
#: The loop looks again at least this often (a deploy or an enable also wakes it).
MAX_SLEEP_S = 30.0
#: The next run of a schedule that has none left (a cron whose years are over).
NEVER_MS = 2**62
#: 2026-11-30T00:00Z: where a sped-up schedule clock (tests) starts to run faster.
CLOCK_ANCHOR_S = 1_764_460_800


@dataclass(slots=True)
class _Entry:
    stage: str
    service: str
    name: str
    function: str
    config: ScheduleConfig
    last_due_ms: int | None
    enabled_override: bool | None
    next_due_ms: int = 0

    @property
    def key(self) -> str:
        return f"{self.stage}/{self.service}/{self.name}"

    @property
    def enabled(self) -> bool:
        return self.config.enabled if self.enabled_override is None else self.enabled_override


class Scheduler:
    def __init__(
        self,
        store: MetadataStore,
        registry: Registry,
        async_events: AsyncEvents,
        *,
        region: str,
        account_id: str,
        clock_speed: float = 1.0,
    ) -> None:
        self._store = store
        self._registry = registry
        self._async = async_events
        self._region = region
        self._account_id = account_id
        #: Schedule time runs `clock_speed` times faster than the wall clock (tests only: an
        #: hourly schedule can then be seen to run without waiting hours). It counts from a
        #: fixed moment, so that it goes on where it was after a restart.
        self._speed = clock_speed
        self._clock_s: Callable[[], float] = lambda: (
            CLOCK_ANCHOR_S + (time.time() - CLOCK_ANCHOR_S) * clock_speed
        )
        self._entries: dict[str, _Entry] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tasks = Background()
        registry.subscribe(self._on_stage_changed)

    async def start(self) -> None:
        for stage in await self._registry.stages():
            await self._load(stage)
        self._task = asyncio.get_running_loop().create_task(self._run_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def _on_stage_changed(self, stage: str) -> asyncio.Task[Any]:
        return self._tasks.spawn(self._load(stage))

    async def _load(self, stage: str) -> None:
        states = {d.key: d.value for d in await self._store.list(STATE_KIND, f"{stage}/")}
        fresh: dict[str, _Entry] = {}
        for route in await self._registry.routes(stage):
            if route.method != SCHEDULE_METHOD or route.schedule is None:
                continue
            key = f"{stage}/{route.service}/{route.path}"
            state = states.get(key, {})
            old = self._entries.get(key)
            entry = _Entry(
                stage,
                route.service,
                route.path,
                route.function,
                route.schedule,
                state.get("last_due_ms"),
                state.get("enabled"),
            )
            if old is not None and old.config.enabled != route.schedule.enabled:
                entry.enabled_override = None  # the manifest changed it: it wins again
                await self._save(entry)
            same = (
                old is not None
                and old.config.expression == route.schedule.expression
                and old.config.timezone == route.schedule.timezone
            )
            if same and old is not None:
                # A redeploy (of this or another service) keeps the rhythm, and a run that
                # fired while this was loading is not run again.
                entry.last_due_ms = max(entry.last_due_ms or 0, old.last_due_ms or 0) or None
                entry.next_due_ms = old.next_due_ms
                if entry.enabled and not old.enabled:
                    # Enabled again (by the manifest, as `set_enabled` does): the next run
                    # from now, not the one it skipped while disabled.
                    entry.next_due_ms = self._first_due(entry, from_now=True)
            else:
                entry.next_due_ms = self._first_due(entry)
            fresh[key] = entry
        for key in [k for k in self._entries if k.startswith(f"{stage}/")]:
            self._entries.pop(key)
        self._entries.update(fresh)
        self._wake.set()

    def _first_due(self, entry: _Entry, *, from_now: bool = False) -> int:
        """The next run after the last one; one in the past (missed while the platform was
        down) is due at once, and runs once."""
        now = self._clock_s()
        if entry.last_due_ms is None or from_now:
            start = dt.datetime.fromtimestamp(now, dt.UTC)
        else:
            start = dt.datetime.fromtimestamp(entry.last_due_ms / 1000, dt.UTC)
        due = next_run(entry.config.expression, entry.config.timezone, start)
        return int(due.timestamp() * 1000) if due is not None else NEVER_MS

    # -- running --------------------------------------------------------------------------

    async def _run_forever(self) -> None:
        while True:
            # Cleared before the scan: a deploy or `set_enabled` during a run wakes the next one.
            self._wake.clear()
            now_ms = int(self._clock_s() * 1000)
            soonest = now_ms + int(MAX_SLEEP_S * 1000)
            for entry in list(self._entries.values()):
                if not entry.enabled:
                    continue
                if entry.next_due_ms <= now_ms:
                    try:
                        await self._fire(entry, now_ms)
                    except Exception:  # boundary: one schedule's trouble stops no other
                        log.exception("schedule %s failed; trying again in a minute", entry.key)
                        entry.next_due_ms = now_ms + 60_000
                soonest = min(soonest, entry.next_due_ms)
            wait_s = max(0.0, (soonest - now_ms) / 1000) / self._speed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)

    async def _fire(self, entry: _Entry, now_ms: int) -> None:
        due_ms = entry.next_due_ms
        # Advanced before the run is handed over: a deploy that reloads the entries while
        # `accept` awaits copies the next due time, and does not run this one again.
        after = dt.datetime.fromtimestamp(max(due_ms, now_ms) / 1000, dt.UTC)
        following = next_run(entry.config.expression, entry.config.timezone, after)
        entry.next_due_ms = int(following.timestamp() * 1000) if following else NEVER_MS
        try:
            await self._async.accept(Target(entry.stage, entry.function), self._event(entry))
        except UnkaiError as exc:
            log.warning("schedule %s: could not run %s: %s", entry.key, entry.function, exc)
        else:
            entry.last_due_ms = due_ms
            current = self._entries.get(entry.key)
            if current is not None and current is not entry:
                # Reloaded meanwhile: the new entry learns of the run too.
                current.last_due_ms = max(current.last_due_ms or 0, due_ms)
                await self._save(current)
            else:
                await self._save(entry)

    def _event(self, entry: _Entry) -> bytes:
        if entry.config.input_json is not None:
            return entry.config.input_json.encode()
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        return orjson.dumps(
            {
                "version": "0",
                "id": new_request_id(),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": self._account_id,
                "time": now.isoformat().replace("+00:00", "Z"),
                "region": self._region,
                "resources": [
                    f"arn:aws:events:{self._region}:{self._account_id}:rule/"
                    f"{entry.service}-{entry.stage}-{entry.name}"
                ],
                "detail": {},
            }
        )

    async def _save(self, entry: _Entry) -> None:
        await self._store.commit(
            [
                Write(
                    STATE_KIND,
                    entry.key,
                    {"last_due_ms": entry.last_due_ms, "enabled": entry.enabled_override},
                )
            ]
        )

    # -- control --------------------------------------------------------------------------

    def list(self, stage: str | None) -> list[dict[str, Any]]:
        return [
            {
                "stage": e.stage,
                "service": e.service,
                "name": e.name,
                "function": e.function,
                "expression": e.config.expression,
                "timezone": e.config.timezone,
                "enabled": e.enabled,
                "next_ms": e.next_due_ms if e.enabled else None,
                "last_ms": e.last_due_ms,
            }
            for e in sorted(self._entries.values(), key=lambda e: e.key)
            if stage is None or e.stage == stage
        ]

    async def set_enabled(self, stage: str, name: str, enabled: bool) -> dict[str, Any]:
        matches = [e for e in self._entries.values() if e.stage == stage and e.name == name]
        if not matches:
            raise NotFound(
                f"no schedule {name!r} in stage {stage!r}", hint="list them: unkai schedules ls"
            )
        for entry in matches:
            entry.enabled_override = enabled
            if enabled:
                entry.next_due_ms = self._first_due(entry, from_now=True)
            await self._save(entry)
        self._wake.set()
        return {"stage": stage, "name": name, "enabled": enabled}
