"""`StageSnapshot`: a stage's deployed state with revisions, read fresh for planning.

The planner needs revisions (for the commit's optimistic checks), which the registry's cache
does not keep. The stage document is read FIRST: every commit that changes a stage also
rewrites it, so if anything changes after this read, the plan's commit fails its check on
the stage document and nothing is written (the deployer then plans again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from unkai.backends.base import MetadataStore
from unkai.deploy import versions as layout
from unkai.deploy.versions import (
    FunctionRecord,
    FunctionVersion,
    Route,
    ServiceRecord,
    StageRecord,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Stored(Generic[T]):
    value: T
    revision: int


@dataclass(frozen=True, slots=True)
class StageSnapshot:
    stage: str
    #: Revision 0 with an empty record: the stage does not exist yet.
    stage_record: Stored[StageRecord]
    services: Mapping[str, Stored[ServiceRecord]]
    functions: Mapping[str, Stored[FunctionRecord]]
    #: Routes documents by owning service.
    routes: Mapping[str, Stored[tuple[Route, ...]]]

    def functions_of(self, service: str) -> list[str]:
        return sorted(n for n, f in self.functions.items() if f.value.service == service)


async def read_snapshot(store: MetadataStore, stage: str) -> StageSnapshot:
    """Read the stage document, then the stage's services, functions and routes."""
    stage_doc = await store.get(layout.STAGE, layout.stage_key(stage))
    stage_record = (
        Stored(StageRecord.from_doc(stage_doc.value), stage_doc.revision)
        if stage_doc is not None
        else Stored(StageRecord(), 0)
    )
    prefix = layout.stage_prefix(stage)
    services = {
        _last_part(d.key): Stored(ServiceRecord.from_doc(d.value), d.revision)
        for d in await store.list(layout.SERVICE, prefix)
    }
    functions = {
        _last_part(d.key): Stored(FunctionRecord.from_doc(d.value), d.revision)
        for d in await store.list(layout.FUNCTION, prefix)
    }
    routes = {}
    for d in await store.list(layout.ROUTES, prefix):
        service = _last_part(d.key)
        parsed = tuple(Route.from_doc(stage, service, r) for r in d.value["routes"])
        routes[service] = Stored(parsed, d.revision)
    return StageSnapshot(stage, stage_record, services, functions, routes)


async def latest_versions(
    store: MetadataStore, snapshot: StageSnapshot, names: Iterable[str]
) -> dict[str, FunctionVersion]:
    """The latest version of each function in `names` that exists in the snapshot."""
    found: dict[str, FunctionVersion] = {}
    for name in names:
        record = snapshot.functions.get(name)
        if record is None:
            continue
        key = layout.version_key(snapshot.stage, name, record.value.latest_version)
        doc = await store.get(layout.VERSION, key)
        if doc is not None:
            found[name] = FunctionVersion.from_doc(doc.value)
    return found


async def version_revisions(
    store: MetadataStore, stage: str, name: str
) -> tuple[tuple[str, int], ...]:
    """(key, revision) of every stored version of a function, for deleting them."""
    docs = await store.list(layout.VERSION, layout.versions_prefix(stage, name))
    return tuple((d.key, d.revision) for d in docs)


async def alias_revisions(
    store: MetadataStore, stage: str, name: str
) -> tuple[tuple[str, int], ...]:
    """(key, revision) of every alias of a function, for deleting them with it."""
    docs = await store.list(layout.ALIAS, layout.aliases_prefix(stage, name))
    return tuple((d.key, d.revision) for d in docs)


def _last_part(key: str) -> str:
    return key.rpartition("/")[2]
