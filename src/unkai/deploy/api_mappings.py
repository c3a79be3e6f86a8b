"""`ApiMappings`: queue -> function mappings made, changed and deleted through an API
(Lambda's Create/Get/List/Update/DeleteEventSourceMapping).

A mapping belongs to its function: every change is an `ApiFunctions.update` of that
function's `queue_mappings` setting, so it is a deploy of the regenerated manifest, with the
manifest's checks (the queue exists, batch size and window, a FIFO queue's batch of at most
10) and its runner (events/queue_mappings.py). The check for a duplicate and the change run
under ApiFunctions' write lock, inside the change. A manifest's mapping is listed and read but
not changed here (Conflict naming its service).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable

from unkai.config.queue_config import QueueMappingConfig
from unkai.deploy.api_functions import ApiFunctions
from unkai.deploy.event_source_mappings import MappingView, QueueMapping
from unkai.deploy.function_settings import FunctionSettings
from unkai.errors import Conflict, NotFound

ConfigChange = Callable[[QueueMappingConfig], QueueMappingConfig]


class ApiMappings:
    def __init__(self, functions: ApiFunctions) -> None:
        self._functions = functions

    async def create(
        self, stage: str, function: str, queue: str, config: QueueMappingConfig
    ) -> MappingView:
        """Map `queue` to the API function `function`. Raises NotFound (the function),
        Conflict (a manifest's function, or the queue is mapped to it already), ConfigError
        (a setting, or the queue does not exist)."""
        new = QueueMapping(str(uuid.uuid4()), queue, config, _now_ms())

        def add(settings: FunctionSettings) -> FunctionSettings:
            for existing in settings.queue_mappings:
                if existing.queue == queue:
                    raise Conflict(
                        f"queue {queue!r} is mapped to function {function!r} already "
                        f"(UUID {existing.uuid}); update or delete that mapping"
                    )
            return dataclasses.replace(settings, queue_mappings=(*settings.queue_mappings, new))

        await self._functions.update(stage, function, add)
        return await self.get(stage, new.uuid)

    async def list(self, stage: str, function: str | None = None) -> list[MappingView]:
        """The stage's mappings (of one function when given; NotFound when it does not
        exist), by function then queue."""
        if function is not None:
            await self._functions.describe(stage, function)
        views = await self._functions.queue_mappings(stage)
        return [v for v in views if function is None or v.function == function]

    async def get(self, stage: str, mapping_uuid: str) -> MappingView:
        """Raises NotFound."""
        for view in await self._functions.queue_mappings(stage):
            if view.mapping.uuid == mapping_uuid:
                return view
        raise NotFound(
            f"The resource you requested does not exist. (event source mapping {mapping_uuid} "
            f"in stage {stage!r})"
        )

    async def update(self, stage: str, mapping_uuid: str, change: ConfigChange) -> MappingView:
        """Apply `change` to the mapping's settings and deploy. Raises NotFound, Conflict (a
        manifest's mapping), ConfigError."""
        view = await self._writable(stage, mapping_uuid)

        def apply(settings: FunctionSettings) -> FunctionSettings:
            mapping = _find(settings, mapping_uuid, stage)
            changed = dataclasses.replace(
                mapping, config=change(mapping.config), last_modified_ms=_now_ms()
            )
            kept = tuple(changed if m is mapping else m for m in settings.queue_mappings)
            return dataclasses.replace(settings, queue_mappings=kept)

        await self._functions.update(stage, view.function, apply)
        return await self.get(stage, mapping_uuid)

    async def delete(self, stage: str, mapping_uuid: str) -> MappingView:
        """Remove the mapping and deploy; returns it as it was. Raises NotFound, Conflict."""
        view = await self._writable(stage, mapping_uuid)

        def remove(settings: FunctionSettings) -> FunctionSettings:
            mapping = _find(settings, mapping_uuid, stage)
            kept = tuple(m for m in settings.queue_mappings if m is not mapping)
            return dataclasses.replace(settings, queue_mappings=kept)

        await self._functions.update(stage, view.function, remove)
        return view

    async def _writable(self, stage: str, mapping_uuid: str) -> MappingView:
        view = await self.get(stage, mapping_uuid)
        if not view.api_managed:
            raise Conflict(
                f"event source mapping {mapping_uuid} (queue {view.mapping.queue!r} -> function "
                f"{view.function!r}) belongs to service {view.service!r}, deployed from its "
                "manifest; change its `- sqs:` event there and run unkai deploy",
                hint=f"unkai deploy <app dir of {view.service}> --stage {stage}",
            )
        return view


def _find(settings: FunctionSettings, mapping_uuid: str, stage: str) -> QueueMapping:
    """The mapping in the settings read under the write lock (a concurrent delete may have
    removed it since it was looked up)."""
    for mapping in settings.queue_mappings:
        if mapping.uuid == mapping_uuid:
            return mapping
    raise NotFound(
        f"The resource you requested does not exist. (event source mapping {mapping_uuid} "
        f"in stage {stage!r})"
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
