"""The control plane: every operation the CLI and the dashboard perform, as plain calls.

Each method calls a core service (Deployer, Registry, Supervisor, LogService, QueueService,
TopicService) and returns JSON-ready data; `control/http.py` and `control/topic_http.py` only
map HTTP onto these methods. The queue and topic methods answer in SQS's and SNS's shapes and
names (MessageId, ReceiptHandle, Successful/Failed), so a reader who knows those services knows
them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from unkai.access.keys import KeyService
from unkai.backends.base import LogRecord
from unkai.deploy.registry import Registry
from unkai.deploy.service import Deployer
from unkai.deploy.versions import EVENT_METHODS, SQS_METHOD, WEBSOCKET_METHOD, FunctionVersion
from unkai.errors import InvalidRequest, NotFound
from unkai.events.queue_mappings import QueueMappings
from unkai.events.queue_requests import EntryError, SendEntry
from unkai.events.queue_shapes import batch_result, message_shape, sent_shape
from unkai.events.queues import QueueService
from unkai.events.schedules import Scheduler
from unkai.events.sns_messages import PublishEntry
from unkai.events.subscriptions import Subscription
from unkai.events.topics import TopicService
from unkai.invoke.async_events import AsyncEvents
from unkai.observe.logs import LogService
from unkai.observe.metrics import render as render_metrics
from unkai.runtime.supervisor import Supervisor


def version_summary(version: FunctionVersion) -> dict[str, Any]:
    return {
        "name": version.name,
        "stage": version.stage,
        "service": version.service,
        "version": version.version,
        "handler": version.handler,
        "runtime": version.runtime,
        "memory_size_mb": version.memory_size_mb,
        "timeout_s": version.timeout_s,
        "reserved_concurrency": version.reserved_concurrency,
        "code_sha256": version.code_sha256,
        "description": version.description,
        "created_ms": version.created_ms,
    }


def log_record(record: LogRecord) -> dict[str, Any]:
    return dataclasses.asdict(record)


class ControlService:
    def __init__(
        self,
        deployer: Deployer,
        registry: Registry,
        supervisor: Supervisor,
        logs: LogService,
        keys: KeyService,
        scheduler: Scheduler,
        queues: QueueService,
        topics: TopicService,
        mappings: QueueMappings,
        async_events: AsyncEvents,
        *,
        default_stage: str,
        base_url: str,
    ) -> None:
        self._deployer = deployer
        self._registry = registry
        self._supervisor = supervisor
        self._logs = logs
        self._keys = keys
        self._scheduler = scheduler
        self._queues = queues
        self._topics = topics
        self._mappings = mappings
        self._async_events = async_events
        self.default_stage = default_stage
        self.base_url = base_url
        #: False until start-up (including the deploy `unkai up DIR` asked for) is done.
        self.ready = False

    def stage_url(self, stage: str) -> str:
        return self.base_url if stage == self.default_stage else f"{self.base_url}/{stage}"

    async def deploy(self, app_dir: str, stage: str | None, dry_run: bool) -> dict[str, Any]:
        stage = stage or self.default_stage
        result = await self._deployer.deploy(Path(app_dir).resolve(), stage, dry_run)
        doc = result.to_dict()
        routes = doc.get("routes", [])
        doc["endpoints"] = [
            f"{r['method']} {self.stage_url(stage)}{r['path']}"
            for r in routes
            if r["method"] not in EVENT_METHODS
        ]
        if any(r["method"] == WEBSOCKET_METHOD for r in routes):
            ws_url = self.stage_url(stage).replace("http", "ws", 1)
            doc["endpoints"].append(f"WEBSOCKET {ws_url}")
        return doc

    async def remove(self, service: str, stage: str | None, dry_run: bool) -> dict[str, Any]:
        result = await self._deployer.remove(stage or self.default_stage, service, dry_run)
        return result.to_dict()

    async def functions(self, stage: str | None) -> list[dict[str, Any]]:
        return [version_summary(v) for v in await self._registry.list_functions(stage)]

    async def function_info(self, name: str, stage: str | None) -> dict[str, Any]:
        stage = stage or self.default_stage
        version = await self._registry.get_version(stage, name)
        mine = [r for r in await self._registry.routes(stage) if r.function == name]
        routes = [
            {"method": r.method, "path": r.path, "url": self.stage_url(stage) + r.path}
            for r in mine
            if r.method not in EVENT_METHODS
        ]
        events = [{"method": r.method, "path": r.path} for r in mine if r.method in EVENT_METHODS]
        workers = {
            m["queue"]: m
            for m in self._mappings.list()
            if (m["stage"], m["function"]) == (stage, name)
        }
        queues = []
        for r in mine:
            if r.method == SQS_METHOD and r.path in self._queues.names():
                mapping = workers.get(r.path, {})
                queues.append(
                    {
                        **await self._queues.stats(r.path),
                        "workers": mapping.get("workers", 0),
                        "processed": mapping.get("processed", 0),
                    }
                )
        instances = [
            i for i in self._supervisor.instances() if i["function"] == name and i["stage"] == stage
        ]
        return {
            **version_summary(version),
            "routes": routes,
            "events": events,
            "queues": queues,
            "instances": instances,
        }

    async def metrics(self) -> bytes:
        """Prometheus exposition of the event sources' depth and progress."""
        queues = [await self._queues.stats(name) for name in self._queues.names()]
        return render_metrics(
            queues, self._topics.stats(), self._mappings.list(), self._async_events.pending()
        )

    async def drain(self, name: str, stage: str | None) -> dict[str, Any]:
        stage = stage or self.default_stage
        await self._registry.get_version(stage, name)
        stopped = await self._supervisor.drain_function(stage, name)
        return {"stopped": stopped}

    def instances(self) -> dict[str, Any]:
        supervisor = self._supervisor
        return {
            "instances": supervisor.instances(),
            "zygotes": supervisor.zygotes(),
            "pools": supervisor.stats(),
        }

    async def logs(
        self,
        name: str,
        stage: str | None,
        *,
        since_ms: int | None,
        until_ms: int | None,
        request_id: str | None,
        contains: str | None,
        after_id: int,
        limit: int,
    ) -> dict[str, Any]:
        """One page of a function's records, ascending by id, and the cursor of the next page.

        With a start time or a cursor the page holds the OLDEST `limit` matches after the
        cursor, and a client pages on with `after_id=cursor` until a page comes back short
        (`unkai logs --since` does); with neither, it holds the NEWEST `limit`. The bounds are
        range-checked where the HTTP layer parses them, so the store never sees one it cannot
        hold.
        """
        stage = stage or self.default_stage
        records = await self._logs.query(
            stage=stage,
            function=name,
            since_ms=since_ms,
            until_ms=until_ms,
            request_id=request_id,
            contains=contains,
            after_id=after_id,
            limit=limit,
            # A first page without a start time shows the latest records, like `aws logs tail`.
            newest=after_id == 0 and since_ms is None,
        )
        last = records[-1].id if records else after_id
        return {"records": [log_record(r) for r in records], "cursor": last}

    async def create_key(
        self, name: str, plan: str, stage: str | None, value: str | None
    ) -> dict[str, Any]:
        """A new API key; the answer is the only place its value ever appears."""
        record, secret = await self._keys.create(stage or self.default_stage, name, plan, value)
        return {**record.summary(), "value": secret}

    async def revoke_key(self, name: str, stage: str | None) -> dict[str, Any]:
        return (await self._keys.revoke(stage or self.default_stage, name)).summary()

    def keys(self, stage: str | None) -> list[dict[str, Any]]:
        return [record.summary() for record in self._keys.list(stage)]

    def schedules(self, stage: str | None) -> list[dict[str, Any]]:
        return self._scheduler.list(stage)

    async def set_schedule_enabled(
        self, name: str, stage: str | None, enabled: bool
    ) -> dict[str, Any]:
        return await self._scheduler.set_enabled(stage or self.default_stage, name, enabled)

    # -- queues ---------------------------------------------------------------------------

    async def queues(self) -> list[dict[str, Any]]:
        """Every queue with its depth, in-flight count and oldest message's age."""
        listed = []
        for name in self._queues.names():
            try:
                listed.append(await self._queues.stats(name))
            except NotFound:  # deleted while we listed: it is simply gone
                continue
        return listed

    async def create_queue(self, name: str, attributes: Mapping[str, str]) -> dict[str, Any]:
        """Create queue `name` (the same call again is a no-op); its attributes."""
        config = await self._queues.create(name, attributes)
        return await self.queue_attributes(config.name)

    async def queue_attributes(self, name: str, wanted: Sequence[str] = ("All",)) -> dict[str, Any]:
        attributes = await self._queues.attributes(name, wanted)
        config = self._queues.get(name)
        return {"name": config.name, "arn": self._queues.arn(config.name), "attributes": attributes}

    async def set_queue_attributes(
        self, name: str, attributes: Mapping[str, str]
    ) -> dict[str, Any]:
        config = await self._queues.set_attributes(name, attributes)
        return await self.queue_attributes(config.name)

    async def delete_queue(self, name: str) -> dict[str, Any]:
        """Delete the queue and its messages; raises Conflict while it is another's DLQ."""
        config = self._queues.get(name)
        await self._queues.delete(config.name)
        return {"deleted": config.name}

    async def send_message(self, name: str, entry: SendEntry) -> dict[str, Any]:
        return sent_shape(await self._queues.send(name, entry))

    async def send_message_batch(self, name: str, entries: Sequence[SendEntry]) -> dict[str, Any]:
        outcomes = await self._queues.send_batch(name, entries)
        shaped = [o if isinstance(o, EntryError) else sent_shape(o) for o in outcomes]
        return batch_result([e.id for e in entries], shaped)

    async def receive_messages(
        self,
        name: str,
        *,
        max_messages: int = 1,
        wait_s: int | None = None,
        visibility_s: int | None = None,
    ) -> dict[str, Any]:
        """ReceiveMessage: waits up to `wait_s` (long polling) for the first message."""
        received = await self._queues.receive(
            name, max_messages=max_messages, wait_s=wait_s, visibility_s=visibility_s
        )
        fifo = self._queues.get(name).fifo
        return {"Messages": [message_shape(m, fifo) for m in received]}

    async def delete_message(self, name: str, receipt: str) -> dict[str, Any]:
        """Idempotent: a stale receipt deletes nothing and is no error (as in SQS)."""
        await self._queues.delete_message(name, receipt)
        return {}

    async def delete_message_batch(
        self, name: str, receipts: Sequence[tuple[str, str]]
    ) -> dict[str, Any]:
        """(entry id, receipt handle) pairs."""
        outcomes = await self._queues.delete_messages(name, receipts)
        return batch_result([i for i, _ in receipts], [o or {} for o in outcomes])

    async def change_message_visibility(
        self, name: str, receipt: str, timeout_s: int
    ) -> dict[str, Any]:
        await self._queues.change_message_visibility(name, receipt, timeout_s)
        return {}

    async def change_message_visibility_batch(
        self, name: str, changes: Sequence[tuple[str, str, int]]
    ) -> dict[str, Any]:
        """(entry id, receipt handle, timeout s) triples."""
        outcomes = await self._queues.change_visibility(name, changes)
        return batch_result([i for i, _, _ in changes], [o or {} for o in outcomes])

    async def purge_queue(self, name: str) -> dict[str, Any]:
        """Delete every message; once a minute per queue (else PurgeQueueInProgress)."""
        config = self._queues.get(name)
        return {"name": config.name, "purged": await self._queues.purge(config.name)}

    async def redrive(
        self, dead_letter_queue: str, destination: str | None, max_messages: int | None
    ) -> dict[str, Any]:
        """Move messages from a dead-letter queue back (by default to the queue it serves)."""
        if max_messages is None:
            return await self._queues.redrive(dead_letter_queue, destination)
        return await self._queues.redrive(dead_letter_queue, destination, max_messages)

    # -- topics ---------------------------------------------------------------------------

    def topics(self) -> list[dict[str, Any]]:
        """Every topic with its ARN, subscription count and deliveries still owed."""
        return [{**s, "arn": self._topics.arn(s["name"])} for s in self._topics.stats()]

    async def create_topic(self, name: str) -> dict[str, Any]:
        """CreateTopic: the same call again is a no-op."""
        return {"name": name, "arn": await self._topics.create(name)}

    async def delete_topic(self, name: str) -> dict[str, Any]:
        """Delete the topic and its subscriptions (a function's `- sns:` event stays with its
        deploy and delivers again if the topic is created anew)."""
        topic = self._topics.get(name)["name"]
        await self._topics.delete(topic)
        return {"deleted": topic}

    def subscriptions(self, topic: str | None) -> list[dict[str, Any]]:
        """The subscriptions of `topic`, or of every topic when None."""
        return [self._subscription_shape(s) for s in self._topics.subscriptions(topic)]

    async def subscribe(
        self, topic: str, protocol: str, endpoint: str, attributes: Mapping[str, str]
    ) -> dict[str, Any]:
        """Subscribe (idempotent for the same endpoint and attributes). A `lambda` endpoint
        is "<stage>/<function>"; a bare function name means the default stage."""
        if protocol.lower() == "lambda" and "/" not in endpoint:
            endpoint = f"{self.default_stage}/{endpoint}"
        sub = await self._topics.subscribe(topic, protocol, endpoint, attributes)
        return self._subscription_shape(sub)

    async def unsubscribe(self, subscription: str) -> dict[str, Any]:
        """`subscription` is its ARN (or the id that ends it)."""
        await self._topics.unsubscribe(subscription)
        return {"unsubscribed": subscription}

    async def set_subscription_attributes(
        self, subscription: str, attributes: Mapping[str, str]
    ) -> dict[str, Any]:
        """SetSubscriptionAttributes once per attribute, in order: the first refused stops,
        and those before it stay set (as the same SNS calls one by one would)."""
        for name, value in attributes.items():
            await self._topics.set_subscription_attribute(subscription, name, value)
        return self._subscription_shape(self._subscription(subscription))

    async def publish(self, topic: str, entry: PublishEntry) -> dict[str, Any]:
        return {"MessageId": await self._topics.publish(topic, entry)}

    async def publish_batch(self, topic: str, entries: Sequence[PublishEntry]) -> dict[str, Any]:
        """PublishBatch's answer: entries published, and the ones refused on their own."""
        outcomes = await self._topics.publish_batch(topic, entries)
        return {
            "Successful": [
                {"Id": e.id, "MessageId": o}
                for e, o in zip(entries, outcomes, strict=True)
                if not isinstance(o, InvalidRequest)
            ],
            "Failed": [
                {"Id": e.id, "Code": o.code, "Message": o.message, "SenderFault": True}
                for e, o in zip(entries, outcomes, strict=True)
                if isinstance(o, InvalidRequest)
            ],
        }

    def _subscription(self, subscription: str) -> Subscription:
        sub_id = subscription.rsplit(":", 1)[-1]
        for sub in self._topics.subscriptions():
            if sub.id == sub_id:
                return sub
        raise NotFound(f"Subscription does not exist: {subscription!r}", code="NotFound")

    def _subscription_shape(self, sub: Subscription) -> dict[str, Any]:
        """Our fields, plus the attributes under SNS's names (GetSubscriptionAttributes)."""
        attributes = {
            "RawMessageDelivery": "true" if sub.raw else "false",
            "FilterPolicyScope": sub.filter_scope,
        }
        if sub.filter_policy is not None:
            attributes["FilterPolicy"] = sub.filter_policy
        if sub.dead_letter_queue is not None:
            target = self._queues.arn(sub.dead_letter_queue)
            attributes["RedrivePolicy"] = orjson.dumps({"deadLetterTargetArn": target}).decode()
        return {
            "arn": self._topics.subscription_arn(sub),
            "topic": sub.topic,
            "topic_arn": self._topics.arn(sub.topic),
            "protocol": sub.protocol,
            "endpoint": sub.endpoint,
            "origin": sub.origin,
            "attributes": attributes,
        }
