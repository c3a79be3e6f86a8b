"""`QueueCatalog`: which queues exist and their settings (SQS's queue-level operations:
create, set attributes, delete, redrive policies), kept in memory and in `queue` documents.
`QueueService` (queues.py) adds the messages; the catalog is its base so that every front door
keeps calling one object for both.

Queues are named per platform (like an account's queues in a region), not per stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Protocol

from unkai.backends.base import MetadataStore, QueueStore, Write
from unkai.config.queue_config import QueueConfig, new_queue, queue_name_of
from unkai.errors import Conflict, InvalidRequest, NotFound
from unkai.events import xml_chars

KIND = "queue"


class QueueBackend(MetadataStore, QueueStore, Protocol):
    pass


class QueueCatalog:
    def __init__(
        self,
        store: QueueBackend,
        *,
        account_id: str,
        region: str,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self._store = store
        self.account_id = account_id
        self.region = region
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._queues: dict[str, QueueConfig] = {}

    async def load(self) -> None:
        """Read the stored queues (at start)."""
        for doc in await self._store.list(KIND):
            config = QueueConfig.from_doc(doc.value)
            self._queues[config.name] = config

    def arn(self, name: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{name}"

    def get(self, name: str) -> QueueConfig:
        """The queue by name or ARN; raises NotFound (QueueDoesNotExist)."""
        config = self._queues.get(queue_name_of(name))
        if config is None:
            raise NotFound(
                f"The specified queue {name!r} does not exist.",
                code="QueueDoesNotExist",
                hint="list them: unkai queues ls",
            )
        return config

    def names(self, prefix: str = "") -> list[str]:
        return sorted(n for n in self._queues if n.startswith(prefix))

    async def create(self, name: str, attributes: Mapping[str, str]) -> QueueConfig:
        """Create the queue; the same call again is a no-op. Raises Conflict (QueueNameExists)
        when it exists with other values for the attributes given."""
        _check_attribute_text(attributes)
        now = self._clock_ms()
        config = new_queue(name, attributes, now)
        existing = self._queues.get(name)
        if existing is not None:
            differing = sorted(self._changed(existing, attributes))
            if differing:
                raise Conflict(
                    f"queue {name!r} already exists with different values for "
                    f"{', '.join(differing)}",
                    code="QueueNameExists",
                    hint="change them with set-queue-attributes (unkai queues set)",
                )
            return existing
        self._check_redrive(config)
        await self._store.commit([Write(KIND, name, config.to_doc(), expected_revision=0)])
        self._queues[name] = config
        return config

    async def set_attributes(self, name: str, attributes: Mapping[str, str]) -> QueueConfig:
        _check_attribute_text(attributes)
        config = self.get(name).with_attributes(attributes, self._clock_ms())
        self._check_redrive(config)
        await self._store.commit([Write(KIND, config.name, config.to_doc())])
        self._queues[config.name] = config
        return config

    def describe_change(self, name: str, attributes: Mapping[str, str]) -> str | None:
        """What `ensure` would do, or None when the queue already is as asked."""
        existing = self._queues.get(name)
        if existing is None:
            return f"create queue {name}"
        changed = self._changed(existing, attributes)
        return f"update queue {name} ({', '.join(sorted(changed))})" if changed else None

    async def ensure(self, name: str, attributes: Mapping[str, str]) -> QueueConfig:
        """Create the queue, or set the attributes of the one that exists (deploys)."""
        existing = self._queues.get(name)
        if existing is None:
            return await self.create(name, attributes)
        changed = self._changed(existing, attributes)
        if not changed:
            return existing
        return await self.set_attributes(name, {k: attributes[k] for k in changed})

    def _changed(self, existing: QueueConfig, attributes: Mapping[str, str]) -> list[str]:
        """The attributes whose value differs from the queue's (FifoQueue cannot change)."""
        proposed = new_queue(existing.name, attributes, 0)
        dead_letter = proposed.redrive.dead_letter_queue if proposed.redrive else None
        wanted = proposed.attributes("", dead_letter)
        current = existing.attributes(
            "", existing.redrive.dead_letter_queue if existing.redrive else None
        )
        return [k for k in attributes if k != "FifoQueue" and wanted.get(k) != current.get(k)]

    async def delete(self, name: str) -> QueueConfig:
        """Forget the queue (refused while it is another queue's dead-letter queue); returns
        what it was. Its messages are the caller's to purge."""
        config = self.get(name)
        users = [
            q.name
            for q in self._queues.values()
            if q.redrive and q.redrive.dead_letter_queue == config.name
        ]
        if users:
            raise Conflict(
                f"queue {config.name!r} is the dead-letter queue of {', '.join(users)}",
                code="InvalidParameterValue",
                hint="remove their RedrivePolicy first",
            )
        await self._store.commit([Write(KIND, config.name, None)])
        self._queues.pop(config.name, None)
        return config

    def _dead_letter(self, config: QueueConfig) -> tuple[str, int] | None:
        if config.redrive is None or config.redrive.dead_letter_queue not in self._queues:
            return None
        return (config.redrive.dead_letter_queue, config.redrive.max_receive_count)

    def _check_redrive(self, config: QueueConfig) -> None:
        if config.redrive is None:
            return
        target = self._queues.get(config.redrive.dead_letter_queue)
        reason = None
        if target is None:
            reason = f"Dead letter target {config.redrive.dead_letter_queue!r} does not exist."
        elif target.fifo != config.fifo:
            reason = (
                "the dead-letter queue of a FIFO queue must be FIFO, of a standard one standard."
            )
        elif target.name == config.name:
            reason = "a queue cannot be its own dead-letter queue."
        if reason is not None:
            raise InvalidRequest(
                f"queue {config.name!r}: Value for parameter RedrivePolicy is invalid. "
                f"Reason: {reason}",
                code="InvalidParameterValue",
            )


def _check_attribute_text(attributes: Mapping[str, str]) -> None:
    """SQS refuses an attribute value outside XML 1.0's characters (InvalidAttributeValue):
    stored, it would be shown by GetQueueAttributes, whose query-protocol answer is XML. Names
    are checked first (InvalidAttributeName), as the value's error names its attribute."""
    for name, value in attributes.items():
        xml_chars.check(str(name), "An attribute name", code="InvalidAttributeName")
        xml_chars.check(
            str(value), f"Invalid value for the parameter {name}", code="InvalidAttributeValue"
        )
