"""`TopicService`: SNS's semantics (https://docs.aws.amazon.com/sns/latest/dg/welcome.html):
topics, subscriptions with filter policies, publish (single and batch), durable fan-out.

- Topics (`topic` documents) and their subscriptions (`subscription` documents) are named per
  platform. Subscriptions deliver to a queue (`sqs`), a function (`lambda`: an asynchronous
  invocation, as SNS invokes Lambda) or an HTTP(S) endpoint. A function's `- sns:` event is a
  subscription too, stored with its stage's routes (method `SNS`) so deploys own it.
- A publish picks the subscriptions whose filter policy matches, stores one `sns_message`
  document listing them, and returns; then each delivery is made, and the document is rewritten
  without it, so a delivery cut short by `kill -9` is made again after a restart (at least
  once, as SNS).
- Deliveries, their retries and dead-letter queues are `TopicDeliveries`
  (topic_deliveries.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from unkai.backends.base import MetadataStore, Write
from unkai.background import Background
from unkai.deploy.registry import Registry
from unkai.deploy.versions import SNS_METHOD
from unkai.errors import Conflict, InvalidRequest, NotFound
from unkai.events import message_attributes
from unkai.events.endpoint_policy import EndpointPolicy
from unkai.events.filter_policy import FilterPolicy, FilterPolicyError
from unkai.events.message_attributes import Attributes
from unkai.events.queue_requests import check_batch
from unkai.events.queues import QueueService
from unkai.events.sns_messages import (
    Delivery,
    PendingMessage,
    PublishEntry,
    parse_structured,
    timestamp,
)
from unkai.events.subscriptions import PROTOCOLS, Subscription, with_attributes
from unkai.events.topic_deliveries import MESSAGE_KIND, TopicDeliveries
from unkai.invoke.async_events import AsyncEvents

if TYPE_CHECKING:
    pass

log = logging.getLogger("unkai.events")

TOPIC_KIND = "topic"
SUBSCRIPTION_KIND = "subscription"
#: SNS: a message with its attributes is at most 256 KiB.
MAX_MESSAGE_BYTES = 256 * 1024
MAX_SUBJECT_CHARS = 100
MAX_BATCH_ENTRIES = 10
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class TopicService:
    def __init__(
        self,
        store: MetadataStore,
        registry: Registry,
        queues: QueueService,
        async_events: AsyncEvents,
        *,
        account_id: str,
        region: str,
        retry_base_s: float = 20.0,
        clock_ms: Callable[[], int] | None = None,
        endpoint_policy: EndpointPolicy | None = None,
    ) -> None:
        self._endpoint_policy = endpoint_policy or EndpointPolicy(allow_private=True)
        self._store = store
        self._registry = registry
        self._queues = queues
        self._async = async_events
        self.account_id = account_id
        self.region = region
        self._retry_base_s = retry_base_s
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._topics: dict[str, dict[str, Any]] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._route_subscriptions: dict[str, list[Subscription]] = {}
        self._policies: dict[str, FilterPolicy] = {}
        self._routes_lock = asyncio.Lock()
        self._tasks = Background()
        self._deliveries = TopicDeliveries(
            store,
            queues,
            async_events,
            subscription=self._subscriptions.get,
            topic_arn=self.arn,
            subscription_arn=self.subscription_arn,
            retry_base_s=retry_base_s,
            clock_ms=self._clock_ms,
            endpoint_policy=self._endpoint_policy,
        )
        registry.subscribe(self._on_stage_changed)

    async def start(self) -> None:
        for doc in await self._store.list(TOPIC_KIND):
            self._topics[doc.key] = doc.value
        for doc in await self._store.list(SUBSCRIPTION_KIND):
            self._add_subscription(Subscription.from_doc(doc.value))
        for stage in await self._registry.stages():
            await self._load_routes(stage)
        await self._deliveries.start()

    async def close(self) -> None:
        await self._deliveries.close()
        await self._tasks.cancel_all()

    # -- topics and subscriptions ---------------------------------------------------------

    def arn(self, topic: str) -> str:
        return f"arn:aws:sns:{self.region}:{self.account_id}:{topic}"

    def subscription_arn(self, sub: Subscription) -> str:
        return f"{self.arn(sub.topic)}:{sub.id}"

    def get(self, name: str) -> dict[str, Any]:
        topic = self._topics.get(_name_of(name))
        if topic is None:
            raise NotFound(
                f"Topic does not exist: {name!r}", code="NotFound", hint="unkai topics ls"
            )
        return topic

    def names(self) -> list[str]:
        return sorted(self._topics)

    async def create(self, name: str, attributes: Mapping[str, str] | None = None) -> str:
        """CreateTopic: idempotent for the same name; returns the ARN."""
        if name.endswith(".fifo"):
            raise InvalidRequest(
                f"Invalid parameter: Topic Name {name!r}: FIFO topics are not supported by "
                "unkai yet",
                code="InvalidParameter",
            )
        if not _TOPIC_NAME.match(name):
            raise InvalidRequest(
                f"Invalid parameter: Topic Name {name!r}: use 1 to 256 letters, digits, '-' or '_'",
                code="InvalidParameter",
            )
        if name not in self._topics:
            doc = {
                "name": name,
                "attributes": dict(attributes or {}),
                "created_ms": self._clock_ms(),
            }
            await self._store.commit([Write(TOPIC_KIND, name, doc)])
            self._topics[name] = doc
        return self.arn(name)

    async def delete(self, name: str) -> None:
        topic = self.get(name)["name"]
        subs = [s for s in self._subscriptions.values() if s.topic == topic]
        await self._store.commit(
            [Write(TOPIC_KIND, topic, None)]
            + [Write(SUBSCRIPTION_KIND, f"{topic}/{s.id}", None) for s in subs]
        )
        self._topics.pop(topic, None)
        for s in subs:
            self._remove_subscription(s.id)

    async def subscribe(
        self,
        topic: str,
        protocol: str,
        endpoint: str,
        attributes: Mapping[str, str] | None = None,
    ) -> Subscription:
        """Subscribe; the same (topic, protocol, endpoint) again returns the existing one
        (with a Conflict if its attributes differ, as SNS)."""
        name = self.get(topic)["name"]
        sub = self._subscription(name, protocol, endpoint, attributes or {}, "api")
        if sub.protocol in ("http", "https"):
            await self._endpoint_policy.check(sub.endpoint)
        for existing in self._subscriptions.values():
            if (existing.topic, existing.protocol, existing.endpoint) == (
                name,
                sub.protocol,
                sub.endpoint,
            ) and existing.origin == "api":
                if replace(existing, id=sub.id) != sub:
                    raise Conflict(
                        "Invalid parameter: Attributes: Subscription already exists with "
                        "different attributes",
                        code="InvalidParameter",
                    )
                return existing
        await self._store.commit([Write(SUBSCRIPTION_KIND, f"{name}/{sub.id}", sub.to_doc())])
        self._add_subscription(sub)
        return sub

    def describe_subscription(
        self, topic: str, protocol: str, endpoint: str, attributes: Mapping[str, str]
    ) -> str | None:
        """What `ensure_subscription` would do, or None when nothing."""
        existing = self._find(topic, protocol, endpoint)
        if existing is None:
            return f"subscribe {protocol}:{endpoint} to topic {topic}"
        if with_attributes(existing, attributes) != existing:
            return f"update subscription {protocol}:{endpoint} of topic {topic}"
        return None

    async def ensure_subscription(
        self, topic: str, protocol: str, endpoint: str, attributes: Mapping[str, str]
    ) -> Subscription:
        """Subscribe, or bring the existing subscription's attributes to `attributes`."""
        existing = self._find(topic, protocol, endpoint)
        if existing is None:
            return await self.subscribe(topic, protocol, endpoint, attributes)
        changed = with_attributes(existing, attributes)
        if changed != existing:
            self._check_subscription(changed)
            await self._store.commit(
                [Write(SUBSCRIPTION_KIND, f"{changed.topic}/{changed.id}", changed.to_doc())]
            )
            self._remove_subscription(existing.id)
            self._add_subscription(changed)
        return changed

    def _find(self, topic: str, protocol: str, endpoint: str) -> Subscription | None:
        endpoint = endpoint.rsplit(":", 1)[-1] if protocol == "sqs" else endpoint
        for sub in self._subscriptions.values():
            if (sub.topic, sub.protocol, sub.endpoint, sub.origin) == (
                topic,
                protocol,
                endpoint,
                "api",
            ):
                return sub
        return None

    async def unsubscribe(self, subscription: str) -> None:
        sub_id = subscription.rsplit(":", 1)[-1]
        sub = self._subscriptions.get(sub_id)
        if sub is None or sub.origin != "api":
            raise NotFound(
                f"Subscription does not exist: {subscription!r}",
                code="NotFound",
                hint="a function's `- sns:` event is removed by deploying without it"
                if sub is not None
                else "list them: unkai topics subscriptions",
            )
        await self._store.commit([Write(SUBSCRIPTION_KIND, f"{sub.topic}/{sub.id}", None)])
        self._remove_subscription(sub_id)

    async def set_subscription_attribute(self, subscription: str, name: str, value: str) -> None:
        sub = self._subscriptions.get(subscription.rsplit(":", 1)[-1])
        if sub is None or sub.origin != "api":
            raise NotFound(f"Subscription does not exist: {subscription!r}", code="NotFound")
        changed = with_attributes(sub, {name: value})
        self._check_subscription(changed)
        await self._store.commit(
            [Write(SUBSCRIPTION_KIND, f"{sub.topic}/{sub.id}", changed.to_doc())]
        )
        self._remove_subscription(sub.id)
        self._add_subscription(changed)

    def subscriptions(self, topic: str | None = None) -> list[Subscription]:
        every = [*self._subscriptions.values()]
        if topic is not None:
            name = self.get(topic)["name"]
            every = [s for s in every if s.topic == name]
        return sorted(every, key=lambda s: (s.topic, s.protocol, s.endpoint))

    def stats(self) -> list[dict[str, Any]]:
        owed = self._deliveries.owed()
        return [
            {
                "name": name,
                "subscriptions": sum(1 for s in self._subscriptions.values() if s.topic == name),
                "pending_deliveries": owed.get(name, 0),
            }
            for name in sorted(self._topics)
        ]

    # -- publish --------------------------------------------------------------------------

    async def publish(self, topic: str, entry: PublishEntry) -> str:
        """Publish; returns the MessageId once the message and its deliveries are stored."""
        return (await self._publish(topic, [entry]))[0]

    async def publish_batch(
        self, topic: str, entries: Sequence[PublishEntry]
    ) -> list[str | InvalidRequest]:
        """PublishBatch: up to 10 entries; a bad entry fails alone."""
        self.get(topic)  # an unknown topic fails the request, even when every entry is bad
        check_batch([e.id for e in entries], "PublishBatch")
        total = sum(len(e.message.encode()) for e in entries if isinstance(e.message, str))
        if total > MAX_MESSAGE_BYTES:
            raise InvalidRequest(
                f"The length of all the messages put together is more than the limit "
                f"({total} > {MAX_MESSAGE_BYTES} bytes)",
                code="BatchRequestTooLong",
            )
        outcomes: list[str | InvalidRequest] = []
        good: list[tuple[int, PublishEntry]] = []
        for index, entry in enumerate(entries):
            try:
                self._check_entry(entry)
            except InvalidRequest as exc:
                outcomes.append(exc)
                continue
            outcomes.append("")
            good.append((index, entry))
        ids = await self._publish(topic, [e for _, e in good]) if good else []
        for (index, _), message_id in zip(good, ids, strict=True):
            outcomes[index] = message_id
        return outcomes

    async def _publish(self, topic: str, entries: Sequence[PublishEntry]) -> list[str]:
        name = self.get(topic)["name"]
        now = self._clock_ms()
        stamp = timestamp(now)
        messages: list[PendingMessage] = []
        for entry in entries:
            self._check_entry(entry)
            attributes = message_attributes.parse(entry.attributes, f"topic {name!r}")
            structured = parse_structured(entry) if entry.structure == "json" else None
            message = structured["default"] if structured else entry.message
            pending = PendingMessage(
                str(uuid.uuid4()), name, message, structured, entry.subject, attributes, stamp
            )
            for sub in self._matching(name, attributes, message):
                pending.deliveries[sub.id] = Delivery(sub.id, 0, now)
            messages.append(pending)
        owing = [m for m in messages if m.deliveries]
        if owing:
            await self._store.commit(
                [Write(MESSAGE_KIND, m.message_id, m.to_doc(), expected_revision=0) for m in owing]
            )
            self._deliveries.add(owing)
        return [m.message_id for m in messages]

    def _check_entry(self, entry: PublishEntry) -> None:
        where = f"entry {entry.id!r}"
        if not isinstance(entry.message, str) or not entry.message:
            raise InvalidRequest(
                f"Invalid parameter: Message: {where}: must be a non-empty string",
                code="InvalidParameter",
            )
        attributes = message_attributes.parse(entry.attributes, where)
        size = len(entry.message.encode()) + message_attributes.size(attributes)
        if size > MAX_MESSAGE_BYTES:
            raise InvalidRequest(
                f"Invalid parameter: Message too long: {where} is {size} bytes with its "
                f"attributes; the limit is {MAX_MESSAGE_BYTES}",
                code="InvalidParameter",
            )
        if entry.subject is not None and (
            not entry.subject or len(entry.subject) > MAX_SUBJECT_CHARS
        ):
            raise InvalidRequest(
                f"Invalid parameter: Subject: {where}: 1 to {MAX_SUBJECT_CHARS} characters",
                code="InvalidParameter",
            )
        if entry.structure not in (None, "json"):
            raise InvalidRequest(
                f"Invalid parameter: MessageStructure: {where}: only 'json' is allowed",
                code="InvalidParameter",
            )
        if entry.structure == "json":
            parse_structured(entry)

    def _matching(self, topic: str, attributes: Attributes, message: str) -> list[Subscription]:
        matched = []
        plain = {k: (t, v) for k, (t, v) in attributes.items()}
        for sub in [*self._subscriptions.values()]:
            if sub.topic != topic:
                continue
            policy = self._policies.get(sub.id)
            if policy is None or policy.matches(plain, message):
                matched.append(sub)
        return matched

    # -- delivery -------------------------------------------------------------------------

    # -- internals ------------------------------------------------------------------------

    def _subscription(
        self,
        topic: str,
        protocol: str,
        endpoint: str,
        attributes: Mapping[str, str],
        origin: str,
    ) -> Subscription:
        protocol = protocol.lower()
        if protocol not in PROTOCOLS:
            raise InvalidRequest(
                f"Invalid parameter: Protocol {protocol!r}: supported are {', '.join(PROTOCOLS)}",
                code="InvalidParameter",
            )
        if protocol == "sqs":
            endpoint = endpoint.rsplit(":", 1)[-1] if endpoint.startswith("arn:") else endpoint
            if self._queues.get(endpoint).fifo:
                # Topics here are standard; SNS delivers to FIFO queues from FIFO topics only.
                raise InvalidRequest(
                    f"Invalid parameter: Endpoint {endpoint!r}: a FIFO queue can subscribe to a "
                    "FIFO topic only, and this topic is standard",
                    code="InvalidParameter",
                )
        elif protocol == "lambda" and not re.fullmatch(r"[^/]+/[^/]+", endpoint):
            raise InvalidRequest(
                f"Invalid parameter: Endpoint {endpoint!r} must be <stage>/<function>",
                code="InvalidParameter",
            )
        elif protocol in ("http", "https") and not endpoint.startswith(f"{protocol}://"):
            raise InvalidRequest(
                f"Invalid parameter: Endpoint {endpoint!r} must be a {protocol}:// URL",
                code="InvalidParameter",
            )
        sub = with_attributes(
            Subscription(uuid.uuid4().hex, topic, protocol, endpoint, origin=origin), attributes
        )
        self._check_subscription(sub)
        return sub

    def _check_subscription(self, sub: Subscription) -> None:
        if sub.filter_policy is not None:
            try:
                FilterPolicy.parse(sub.filter_policy, sub.filter_scope)  # type: ignore[arg-type]
            except FilterPolicyError as exc:
                # The error already starts with "FilterPolicy: " (or "FilterPolicyScope: ").
                raise InvalidRequest(f"Invalid parameter: {exc}", code="InvalidParameter") from None
        if sub.dead_letter_queue is not None:
            self._queues.get(sub.dead_letter_queue)
        if sub.raw and sub.protocol == "lambda":
            raise InvalidRequest(
                "Invalid parameter: RawMessageDelivery: not valid for the lambda protocol",
                code="InvalidParameter",
            )

    def _add_subscription(self, sub: Subscription) -> None:
        self._subscriptions[sub.id] = sub
        if sub.filter_policy is not None:
            self._policies[sub.id] = FilterPolicy.parse(
                sub.filter_policy,
                sub.filter_scope,  # type: ignore[arg-type]
            )

    def _remove_subscription(self, sub_id: str) -> None:
        self._subscriptions.pop(sub_id, None)
        self._policies.pop(sub_id, None)

    def _on_stage_changed(self, stage: str) -> asyncio.Task[Any]:
        return self._tasks.spawn(self._load_routes(stage))

    async def _load_routes(self, stage: str) -> None:
        async with self._routes_lock:  # two deploys in a row: the later one's routes win
            await self._load_routes_locked(stage)

    async def _load_routes_locked(self, stage: str) -> None:
        """A function's `- sns:` events become subscriptions of protocol `lambda`, with a
        stable id (the same after a restart or redeploy)."""
        for old in self._route_subscriptions.pop(stage, []):
            self._remove_subscription(old.id)
        fresh = []
        for route in await self._registry.routes(stage):
            if route.method != SNS_METHOD or route.subscription is None:
                continue
            config = route.subscription
            sub = Subscription(
                f"{stage}-{route.function}-{route.path}",
                route.path,
                "lambda",
                f"{stage}/{route.function}",
                filter_policy=config.filter_policy,
                filter_scope=config.filter_scope,
                dead_letter_queue=config.dead_letter_queue,
                origin="route",
            )
            fresh.append(sub)
            self._add_subscription(sub)
        self._route_subscriptions[stage] = fresh


def _name_of(name: str) -> str:
    return name.rsplit(":", 1)[-1] if name.startswith("arn:") else name
