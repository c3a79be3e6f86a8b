"""`QueueMappings`: Lambda's SQS event source mappings
(https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html), one poller per `- sqs:` event.

A poller's workers each loop: receive a batch (long polling), invoke the function
synchronously with the SQS event, then delete what succeeded. A failed invocation deletes
nothing: the messages come back after the queue's visibility timeout, their receive count
grows, and the queue's redrive policy finally moves them to its dead-letter queue. With
`ReportBatchItemFailures`, the function's `batchItemFailures` stay and the rest are deleted.

Scaling follows the queue: a poller starts with one worker, adds one whenever a worker got a
full batch (up to `maximumConcurrency`, else the platform's instance cap), and a worker
beyond the first stops after an empty receive or a failed invocation. A throttle backs the
worker off (exponentially, with full jitter); a round that fails outright (a store error) is
logged and retried after a backoff, so a mapping never stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

from unkai.background import Background
from unkai.config.queue_config import QueueMappingConfig
from unkai.deploy.registry import Registry
from unkai.deploy.versions import SQS_METHOD
from unkai.errors import NotFound, Throttled, UnkaiError
from unkai.events import message_attributes
from unkai.events.queue_messages import Message
from unkai.events.queues import QueueService
from unkai.invoke.backoff import full_jitter
from unkai.invoke.invoker import Invoker
from unkai.invoke.models import InvocationResult, Target

log = logging.getLogger("unkai.events")

#: A worker's receive waits this long for messages (SQS's longest long poll).
LONG_POLL_S = 20.0
#: Lambda's synchronous invocation payload limit: a batch is cut to fit.
MAX_EVENT_BYTES = 6 * 1024 * 1024
#: Throttle backoff: first ceiling and largest ceiling, in seconds.
BACKOFF_BASE_S = 0.1
BACKOFF_MAX_S = 5.0


@dataclass(frozen=True, slots=True)
class MappingKey:
    stage: str
    function: str
    queue: str

    def __str__(self) -> str:
        return f"{self.stage}/{self.function}<-{self.queue}"


class QueueMappings:
    def __init__(
        self,
        registry: Registry,
        queues: QueueService,
        invoker: Invoker,
        *,
        default_max_concurrency: int,
    ) -> None:
        self._registry = registry
        self._queues = queues
        self._invoker = invoker
        self._default_max_concurrency = max(1, default_max_concurrency)
        self._pollers: dict[MappingKey, _Poller] = {}
        self._tasks = Background()
        self._lock = asyncio.Lock()
        self._closed = False
        registry.subscribe(self._on_stage_changed)

    async def start(self) -> None:
        for stage in await self._registry.stages():
            await self._load(stage)

    async def close(self) -> None:
        """Stop every poller; messages being processed return after their visibility timeout
        (or are deleted, if their invocation finishes first)."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        async with self._lock:
            pollers, self._pollers = list(self._pollers.values()), {}
        await asyncio.gather(*(p.stop() for p in pollers), return_exceptions=True)

    def list(self) -> list[dict[str, Any]]:
        return [p.summary() for p in sorted(self._pollers.values(), key=lambda p: str(p.key))]

    def _on_stage_changed(self, stage: str) -> asyncio.Task[Any] | None:
        if self._closed:
            return None
        return self._tasks.spawn(self._load(stage))

    async def _load(self, stage: str) -> None:
        async with self._lock:
            if self._closed:
                return
            wanted: dict[MappingKey, QueueMappingConfig] = {}
            for route in await self._registry.routes(stage):
                if route.method == SQS_METHOD and route.mapping is not None:
                    wanted[MappingKey(stage, route.function, route.path)] = route.mapping
            stale = [
                key
                for key, poller in self._pollers.items()
                if key.stage == stage and wanted.get(key) != poller.config
            ]
            for key in stale:
                await self._pollers.pop(key).stop()
            for key, config in wanted.items():
                if key not in self._pollers and config.enabled:
                    poller = _Poller(key, config, self._queues, self._invoker, self._cap(config))
                    self._pollers[key] = poller
                    poller.start()

    def _cap(self, config: QueueMappingConfig) -> int:
        return config.maximum_concurrency or self._default_max_concurrency


