"""`Outbox`: where destination records and dead-lettered events go when the target is a
queue or a topic (a function target stays an asynchronous invocation, in `AsyncEvents`).

Targets are parsed by `unkai.config.async_config.parse_target`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unkai.config.async_config import TargetKind
from unkai.events.queue_requests import SendEntry
from unkai.events.queues import QueueService
from unkai.events.sns_messages import PublishEntry
from unkai.events.topics import TopicService


class Outbox:
    """Implements `unkai.invoke.async_events.Outbox`."""

    def __init__(self, queues: QueueService, topics: TopicService) -> None:
        self._queues = queues
        self._topics = topics

    async def send(
        self, kind: TargetKind, name: str, body: str, attributes: Mapping[str, Any] | None = None
    ) -> None:
        """Send `body` to the queue or topic; raises what the service raises (NotFound...)."""
        if kind == "queue":
            await self._queues.send(name, SendEntry(body, attributes))
        elif kind == "topic":
            await self._topics.publish(name, PublishEntry(body, attributes=attributes))
        else:
            raise ValueError(f"the outbox sends to queues and topics, not {kind}s")

    def exists(self, kind: TargetKind, name: str) -> bool:
        if kind == "queue":
            return name in self._queues.names()
        if kind == "topic":
            return name in self._topics.names()
        return True
