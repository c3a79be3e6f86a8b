"""`Registry`: the read side of deployed state, cached in memory, with change notifications.

The invoker and the gateway ask it which version a name resolves to and which routes a stage
has, on every cold lookup; so it caches each stage's function records, aliases and routes,
and every version document it has read (versions are immutable). The deployer calls
`invalidate(stage)` after each commit; that drops the stage's cache and calls every
subscriber with the stage name, so the gateway recompiles the stage's route table and the
invoker drops pools of replaced code.

Known limit: the cache is per process. With several nodes, a deploy on one node does not yet
invalidate the others (that needs a change feed from the backend).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from unkai.backends.base import MetadataStore
from unkai.deploy import versions as layout
from unkai.deploy.snapshot import StageSnapshot, read_snapshot
from unkai.deploy.versions import (
    LATEST,
    Alias,
    FunctionRecord,
    FunctionVersion,
    Route,
    StageRecord,
)
from unkai.errors import NotFound

log = logging.getLogger("unkai.deploy")

#: Called after a stage changed; returns the task it started to catch up, if any, so that
#: `Registry.settled` can wait for it.
StageListener = Callable[[str], "asyncio.Task[Any] | None"]


#: How long a change waits for its listeners (they read the registry; seconds at most).
SETTLE_TIMEOUT_S = 30.0


class Registry:
    """Cached reads of deployed functions, versions and routes; see the module docstring."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store
        self._functions: dict[str, dict[str, FunctionRecord]] = {}
        self._routes: dict[str, list[Route]] = {}
        self._versions: dict[str, FunctionVersion] = {}
        #: stage -> (function, alias name) -> Alias.
        self._aliases: dict[str, dict[tuple[str, str], Alias]] = {}
        self._stages: list[str] | None = None
        #: Bumped by `invalidate`; a load that started before a bump is not cached.
        self._generation = 0
        self._listeners: list[StageListener] = []
        #: What listeners started for changes not yet caught up with (see `settled`).
        self._catching_up: set[asyncio.Task[Any]] = set()

    async def get_version(
        self, stage: str, name: str, qualifier: str | None = None
    ) -> FunctionVersion:
        """The version `qualifier` names: None or `$LATEST` -> the latest published one; an
        alias -> the version it points at (its `function_version`; the invoker reads the
        alias itself to also route to the additional version).

        Raises NotFound naming function, stage and qualifier. Reserved concurrency and
        description come from the function (they are not versioned).
        """
        record = (await self._function_records(stage)).get(name)
        shown = qualifier or LATEST
        if record is None:
            raise NotFound(
                f"function {name!r} (qualifier {shown!r}) not found in stage {stage!r}",
                hint=f"unkai ls --stage {stage}",
            )
        number = record.latest_version if qualifier in (None, LATEST) else qualifier
        if not number.isdigit():
            alias = await self.get_alias(stage, name, number)
            if alias is not None and alias.function_version != LATEST:
                number = alias.function_version
            elif alias is not None:
                number = record.latest_version
        version = await self._version(stage, name, number) if number.isdigit() else None
        if version is None:
            what = "version" if shown.isdigit() or shown == LATEST else "version or alias"
            raise NotFound(
                f"function {name!r} has no {what} {shown!r} in stage {stage!r} "
                f"(latest is {record.latest_version})",
                hint=f"unkai ls --stage {stage}",
            )
        return dataclasses.replace(
            version,
            reserved_concurrency=record.reserved_concurrency,
            description=record.description,
            async_config=record.async_config,
        )

    async def get_alias(self, stage: str, name: str, alias: str) -> Alias | None:
        """The alias `alias` of function `name`, or None."""
        return (await self._stage_aliases(stage)).get((name, alias))

    async def list_aliases(self, stage: str, name: str) -> list[Alias]:
        """The aliases of function `name`, by alias name."""
        found = [a for (fn, _), a in (await self._stage_aliases(stage)).items() if fn == name]
        return sorted(found, key=lambda a: a.name)

    async def list_functions(self, stage: str | None = None) -> list[FunctionVersion]:
        """The latest version of every function of `stage` (of every stage when None)."""
        stages = [stage] if stage is not None else await self.stages()
        found: list[FunctionVersion] = []
        for s in stages:
            for name in sorted(await self._function_records(s)):
                found.append(await self.get_version(s, name))
        return found

    async def routes(self, stage: str) -> list[Route]:
        """Every route of `stage`, sorted by path then method."""
        cached = self._routes.get(stage)
        if cached is not None:
            return cached
        generation = self._generation
        routes: list[Route] = []
        for doc in await self._store.list(layout.ROUTES, layout.stage_prefix(stage)):
            service = doc.key.rpartition("/")[2]
            routes.extend(Route.from_doc(stage, service, r) for r in doc.value["routes"])
        routes.sort(key=lambda r: (r.path, r.method))
        if generation == self._generation:
            self._routes[stage] = routes
        return routes

    async def stages(self) -> list[str]:
        """Names of the stages that have at least one service, sorted."""
        if self._stages is not None:
            return self._stages
        generation = self._generation
        stages = [
            doc.key
            for doc in await self._store.list(layout.STAGE)
            if StageRecord.from_doc(doc.value).services
        ]
        if generation == self._generation:
            self._stages = stages
        return stages

    async def snapshot(self, stage: str) -> StageSnapshot:
        """The stage's state with revisions, read fresh (never cached), for planning."""
        return await read_snapshot(self._store, stage)

    @property
    def store(self) -> MetadataStore:
        return self._store

    def subscribe(self, callback: StageListener) -> None:
        """Call `callback(stage)` after every change to a stage (on the event loop)."""
        self._listeners.append(callback)

    def invalidate(self, stage: str) -> None:
        """Drop cached state of `stage`, then notify subscribers. A failing one is logged."""
        self._generation += 1
        self._functions.pop(stage, None)
        self._routes.pop(stage, None)
        self._aliases.pop(stage, None)
        self._stages = None
        prefix = layout.stage_prefix(stage)
        for key in [k for k in self._versions if k.startswith(prefix)]:
            del self._versions[key]
        for callback in list(self._listeners):
            try:
                task = callback(stage)
            except Exception:
                log.exception("stage change listener %r failed for stage %s", callback, stage)
                continue
            if task is not None:
                self._catching_up.add(task)
                task.add_done_callback(self._catching_up.discard)

    async def settled(self, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        """Until every listener caught up with the changes so far (the gateway compiled the
        new routes, the invoker re-resolved its targets, event sources reloaded), or
        `timeout_s` passed: a deploy that returns after this serves its routes at once. A
        listener's failure is its own (it logs); it does not fail the change."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._catching_up:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                log.warning("%d stage listeners still catching up", len(self._catching_up))
                return
            await asyncio.wait(list(self._catching_up), timeout=left)

    async def _function_records(self, stage: str) -> dict[str, FunctionRecord]:
        cached = self._functions.get(stage)
        if cached is not None:
            return cached
        generation = self._generation
        records = {
            doc.key.rpartition("/")[2]: FunctionRecord.from_doc(doc.value)
            for doc in await self._store.list(layout.FUNCTION, layout.stage_prefix(stage))
        }
        if generation == self._generation:
            self._functions[stage] = records
        return records

    async def _stage_aliases(self, stage: str) -> dict[tuple[str, str], Alias]:
        cached = self._aliases.get(stage)
        if cached is not None:
            return cached
        generation = self._generation
        aliases = {}
        for doc in await self._store.list(layout.ALIAS, layout.stage_prefix(stage)):
            _, function, name = doc.key.split("/")
            aliases[function, name] = Alias.from_doc(doc.value)
        if generation == self._generation:
            self._aliases[stage] = aliases
        return aliases

    async def _version(self, stage: str, name: str, number: str) -> FunctionVersion | None:
        key = layout.version_key(stage, name, number)
        cached = self._versions.get(key)
        if cached is not None:
            return cached
        generation = self._generation
        doc = await self._store.get(layout.VERSION, key)
        if doc is None:
            return None
        version = FunctionVersion.from_doc(doc.value)
        if generation == self._generation:
            self._versions[key] = version
        return version
