"""`AsyncEvents`: Lambda's asynchronous invocation
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html), durable and at least once.

- `accept` stores the event in the backend and only then returns (the caller answers 202), so
  an accepted event survives `kill -9`: at start the pending events are read back.
- The dispatcher runs each event when it is due, through `Invoker.start` like any call.
- A function error (or timeout, crash) uses up an attempt; it is retried after an exponential
  backoff with full jitter (`random(0, base * 2^(n-1))`, base `--async-retry-base-s`, 60 s),
  up to the function's `maximumRetryAttempts` (0 to 2, default 2), within its
  `maximumEventAge` (60 to 21600 s).
- A throttle (reserved concurrency used up, no instance free) uses up no attempt: it is retried
  with a backoff 60 times shorter, until the event is too old.
- Outcomes go to the function's `destinations` (a function of the stage) as Lambda's
  destination record: `onSuccess`, or `onFailure` with the condition `RetriesExhausted` or
  `EventAgeExceeded`.

Memory: a new event keeps its payload (up to 256 KB) in memory until it runs, within
MAX_HELD_PAYLOAD_BYTES for all of them; past that, and for events waiting to be retried or
read back at start, only the event's fields are held and the payload is read back from the
store when the event runs. A backlog of throttled or failing events would otherwise cost its
whole size in RAM, and reading back every new event's payload cost a third of the accept rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson

from unkai.backends.base import MetadataStore, Write, each_document
from unkai.background import Background
from unkai.config.async_config import AsyncConfig, TargetKind, parse_target
from unkai.errors import InvocationFailed, LimitExceeded, NotFound, Throttled, UnkaiError
from unkai.invoke.backoff import full_jitter
from unkai.invoke.invoker import Invoker
from unkai.invoke.models import InvocationMode, InvocationResult, Target
from unkai.invoke.request_ids import new_request_id

log = logging.getLogger("unkai.invoke")

KIND = "async_event"
#: Lambda's limit on an asynchronous invocation's payload.
MAX_PAYLOAD_BYTES = 256 * 1024
#: Throttled events back off this many times faster than failed ones (Lambda: from 1 s).
THROTTLE_SPEEDUP = 60
#: The longest single backoff of a throttled event (Lambda: 5 minutes).
MAX_THROTTLE_DELAY_S = 300.0
#: Destination records that trigger destinations stop after this many in a row (Lambda stops
#: recursive loops after about 16 invocations).
MAX_HOPS = 16
#: Wait before trying again to store the outcome of an event when the store failed.
STORE_RETRY_S = 5.0
#: Payload bytes that new events waiting to run may hold in memory (see the module docstring).
MAX_HELD_PAYLOAD_BYTES = 16 * 1024 * 1024


class Outbox(Protocol):
    """Sends destination records and dead-lettered events to queues and topics."""

    async def send(
        self, kind: TargetKind, name: str, body: str, attributes: Mapping[str, Any] | None = None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class PendingEvent:
    request_id: str
    stage: str
    function: str
    qualifier: str | None
    payload: bytes
    accepted_ms: int
    due_ms: int
    attempts: int = 0
    #: Times it was throttled: the exponent of its throttle backoff (attempts do not grow).
    throttles: int = 0
    #: Destination records in a row that led to this event (a loop stops at MAX_HOPS).
    hops: int = 0

    @property
    def key(self) -> str:
        return f"{self.stage}/{self.request_id}"

    def to_doc(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "stage": self.stage,
            "function": self.function,
            "qualifier": self.qualifier,
            "payload": self.payload.decode(),
            "accepted_ms": self.accepted_ms,
            "due_ms": self.due_ms,
            "attempts": self.attempts,
            "throttles": self.throttles,
            "hops": self.hops,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> PendingEvent:
        return cls(**{**doc, "payload": doc["payload"].encode()})


class AsyncEvents:
    def __init__(
        self,
        store: MetadataStore,
        invoker: Invoker,
        *,
        retry_base_s: float = 60.0,
        max_in_flight: int = 64,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self._store = store
        self._invoker = invoker
        self._retry_base_s = retry_base_s
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._due: list[tuple[int, str]] = []  # heap of (due_ms, key)
        self._pending: dict[str, PendingEvent] = {}
        #: Payload bytes held by the events in `_pending`.
        self._held_bytes = 0
        self._running: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tasks = Background()
        #: Events run at once, at most: the rest wait in the heap, not in the pools.
        self._max_in_flight = max_in_flight
        self._closing = False
        #: Queue and topic targets; set by the platform once those services exist.
        self.outbox: Outbox | None = None

    async def start(self) -> None:
        async for doc in each_document(self._store, KIND):
            self._schedule(PendingEvent.from_doc(doc.value))
        self._task = asyncio.get_running_loop().create_task(self._dispatch_forever())

    async def close(self) -> None:
        """Stop dispatching; outcomes that arrive from now on change nothing stored, so the
        events being run when the platform stops run again after the next start."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._tasks.cancel_all()

    # -- accept ---------------------------------------------------------------------------

    async def accept(
        self, target: Target, payload: bytes, *, hops: int = 0, also: list[Write] | None = None
    ) -> str:
        """Store the event durably (with the `also` writes, in the same commit); returns its
        request id. Raises NotFound for an unknown function (as Lambda does at once) and
        LimitExceeded for an oversized payload."""
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise LimitExceeded(
                "an asynchronous invocation's payload", MAX_PAYLOAD_BYTES, len(payload)
            )
        await self._invoker.resolve(target)
        now = self._clock_ms()
        event = PendingEvent(
            new_request_id(),
            target.stage,
            target.function,
            target.qualifier,
            payload,
            now,
            now,
            hops=hops,
        )
        writes = [Write(KIND, event.key, event.to_doc(), expected_revision=0), *(also or [])]
        await self._store.commit(writes)
        self._schedule(event, hold=True)
        return event.request_id

    def pending(self) -> int:
        return len(self._pending)

    # -- dispatch -------------------------------------------------------------------------

    def _schedule(self, event: PendingEvent, *, hold: bool = False) -> None:
        """Make `event` due; it keeps its payload in memory only when `hold` is asked and
        the budget allows (an empty payload is read back when the event runs)."""
        self._forget(event.key)
        size = len(event.payload)
        if size and (not hold or self._held_bytes + size > MAX_HELD_PAYLOAD_BYTES):
            event = replace(event, payload=b"")
        self._held_bytes += len(event.payload)
        self._pending[event.key] = event
        heapq.heappush(self._due, (event.due_ms, event.key))
        self._wake.set()

    async def _dispatch_forever(self) -> None:
        while True:
            now = self._clock_ms()
            while self._due and self._due[0][0] <= now and len(self._running) < self._max_in_flight:
                _, key = heapq.heappop(self._due)
                event = self._pending.get(key)
                if event is not None and key not in self._running and event.due_ms <= now:
                    self._running.add(key)
                    self._spawn(self._run(event))
            self._wake.clear()
            timeout = (self._due[0][0] - now) / 1000 if self._due else None
            if self._due and len(self._running) >= self._max_in_flight:
                timeout = None  # a settled event wakes the loop
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _forget(self, key: str) -> None:
        event = self._pending.pop(key, None)
        if event is not None:
            self._held_bytes -= len(event.payload)

    async def _run(self, waiting: PendingEvent) -> None:
        if waiting.payload:
            await self._run_loaded(waiting)
            return
        try:
            doc = await self._store.get(KIND, waiting.key)
        except Exception:  # boundary: the store failed; the event is tried again later
            log.exception("async event %s: could not read its payload", waiting.request_id)
            self._retry_later(waiting)
            self._release(waiting.key)
            return
        if doc is None:  # settled meanwhile: nothing is left to run
            self._forget(waiting.key)
            self._release(waiting.key)
            return
        await self._run_loaded(replace(waiting, payload=doc.value["payload"].encode()))

    async def _run_loaded(self, event: PendingEvent) -> None:
        config = await self._config(event)
        if self._clock_ms() - event.accepted_ms > config.maximum_event_age_s * 1000:
            # Too old already (e.g. the platform was down): it is not run, as in Lambda.
            await self._settle_guarded(event, config, None)
            return
        target = Target(event.stage, event.function, event.qualifier)
        attempt = replace(event, attempts=event.attempts + 1)

        def done(outcome: InvocationResult | UnkaiError) -> None:
            self._spawn(self._settle_guarded(attempt, config, outcome))

        self._invoker.start(
            target, event.payload, done, mode=InvocationMode.ASYNC, request_id=event.request_id
        )

    async def _settle_guarded(
        self,
        event: PendingEvent,
        config: AsyncConfig,
        outcome: InvocationResult | UnkaiError | None,
    ) -> None:
        try:
            if not self._closing:
                await self._settle(event, config, outcome)
        except Exception:  # boundary: the stored event is tried again a little later
            log.exception("async event %s: could not store its outcome", event.request_id)
            stored = self._pending.get(event.key)
            if stored is not None and not self._closing:
                self._retry_later(stored)
        finally:
            self._release(event.key)

    def _retry_later(self, event: PendingEvent) -> None:
        """Run `event` again after STORE_RETRY_S: the store failed while it was handled."""
        self._schedule(replace(event, due_ms=self._clock_ms() + int(STORE_RETRY_S * 1000)))

    def _release(self, key: str) -> None:
        """The event is no longer running: the dispatcher may start another."""
        self._running.discard(key)
        self._wake.set()

    async def _settle(
        self,
        event: PendingEvent,
        config: AsyncConfig,
        outcome: InvocationResult | UnkaiError | None,
    ) -> None:
        now = self._clock_ms()
        too_old = now - event.accepted_ms > config.maximum_event_age_s * 1000
        if outcome is None:
            await self._finish(event, config, None, "EventAgeExceeded")
            return
        if isinstance(outcome, NotFound):
            # The function is gone (removed after the event was accepted): nothing to retry.
            log.warning("async event %s dropped: %s", event.request_id, outcome.message)
            await self._finish(event, config, None, "Gone")
            return
        if isinstance(outcome, InvocationFailed) and outcome.code == "Runtime.Retired":
            # Its pool was retired by a deploy while it waited: run it again on the new one.
            await self._reschedule(replace(event, attempts=event.attempts - 1), now, 0.0)
            return
        if isinstance(outcome, Throttled):
            if too_old:
                await self._finish(event, config, None, "EventAgeExceeded")
                return
            # A throttle uses up no attempt.
            throttled = replace(event, attempts=event.attempts - 1, throttles=event.throttles + 1)
            delay = self._backoff(throttled.throttles, self._retry_base_s / THROTTLE_SPEEDUP)
            await self._reschedule(throttled, now, delay)
            return
        # A function error, or an instance that could not start: a failed attempt.
        result = outcome if isinstance(outcome, InvocationResult) else None
        if result is not None and result.error is None:
            await self._finish(event, config, result, "Success")
        elif event.attempts > config.maximum_retry_attempts:
            await self._finish(event, config, result, "RetriesExhausted")
        elif too_old:
            await self._finish(event, config, result, "EventAgeExceeded")
        else:
            await self._reschedule(event, now, self._backoff(event.attempts, self._retry_base_s))

    def _backoff(self, attempts: int, base_s: float) -> float:
        """Full jitter; a throttle's (shorter base) is capped at MAX_THROTTLE_DELAY_S."""
        cap = MAX_THROTTLE_DELAY_S if base_s < self._retry_base_s else None
        return full_jitter(attempts, base_s, cap)

    async def _reschedule(self, event: PendingEvent, now_ms: int, delay_s: float) -> None:
        event = replace(event, due_ms=now_ms + int(delay_s * 1000))
        config = await self._config(event)
        expiry = event.accepted_ms + config.maximum_event_age_s * 1000
        if event.due_ms > expiry:
            event = replace(event, due_ms=expiry + 1)  # it then ends as EventAgeExceeded
        await self._store.commit([Write(KIND, event.key, event.to_doc())])
        self._schedule(event)

    async def _finish(
        self,
        event: PendingEvent,
        config: AsyncConfig,
        outcome: InvocationResult | None,
        condition: str,
    ) -> None:
        delete = Write(KIND, event.key, None)
        if condition in ("RetriesExhausted", "EventAgeExceeded") and config.dead_letter:
            await self._dead_letter(event, config.dead_letter, outcome, condition)
        destination = config.on_success if condition == "Success" else config.on_failure
        if destination is None or condition == "Gone" or event.hops >= MAX_HOPS:
            if destination is not None and event.hops >= MAX_HOPS:
                log.warning("async event %s: destination loop stopped", event.request_id)
            await self._store.commit([delete])
        else:
            record = self._destination_record(event, outcome, condition)
            try:
                kind, name = parse_target(destination)
                if kind == "function":
                    # Invoked asynchronously, stored with the source's delete.
                    await self.accept(
                        Target(event.stage, name), record, hops=event.hops + 1, also=[delete]
                    )
                else:
                    # Sent first, then the source deleted: at least once.
                    await self._require_outbox().send(kind, name, record.decode())
                    await self._store.commit([delete])
            except UnkaiError as exc:
                log.warning(
                    "async event %s: destination %s refused: %s",
                    event.request_id,
                    destination,
                    exc.message,
                )
                await self._store.commit([delete])
        self._forget(event.key)

    async def _dead_letter(
        self,
        event: PendingEvent,
        target: str,
        outcome: InvocationResult | None,
        condition: str,
    ) -> None:
        """Lambda's DeadLetterConfig: the event itself, with the error in its attributes."""
        error = outcome.error if outcome is not None else None
        attributes = {
            "RequestID": {"DataType": "String", "StringValue": event.request_id},
            "ErrorCode": {"DataType": "String", "StringValue": "200"},
            "ErrorMessage": {
                "DataType": "String",
                "StringValue": (
                    error.error_message[:1000] or error.error_type if error else condition
                ),
            },
        }
        try:
            kind, name = parse_target(target, bare="queue")
            await self._require_outbox().send(kind, name, event.payload.decode(), attributes)
        except UnkaiError as exc:
            log.warning(
                "async event %s: dead-letter target %s refused: %s",
                event.request_id,
                target,
                exc.message,
            )

    def _require_outbox(self) -> Outbox:
        if self.outbox is None:
            raise InvocationFailed("Unkai.NoOutbox", "queues and topics are not available")
        return self.outbox

    def _destination_record(
        self, event: PendingEvent, outcome: InvocationResult | None, condition: str
    ) -> bytes:
        """Lambda's destination record
        (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html)."""
        arn = self._invoker.function_arn(event.function, event.qualifier)
        record: dict[str, Any] = {
            "version": "1.0",
            "timestamp": dt.datetime.now(dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "requestContext": {
                "requestId": event.request_id,
                "functionArn": arn,
                "condition": condition,
                "approximateInvokeCount": event.attempts,
            },
            "requestPayload": _json_value(event.payload),
        }
        if outcome is not None:
            response: dict[str, Any] = {
                "statusCode": 200,
                "executedVersion": outcome.executed_version,
            }
            if outcome.error is not None:
                response["functionError"] = outcome.error.kind
                record["responsePayload"] = outcome.error.to_document()
            else:
                record["responsePayload"] = _json_value(outcome.payload or b"null")
            record["responseContext"] = response
        encoded = orjson.dumps(record)
        if len(encoded) > MAX_PAYLOAD_BYTES:
            # Lambda would refuse it too; the destination still learns what happened.
            record.pop("responsePayload", None)
            record["requestPayload"] = None
            encoded = orjson.dumps(record)
        return encoded

    async def _config(self, event: PendingEvent) -> AsyncConfig:
        try:
            version = await self._invoker.resolve(
                Target(event.stage, event.function, event.qualifier)
            )
        except UnkaiError:
            return AsyncConfig()
        return version.async_config

    def _spawn(self, coro: Any) -> None:
        self._tasks.spawn(coro)


def _json_value(data: bytes) -> Any:
    """A payload as a JSON value for a destination record. Python handlers' results are
    encoded by `json.dumps`, which writes NaN, Infinity and lone surrogates that strict JSON
    (orjson) refuses; such a payload goes in as its text, so that the record is still made:
    failing here would count as a failed store and run the event again."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data.decode("utf-8", "replace")
