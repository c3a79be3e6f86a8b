"""Queue -> function mappings as Lambda's event source mapping API sees them.

A mapping is a function's `- sqs:` event (config/spec.py `SqsEventSpec`), deployed as a
route with the method `SQS` and run by `events/queue_mappings.py`; nothing here runs one.
What the API adds is identity: Lambda names a mapping by a UUID and reports when it last
changed. A function made through the API keeps both in its revision's attributes
(function_dirs.py `MappingIdentity`); a manifest's mapping gets a UUID derived from its stage,
function and queue, so it is the same on every node and across restarts, and is read-only
here (its manifest owns it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from unkai.config.queue_config import QueueMappingConfig
from unkai.deploy.function_dirs import MappingIdentity

#: Namespace of the derived UUIDs (uuid5), fixed so they never change.
_NAMESPACE = uuid.UUID("6d1c4f0e-2b1a-5c8e-9f3d-7a4b2e6c1d90")


def derived_uuid(stage: str, function: str, queue: str) -> str:
    """The UUID of a mapping that has none stored: the same for the same stage, function
    and queue."""
    return str(uuid.uuid5(_NAMESPACE, f"{stage}/{function}/{queue}"))


@dataclass(frozen=True, slots=True)
class QueueMapping:
    """One `- sqs:` event of an API function, with its identity."""

    uuid: str
    queue: str
    config: QueueMappingConfig
    last_modified_ms: int

    @property
    def identity(self) -> MappingIdentity:
        return MappingIdentity(self.queue, self.uuid, self.last_modified_ms)

    def manifest_event(self) -> dict[str, Any]:
        """The `- sqs:` event of the generated manifest (docs/events.md)."""
        config = self.config
        sqs: dict[str, Any] = {
            "queue": self.queue,
            "batchSize": config.batch_size,
            "maximumBatchingWindow": config.maximum_batching_window_s,
            "enabled": config.enabled,
        }
        if config.report_batch_item_failures:
            sqs["functionResponseType"] = "ReportBatchItemFailures"
        if config.maximum_concurrency is not None:
            sqs["maximumConcurrency"] = config.maximum_concurrency
        return {"sqs": sqs}


@dataclass(frozen=True, slots=True)
class MappingView:
    """A deployed mapping of a stage, of an API function or a manifest's."""

    mapping: QueueMapping
    function: str
    service: str
    #: False for a manifest's mapping (read-only here).
    api_managed: bool

    @property
    def sort_key(self) -> str:
        """Function, then queue: the order of a listing and its page marker."""
        return f"{self.function}/{self.mapping.queue}"
