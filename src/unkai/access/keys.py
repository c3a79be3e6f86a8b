"""`KeyService`: API keys and their usage-plan quotas (core; the CLI, through the control API,
and the gateway call it).

Keys belong to a stage and name a usage plan; the plans themselves come from the services'
manifests (`provider.httpApi.usagePlans`) and travel with their routes. A key is stored only as
its SHA-256: the value is shown once, at creation, as API Gateway shows it.

The gateway checks keys and quotas on the hot path, so both are answered from memory:
`lookup` is one hash and one dict lookup, `consume` one counter increment. Quota counters are
written back every `flush_s` (and at close), so a `kill -9` forgets at most that window of
counted requests; a clean restart forgets none. Counters of periods that have ended are
deleted at the first flush of each UTC day, from memory and from the store: without that, every
key kept one stored counter per plan and period forever.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime as dt
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from unkai.backends.base import MetadataStore, Write
from unkai.config.http_api import QUOTA_PERIODS
from unkai.errors import ConfigError, Conflict, NotFound

log = logging.getLogger("unkai.access")

KEY_KIND = "api_key"
QUOTA_KIND = "quota"
#: API Gateway generates 40-character keys; its minimum for imported values is 20.
MIN_KEY_CHARS = 20
MAX_REMEMBERED_VALUES = 10_000


@dataclass(frozen=True, slots=True)
class KeyRecord:
    stage: str
    name: str
    plan: str
    sha256: str
    created_ms: int

    @property
    def id(self) -> str:
        """Stable and public: a prefix of the hash (the hash itself stays private)."""
        return self.sha256[:16]

    def summary(self) -> dict[str, object]:
        return {
            "stage": self.stage,
            "name": self.name,
            "plan": self.plan,
            "id": self.id,
            "created_ms": self.created_ms,
        }


def hash_key(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def period_start(period: str, now_s: float) -> str:
    """The UTC start date of the quota period containing `now_s`, e.g. '2026-12-01'."""
    cached = _periods.get(period)
    if cached is not None and cached[0] <= now_s < cached[1]:
        return cached[2]
    day = dt.datetime.fromtimestamp(now_s, dt.UTC).date()
    if period == "WEEK":
        day -= dt.timedelta(days=day.weekday())
    elif period == "MONTH":
        day = day.replace(day=1)
    # Remember the day the answer holds for: the hot path then costs one comparison.
    midnight = dt.datetime.combine(
        dt.datetime.fromtimestamp(now_s, dt.UTC).date(), dt.time(), dt.UTC
    ).timestamp()
    _periods[period] = (midnight, midnight + 86400, day.isoformat())
    return day.isoformat()


_periods: dict[str, tuple[float, float, str]] = {}


class KeyService:
    def __init__(self, store: MetadataStore, *, flush_s: float = 1.0) -> None:
        self._store = store
        self._flush_s = flush_s
        self._by_hash: dict[str, KeyRecord] = {}
        #: Values seen recently, so a repeated key costs no hash. Cleared on any revoke.
        self._by_value: dict[bytes, KeyRecord] = {}
        #: (key id, plan, period start) -> requests counted.
        self._used: dict[tuple[str, str, str], int] = {}
        self._dirty: set[tuple[str, str, str]] = set()
        #: The UTC day whose flush last deleted the counters of ended periods.
        self._pruned_day: str | None = None
        self._task: asyncio.Task[None] | None = None
        #: Wall clock in seconds; quota periods are calendar periods. Replaceable in tests.
        self.now: Callable[[], float] = time.time

    async def start(self) -> None:
        for doc in await self._store.list(KEY_KIND):
            record = KeyRecord(**doc.value)
            self._by_hash[record.sha256] = record
        for doc in await self._store.list(QUOTA_KIND):
            key_id, plan, start = doc.key.split("/", 2)
            self._used[(key_id, plan, start)] = int(doc.value["used"])
        self._task = asyncio.get_running_loop().create_task(self._flush_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    # -- management (control API) -------------------------------------------------------------

    async def create(
        self, stage: str, name: str, plan: str, value: str | None = None
    ) -> tuple[KeyRecord, str]:
        """A new key; returns it with its value, which is not stored and cannot be shown again."""
        if value is None:
            value = secrets.token_urlsafe(30)  # 40 characters, as API Gateway's
        elif len(value) < MIN_KEY_CHARS:
            raise ConfigError(
                f"an API key value needs at least {MIN_KEY_CHARS} characters, got {len(value)}",
                field="value",
            )
        if await self._store.get(KEY_KIND, f"{stage}/{name}") is not None:
            raise Conflict(
                f"API key {name!r} exists in stage {stage!r}",
                hint=f"revoke it first: unkai keys revoke {name} --stage {stage}",
            )
        sha = hash_key(value.encode())
        if sha in self._by_hash:
            raise Conflict("that API key value is already in use")
        record = KeyRecord(stage, name, plan, sha, int(self.now() * 1000))
        await self._store.commit(
            [Write(KEY_KIND, f"{stage}/{name}", _doc(record), expected_revision=0)]
        )
        self._by_hash[sha] = record
        return record, value

    async def revoke(self, stage: str, name: str) -> KeyRecord:
        doc = await self._store.get(KEY_KIND, f"{stage}/{name}")
        if doc is None:
            raise NotFound(
                f"no API key {name!r} in stage {stage!r}", hint="list them: unkai keys ls"
            )
        record = KeyRecord(**doc.value)
        await self._store.commit([Write(KEY_KIND, doc.key, None, expected_revision=doc.revision)])
        self._by_hash.pop(record.sha256, None)
        self._by_value.clear()
        return record

    def list(self, stage: str | None = None) -> list[KeyRecord]:
        records = [r for r in self._by_hash.values() if stage is None or r.stage == stage]
        return sorted(records, key=lambda r: (r.stage, r.name))

    def usage(self, record: KeyRecord, plan: str, period: str) -> int:
        return self._used.get((record.id, plan, period_start(period, self.now())), 0)

    # -- hot path (gateway) -------------------------------------------------------------------

    def lookup(self, stage: str, value: bytes) -> KeyRecord | None:
        record = self._by_value.get(value)
        if record is None:
            record = self._by_hash.get(hash_key(value))
            if record is None:
                return None
            if len(self._by_value) >= MAX_REMEMBERED_VALUES:
                self._by_value.clear()
            self._by_value[value] = record
        return record if record.stage == stage else None

    def consume(self, record: KeyRecord, plan: str, limit: int, period: str) -> bool:
        """Count one request against the key's quota; False (not counted) when it is used up."""
        counter = (record.id, plan, period_start(period, self.now()))
        used = self._used.get(counter, 0)
        if used >= limit:
            return False
        self._used[counter] = used + 1
        self._dirty.add(counter)
        return True

    # -- persistence --------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write the changed counters; on a new UTC day, delete those of ended periods."""
        today = period_start("DAY", self.now())
        ended = self._ended_counters() if today != self._pruned_day else []
        if not self._dirty and not ended:
            self._pruned_day = today
            return
        dirty, self._dirty = self._dirty - set(ended), set()
        writes = [
            Write(QUOTA_KIND, "/".join(counter), {"used": self._used[counter]})
            for counter in sorted(dirty)
        ]
        writes += [Write(QUOTA_KIND, "/".join(counter), None) for counter in ended]
        try:
            await self._store.commit(writes)
        except Exception:  # boundary: keep counting; the next flush writes them again
            self._dirty |= dirty
            raise
        for counter in ended:
            self._used.pop(counter, None)
        self._pruned_day = today

    def _ended_counters(self) -> builtins.list[tuple[str, str, str]]:
        """Counters whose period is over. A counter does not name its period, so one is kept
        while its start is the current start of any period: a day's counter from the Monday
        that began this week lives until the week ends, which costs one entry, not a leak."""
        now = self.now()
        current = {period_start(period, now) for period in QUOTA_PERIODS}
        return sorted(counter for counter in self._used if counter[2] not in current)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            try:
                await self.flush()
            except Exception:  # boundary: logged, retried on the next tick
                log.exception("could not store API key quota counters")


def _doc(record: KeyRecord) -> dict[str, object]:
    return {
        "stage": record.stage,
        "name": record.name,
        "plan": record.plan,
        "sha256": record.sha256,
        "created_ms": record.created_ms,
    }