class _Poller:
    def __init__(
        self,
        key: MappingKey,
        config: QueueMappingConfig,
        queues: QueueService,
        invoker: Invoker,
        max_workers: int,
    ) -> None:
        self.key = key
        self.config = config
        self._queues = queues
        self._invoker = invoker
        self._max_workers = max_workers
        self._workers: set[asyncio.Task[None]] = set()
        self._deleting: set[asyncio.Task[None]] = set()
        self._target = Target(key.stage, key.function)
        self._arn = queues.arn(key.queue)
        self._stopping = False
        self.processed = 0
        self.failed_batches = 0
        self.throttles = 0
        self._throttled_in_a_row = 0

    def start(self) -> None:
        self._add_worker()

    async def stop(self) -> None:
        self._stopping = True
        for worker in list(self._workers):
            worker.cancel()
        for worker in list(self._workers):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker
        # Deletes of processed batches finish: their messages are not run again.
        await asyncio.gather(*self._deleting, return_exceptions=True)

    def summary(self) -> dict[str, Any]:
        return {
            "stage": self.key.stage,
            "function": self.key.function,
            "queue": self.key.queue,
            "batch_size": self.config.batch_size,
            "workers": len(self._workers),
            "max_workers": self._max_workers,
            "processed": self.processed,
            "failed_batches": self.failed_batches,
            "throttles": self.throttles,
            "enabled": self.config.enabled,
        }

    def _add_worker(self) -> None:
        task = asyncio.get_running_loop().create_task(self._work())
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)

    async def _work(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                keep = await self._round()
            except Exception:  # boundary: one bad round (a store error, a queue deleted
                # mid-batch) must not end the mapping; its messages come back after their
                # visibility timeout.
                failures += 1
                log.exception("mapping %s: a polling round failed", self.key)
                await asyncio.sleep(full_jitter(failures, 1.0, BACKOFF_MAX_S))
                continue
            failures = 0
            if not keep and self._leave():
                return

    def _leave(self) -> bool:
        """Stop this worker if it is not the last one: checked and done in one step, so
        two workers leaving together cannot leave the mapping with none."""
        if len(self._workers) <= 1:
            return False
        task = asyncio.current_task()
        if task is not None:
            self._workers.discard(task)
        return True

    async def _round(self) -> bool:
        """One receive -> invoke -> delete; False when this worker is not needed (an empty
        receive, or a failed batch: errors scale the poller down)."""
        try:
            batch = await self._receive()
        except NotFound:
            log.warning("mapping %s: queue %s is gone; retrying in 5 s", self.key, self.key.queue)
            await asyncio.sleep(5.0)
            return True
        if not batch:
            return False
        if len(batch) >= self.config.batch_size and len(self._workers) < self._max_workers:
            self._add_worker()
        outcome = await self._invoke(batch)
        if isinstance(outcome, Throttled):
            self._throttled_in_a_row += 1
            self.throttles += 1
            await asyncio.sleep(
                full_jitter(self._throttled_in_a_row, BACKOFF_BASE_S, BACKOFF_MAX_S)
            )
            return True
        self._throttled_in_a_row = 0
        done = self._succeeded(batch, outcome)
        if done:
            # Not awaited: the next receive is queued behind it for the same group commit
            # (a FIFO group it frees wakes waiting receives when it commits).
            self._spawn_delete(done)
        if len(done) < len(batch):
            self.failed_batches += 1
            return False
        return True

    def _spawn_delete(self, done: list[Message]) -> None:
        task = asyncio.get_running_loop().create_task(self._delete(done))
        self._deleting.add(task)
        task.add_done_callback(self._deleting.discard)

    async def _delete(self, done: list[Message]) -> None:
        try:
            await self._queues.delete_messages(
                self.key.queue, [(str(i), m.receipt_handle) for i, m in enumerate(done)]
            )
        except Exception:  # boundary: the messages come back after their visibility timeout
            log.exception("mapping %s: deleting %d processed messages failed", self.key, len(done))
            return
        self.processed += len(done)

    async def _receive(self) -> list[Message]:
        batch = await self._queues.take(self.key.queue, self.config.batch_size, wait_s=LONG_POLL_S)
        window = self.config.maximum_batching_window_s
        if not batch or window == 0 or len(batch) >= self.config.batch_size:
            return batch
        deadline = time.monotonic() + window
        while len(batch) < self.config.batch_size and not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            batch += await self._queues.take(
                self.key.queue, self.config.batch_size - len(batch), wait_s=remaining
            )
        # A message whose visibility ran out during the window was received again: keep its
        # latest receive (the only receipt that can delete it).
        latest = {m.message_id: m for m in batch}
        return list(latest.values()) if len(latest) < len(batch) else batch

    async def _invoke(self, batch: list[Message]) -> InvocationResult | UnkaiError:
        fifo = self._queues.get(self.key.queue).fifo
        records = [self._record(m, fifo) for m in batch]
        payload = orjson.dumps({"Records": records})
        while len(payload) > MAX_EVENT_BYTES and len(records) > 1:
            # Too big for one invocation: the tail goes back at once, for the next batch.
            spill = batch[len(records) // 2 :]
            del batch[len(records) // 2 :]
            records = records[: len(batch)]
            # Given back, not made visible: their receive count is not used up by a trim
            # they did not cause (else they could reach the DLQ without being invoked).
            await self._queues.give_back(self.key.queue, [m.receipt_handle for m in spill])
            payload = orjson.dumps({"Records": records})
        try:
            return await self._invoker.invoke(self._target, payload)
        except UnkaiError as exc:
            if not isinstance(exc, Throttled):
                log.warning("mapping %s: invocation refused: %s", self.key, exc.message)
            return exc

    def _succeeded(
        self, batch: list[Message], outcome: InvocationResult | UnkaiError
    ) -> list[Message]:
        """The messages to delete after `outcome`."""
        if not isinstance(outcome, InvocationResult) or outcome.error is not None:
            return []
        if not self.config.report_batch_item_failures:
            return batch
        failed = _batch_item_failures(outcome.payload, {m.message_id for m in batch})
        if failed is None:
            log.warning(
                "mapping %s: the response's batchItemFailures are malformed; the whole "
                "batch counts as failed",
                self.key,
            )
            return []
        if failed and self._queues.get(self.key.queue).fifo:
            # A FIFO group stops at its first failure: the group's later messages of the
            # batch are not deleted either, so they run again after it, in order.
            stopped = set()
            for m in batch:
                if m.message_id in failed or m.group_id in stopped:
                    failed.add(m.message_id)
                    stopped.add(m.group_id)
        return [m for m in batch if m.message_id not in failed]

    def _record(self, m: Message, fifo: bool) -> dict[str, Any]:
        """One record of Lambda's SQS event."""
        return {
            "messageId": m.message_id,
            "receiptHandle": m.receipt_handle,
            "body": m.body,
            "attributes": m.system_attributes(fifo),
            "messageAttributes": message_attributes.lambda_shape(m.attributes),
            "md5OfBody": m.md5_of_body,
            **({"md5OfMessageAttributes": m.md5_of_attributes} if m.md5_of_attributes else {}),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._arn,
            "awsRegion": self._queues.region,
        }


def _batch_item_failures(payload: bytes | None, ids: set[str]) -> set[str] | None:
    """The ids a partial batch response names; None when it is malformed (Lambda then fails
    the whole batch). An empty or null response, or one without the key, means success."""
    if not payload:
        return set()
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None  # Lambda: an invalid JSON response fails the whole batch
    if not isinstance(doc, dict) or doc.get("batchItemFailures") is None:
        return set()
    items = doc["batchItemFailures"]
    if not isinstance(items, list):
        return None
    failed: set[str] = set()
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or ident not in ids:
            return None
        failed.add(ident)
    return failed
