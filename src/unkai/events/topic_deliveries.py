"""`TopicDeliveries`: the deliveries published messages still owe, made at least once.

A publish stores one `sns_message` document per message listing its deliveries, then hands
the messages here; each delivery is made and the document rewritten without it (deleted when
none is left), so a delivery cut short by `kill -9` is made again after a restart.

- Queues get SNS's JSON notification (or the raw message and attributes), functions an
  asynchronous invocation with SNS's Lambda event, HTTP(S) endpoints a POST with the
  `x-amz-sns-*` headers (only where the `EndpointPolicy` allows).
- A failed delivery is retried with exponential backoff and full jitter (base
  `retry_base_s`) up to `MAX_DELIVERY_ATTEMPTS`; then it goes to the subscription's
  dead-letter queue with the error in its attributes, or is dropped and logged. HTTP 2xx is a
  delivery; 429, 5xx and connection errors are retried; other statuses fail at once.
- At most `MAX_IN_FLIGHT` deliveries run at once, so a backlog is worked off in steps.
- Memory: a new message keeps its content in memory until its deliveries have run, within
  MAX_HELD_CONTENT for all messages; a message whose deliveries all wait for a retry, or
  that was read back at start or is past that budget, is held without it (only its
  deliveries' state), and its content is read back from the document when a delivery runs.
  A backlog for a failing endpoint would otherwise cost its messages' whole size in RAM.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import orjson

from unkai.backends.base import MetadataStore, Write, each_document
from unkai.background import Background
from unkai.errors import InvalidRequest, NotFound, UnkaiError
from unkai.events import message_attributes
from unkai.events.endpoint_policy import EndpointPolicy
from unkai.events.queue_requests import SendEntry
from unkai.events.queues import QueueService
from unkai.events.sns_messages import (
    Delivery,
    PendingMessage,
    envelope,
    lambda_event,
    message_for,
)
from unkai.events.subscriptions import Subscription
from unkai.invoke.async_events import AsyncEvents
from unkai.invoke.backoff import full_jitter
from unkai.invoke.models import Target

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("unkai.events")

MESSAGE_KIND = "sns_message"
#: Delivery attempts before a delivery goes to the dead-letter queue (SNS's HTTP default is
#: 1 + 3 retries).
MAX_DELIVERY_ATTEMPTS = 4
HTTP_TIMEOUT_S = 15.0
#: Deliveries made at once, at most (a backlog after an outage is worked off in steps).
MAX_IN_FLIGHT = 64
#: Characters of content that new messages may hold in memory (see the module docstring).
MAX_HELD_CONTENT = 16 * 1024 * 1024


class TopicDeliveries:
    def __init__(
        self,
        store: MetadataStore,
        queues: QueueService,
        async_events: AsyncEvents,
        *,
        subscription: Callable[[str], Subscription | None],
        topic_arn: Callable[[str], str],
        subscription_arn: Callable[[Subscription], str],
        retry_base_s: float,
        clock_ms: Callable[[], int],
        endpoint_policy: EndpointPolicy,
    ) -> None:
        self._store = store
        self._queues = queues
        self._async = async_events
        self._subscription = subscription
        self._topic_arn = topic_arn
        self._subscription_arn = subscription_arn
        self._retry_base_s = retry_base_s
        self._clock_ms = clock_ms
        self._endpoint_policy = endpoint_policy
        self._pending: dict[str, PendingMessage] = {}
        #: Content held by new messages within MAX_HELD_CONTENT, by message id, and in all.
        self._held: dict[str, int] = {}
        self._held_total = 0
        #: Deliveries running, by message id: their message's content stays loaded.
        self._in_flight: dict[str, int] = {}
        self._due: list[tuple[int, str]] = []
        self._running: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tasks = Background()
        self._http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """Read back the deliveries owed when the platform stopped, and start delivering."""
        async for doc in each_document(self._store, MESSAGE_KIND):
            self.add([PendingMessage.from_doc(doc.value)], hold=False)
        self._task = asyncio.get_running_loop().create_task(self._dispatch_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._tasks.cancel_all()
        if self._http is not None:
            await self._http.aclose()

    def add(self, messages: Sequence[PendingMessage], *, hold: bool = True) -> None:
        """Deliver `messages` (already stored); with `hold`, their content stays in memory
        within the budget."""
        for pending in messages:
            size = pending.content_size()
            if hold and self._held_total + size <= MAX_HELD_CONTENT:
                self._held[pending.message_id] = size
                self._held_total += size
            else:
                pending.unload()
            self._pending[pending.message_id] = pending
            self._schedule(pending)

    def owed(self) -> dict[str, int]:
        """Deliveries not yet made, per topic."""
        owed: dict[str, int] = {}
        for pending in self._pending.values():
            owed[pending.topic] = owed.get(pending.topic, 0) + len(pending.deliveries)
        return owed

    def _schedule(self, pending: PendingMessage) -> None:
        for delivery in pending.deliveries.values():
            heapq.heappush(
                self._due, (delivery.due_ms, f"{pending.message_id}/{delivery.subscription}")
            )
        self._wake.set()

    async def _dispatch_forever(self) -> None:
        running = self._running
        while True:
            now = self._clock_ms()
            while self._due and self._due[0][0] <= now and len(running) < MAX_IN_FLIGHT:
                _, key = heapq.heappop(self._due)
                if key in running:
                    continue
                message_id, _, sub_id = key.partition("/")
                pending = self._pending.get(message_id)
                delivery = pending.deliveries.get(sub_id) if pending else None
                if pending is None or delivery is None or delivery.due_ms > now:
                    continue
                running.add(key)
                self._tasks.spawn(self._deliver_guarded(pending, delivery))
            self._wake.clear()
            timeout = (self._due[0][0] - now) / 1000 if self._due else None
            if len(running) >= MAX_IN_FLIGHT:
                timeout = None  # a finished delivery wakes the loop
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _deliver_guarded(self, pending: PendingMessage, delivery: Delivery) -> None:
        message_id = pending.message_id
        self._in_flight[message_id] = self._in_flight.get(message_id, 0) + 1
        try:
            if await self._loaded(pending, delivery):
                await self._deliver_once(pending, delivery)
        finally:
            self._running.discard(f"{message_id}/{delivery.subscription}")
            self._in_flight[message_id] -= 1
            if not self._in_flight[message_id]:
                del self._in_flight[message_id]
                self._release(pending)
            self._wake.set()

    async def _loaded(self, pending: PendingMessage, delivery: Delivery) -> bool:
        """Bring the message's content back if it was unloaded; False when its document is
        gone (settled meanwhile), or could not be read (the delivery is tried again)."""
        if pending.loaded:
            return True
        try:
            doc = await self._store.get(MESSAGE_KIND, pending.message_id)
        except Exception:  # boundary: the store failed; the same delivery runs again later
            log.exception("topic %s: could not read message %s", pending.topic, pending.message_id)
            self._retry_soon(pending, delivery)
            return False
        if doc is None:
            self._pending.pop(pending.message_id, None)
            return False
        if not pending.loaded:  # another delivery of it may have loaded it meanwhile
            pending.load(doc.value)
        return True

    def _release(self, pending: PendingMessage) -> None:
        """No delivery of the message runs any more: a finished message gives back its
        budget, one whose deliveries all wait for later is unloaded, and so is one whose
        content was read back outside the budget (its next delivery reads it again)."""
        message_id = pending.message_id
        finished = message_id not in self._pending
        now = self._clock_ms()
        waiting = all(d.due_ms > now for d in pending.deliveries.values())
        if finished or waiting or message_id not in self._held:
            self._held_total -= self._held.pop(message_id, 0)
            if not finished and pending.loaded:
                pending.unload()

    async def _deliver_once(self, pending: PendingMessage, delivery: Delivery) -> None:
        sub = self._subscription(delivery.subscription)
        try:
            if sub is None:
                await self._settle(pending, delivery)  # unsubscribed meanwhile
                return
            error = await self._deliver(pending, sub)
            if error is None:
                await self._settle(pending, delivery)
                return
            delivery.attempts += 1
            delivery.error = error
            if delivery.attempts >= MAX_DELIVERY_ATTEMPTS or error.startswith("permanent:"):
                try:
                    await self._dead_letter(pending, sub, error)
                except UnkaiError as exc:  # e.g. the dead-letter queue was deleted
                    log.warning(
                        "topic %s: message %s could not be dead-lettered: %s",
                        pending.topic,
                        pending.message_id,
                        exc.message,
                    )
                await self._settle(pending, delivery)
                return
            wait_s = full_jitter(delivery.attempts, self._retry_base_s)
            delivery.due_ms = self._clock_ms() + int(wait_s * 1000)
            await self._store.commit([Write(MESSAGE_KIND, pending.message_id, pending.to_doc())])
            heapq.heappush(self._due, (delivery.due_ms, f"{pending.message_id}/{sub.id}"))
            self._wake.set()
        except Exception:  # boundary: the delivery counts as a failed attempt
            log.exception("topic %s: delivery of %s failed", pending.topic, pending.message_id)
            delivery.attempts += 1
            if delivery.attempts >= MAX_DELIVERY_ATTEMPTS:
                with contextlib.suppress(Exception):
                    await self._settle(pending, delivery)
                return
            self._retry_soon(pending, delivery)

    def _retry_soon(self, pending: PendingMessage, delivery: Delivery) -> None:
        """Due again after `retry_base_s`: the store failed while `delivery` was handled."""
        delivery.due_ms = self._clock_ms() + int(self._retry_base_s * 1000)
        heapq.heappush(
            self._due, (delivery.due_ms, f"{pending.message_id}/{delivery.subscription}")
        )
        self._wake.set()

    async def _settle(self, pending: PendingMessage, delivery: Delivery) -> None:
        """Store that `delivery` is done. If that fails it stays owed (and is made again),
        rather than gone from memory but still in the stored document."""
        pending.deliveries.pop(delivery.subscription, None)
        try:
            if pending.deliveries:
                doc = pending.to_doc()
                await self._store.commit([Write(MESSAGE_KIND, pending.message_id, doc)])
            else:
                await self._store.commit([Write(MESSAGE_KIND, pending.message_id, None)])
        except BaseException:
            pending.deliveries[delivery.subscription] = delivery
            raise
        if not pending.deliveries:
            self._pending.pop(pending.message_id, None)

    async def _deliver(self, pending: PendingMessage, sub: Subscription) -> str | None:
        """Make one delivery; None when done, else the error ("permanent: ..." is not retried)."""
        message = message_for(pending, sub.protocol)
        try:
            if sub.protocol == "sqs":
                if sub.raw:
                    entry = SendEntry(message, message_attributes.api_shape(pending.attributes))
                else:
                    entry = SendEntry(
                        orjson.dumps(
                            envelope(pending, self._topic_arn(pending.topic), message)
                        ).decode()
                    )
                await self._queues.send(sub.endpoint, entry)
            elif sub.protocol == "lambda":
                stage, _, function = sub.endpoint.partition("/")
                await self._async.accept(
                    Target(stage, function),
                    lambda_event(
                        pending,
                        self._topic_arn(pending.topic),
                        self._subscription_arn(sub),
                        message,
                    ),
                )
            else:
                return await self._post(pending, sub, message)
        except NotFound as exc:
            return exc.message
        except UnkaiError as exc:
            return f"permanent: {exc.message}"
        return None

    async def _post(self, pending: PendingMessage, sub: Subscription, message: str) -> str | None:
        import httpx  # only nodes with HTTP subscriptions load it

        try:
            await self._endpoint_policy.check(sub.endpoint)
        except InvalidRequest as exc:
            return f"permanent: {exc.message}"
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=HTTP_TIMEOUT_S)
        body = (
            message
            if sub.raw
            else orjson.dumps(envelope(pending, self._topic_arn(pending.topic), message)).decode()
        )
        headers = {
            "content-type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": "Notification",
            "x-amz-sns-message-id": pending.message_id,
            "x-amz-sns-topic-arn": self._topic_arn(pending.topic),
            "x-amz-sns-subscription-arn": self._subscription_arn(sub),
        }
        if sub.raw:
            headers["x-amz-sns-rawdelivery"] = "true"
        try:
            response = await self._http.post(sub.endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        except (httpx.InvalidURL, ValueError) as exc:
            return f"permanent: {type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        if response.status_code == 429 or response.status_code >= 500:
            return f"HTTP {response.status_code}"
        return f"permanent: HTTP {response.status_code}"

    async def _dead_letter(self, pending: PendingMessage, sub: Subscription, error: str) -> None:
        if sub.dead_letter_queue is None:
            log.warning(
                "topic %s: message %s to %s %s dropped after %s: no dead-letter queue",
                pending.topic,
                pending.message_id,
                sub.protocol,
                sub.endpoint,
                error,
            )
            return
        body = orjson.dumps(
            envelope(pending, self._topic_arn(pending.topic), message_for(pending, sub.protocol))
        )
        attrs = {
            "RequestID": {"DataType": "String", "StringValue": pending.message_id},
            "ErrorCode": {"DataType": "String", "StringValue": "DeliveryFailed"},
            "ErrorMessage": {
                "DataType": "String",
                "StringValue": error.removeprefix("permanent: ")[:1000],
            },
        }
        await self._queues.send(sub.dead_letter_queue, SendEntry(body.decode(), attrs))
