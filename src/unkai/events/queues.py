"""`QueueService`: SQS's semantics over the backend's QueueStore, written once for the
manifest, the CLI, the control API, queue -> function mappings, topics and destinations.

- Queues and their settings are the catalog's (`QueueCatalog`, queue_catalog.py), the
  service's base; their messages are the QueueStore's.
- A send returns once the messages are committed (group commits: concurrent sends share one).
- A receive with a wait (long polling, up to 20 s) sleeps until a send to the queue wakes it,
  looking again at least every `POLL_S` for messages whose delay or visibility ran out.
- Retention is enforced on receive and by a sweep every `sweep_interval_s`.
- A redrive policy moves a message to its dead-letter queue at the receive after its
  `maxReceiveCount`-th; `redrive` moves messages back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from unkai.backends.base import NewMessage, QueueCounts, ReceiveRequest
from unkai.config.queue_config import ALL_ATTRIBUTES, QueueConfig
from unkai.errors import InvalidRequest
from unkai.events import message_attributes
from unkai.events.queue_catalog import QueueBackend, QueueCatalog
from unkai.events.queue_messages import Message, Sent, check_receipt, message_ids, message_of
from unkai.events.queue_requests import (
    MAX_VISIBILITY_S,
    MAX_WAIT_S,
    CheckedSend,
    EntryError,
    SendEntry,
    check_batch,
    check_batch_size,
    check_range,
    check_send,
)
from unkai.events.queue_waiters import Waiters

log = logging.getLogger("unkai.events")

#: FIFO deduplication window (SQS: five minutes).
DEDUP_WINDOW_MS = 5 * 60 * 1000
#: A waiting receive looks again this often for delayed or returned messages.
POLL_S = 1.0
#: SQS allows one purge per queue per 60 seconds.
PURGE_INTERVAL_MS = 60_000


class QueueService(QueueCatalog):
    """The catalog (queue_catalog.py) and the messages of its queues."""

    def __init__(
        self,
        store: QueueBackend,
        *,
        account_id: str,
        region: str,
        clock_ms: Callable[[], int] | None = None,
        sweep_interval_s: float = 60.0,
    ) -> None:
        super().__init__(store, account_id=account_id, region=region, clock_ms=clock_ms)
        self._sweep_interval_s = sweep_interval_s
        self._waiters = Waiters()
        self._purged_ms: dict[str, int] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.load()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sweeper
        self._waiters.release_all()

    # -- queues ---------------------------------------------------------------------------

    async def delete(self, name: str) -> QueueConfig:
        """DeleteQueue: the queue and its messages; a receive waiting on it returns."""
        config = await super().delete(name)
        await self._store.drop_queue(config.name)
        self._waiters.notify(config.name)
        return config

    async def attributes(self, name: str, wanted: Sequence[str] = ("All",)) -> dict[str, str]:
        config = self.get(name)
        unknown = [w for w in wanted if w != "All" and w not in ALL_ATTRIBUTES]
        if unknown:
            raise InvalidRequest(f"Unknown Attribute {unknown[0]}.", code="InvalidAttributeName")
        counts = await self.counts(config.name)
        dead_letter = config.redrive.dead_letter_queue if config.redrive else None
        shown = config.attributes(
            self.arn(config.name), self.arn(dead_letter) if dead_letter else None
        )
        shown["ApproximateNumberOfMessages"] = str(counts.visible)
        shown["ApproximateNumberOfMessagesNotVisible"] = str(counts.in_flight)
        shown["ApproximateNumberOfMessagesDelayed"] = str(counts.delayed)
        if "All" in wanted:
            return shown
        return {k: v for k, v in shown.items() if k in wanted}

    async def counts(self, name: str) -> QueueCounts:
        return await self._store.count_messages(self.get(name).name, self._clock_ms())

    async def stats(self, name: str) -> dict[str, Any]:
        """Depth, in-flight count and oldest age: what `unkai info` and metrics show."""
        config = self.get(name)
        now = self._clock_ms()
        counts = await self._store.count_messages(config.name, now)
        return {
            "name": config.name,
            "fifo": config.fifo,
            "visible": counts.visible,
            "in_flight": counts.in_flight,
            "delayed": counts.delayed,
            "oldest_age_s": (now - counts.oldest_sent_ms) / 1000
            if counts.oldest_sent_ms is not None
            else 0.0,
            "dead_letter_queue": config.redrive.dead_letter_queue if config.redrive else None,
        }

    # -- messages -------------------------------------------------------------------------

    async def send(self, name: str, entry: SendEntry) -> Sent:
        """One message (SendMessage); raises InvalidRequest for a bad one."""
        config = self.get(name)
        checked = check_send(config, entry)
        return (await self._send(config, [checked]))[0]

    async def send_batch(self, name: str, entries: Sequence[SendEntry]) -> list[Sent | EntryError]:
        """SendMessageBatch: whole-request errors raise; a bad entry fails alone."""
        config = self.get(name)
        check_batch([e.id for e in entries], "SendMessageBatch")
        outcomes: list[Sent | EntryError] = []
        good: list[CheckedSend] = []
        check_batch_size(entries)
        for entry in entries:
            try:
                good.append(check_send(config, entry))
            except InvalidRequest as exc:
                outcomes.append(EntryError.of(entry.id, exc))
        sent = await self._send(config, good) if good else []
        by_id = {s.id: s for s in sent}
        failed = {o.id: o for o in outcomes}
        return [by_id.get(e.id) or failed[e.id] for e in entries]

    async def _send(self, config: QueueConfig, entries: Sequence[CheckedSend]) -> list[Sent]:
        ids = message_ids(len(entries))
        messages = [
            NewMessage(
                next(ids),
                e.body.encode(),
                orjson.dumps(e.attributes) if e.attributes else None,
                e.delay_s * 1000,
                e.group_id,
                e.dedup_id,
                config.dedup_per_group,
            )
            for e in entries
        ]
        stored = await self._store.send_messages(
            config.name, messages, self._clock_ms(), DEDUP_WINDOW_MS
        )
        self._waiters.notify(config.name, sum(not s.duplicate for s in stored))
        return [
            Sent(
                e.id,
                s.message_id,
                message_attributes.md5_of_body(e.body),
                message_attributes.md5_of_attributes(e.attributes),
                str(s.sequence) if config.fifo else None,
            )
            for e, s in zip(entries, stored, strict=True)
        ]

    async def receive(
        self,
        name: str,
        *,
        max_messages: int = 1,
        wait_s: int | None = None,
        visibility_s: int | None = None,
    ) -> list[Message]:
        """ReceiveMessage, with SQS's limits on each parameter."""
        config = self.get(name)
        where = f"queue {config.name!r}"
        check_range(where, "MaxNumberOfMessages", max_messages, 1, 10)
        if wait_s is not None:
            check_range(where, "WaitTimeSeconds", wait_s, 0, MAX_WAIT_S)
        if visibility_s is not None:
            check_range(where, "VisibilityTimeout", visibility_s, 0, MAX_VISIBILITY_S)
        return await self.take(
            config.name,
            max_messages,
            wait_s=config.receive_wait_s if wait_s is None else wait_s,
            visibility_s=visibility_s,
        )

    async def take(
        self,
        name: str,
        max_messages: int,
        *,
        wait_s: float = 0.0,
        visibility_s: int | None = None,
    ) -> list[Message]:
        """Receive without the API's 10-message cap (queue -> function mappings)."""
        config = self.get(name)
        deadline = time.monotonic() + wait_s
        while True:
            now = self._clock_ms()
            request = ReceiveRequest(
                config.name,
                max_messages,
                (config.visibility_timeout_s if visibility_s is None else visibility_s) * 1000,
                now,
                fifo=config.fifo,
                expired_before_ms=now - config.retention_s * 1000,
                dead_letter=self._dead_letter(config),
            )
            got = await self._store.receive_messages(request)
            remaining = deadline - time.monotonic()
            if got or remaining <= 0:
                return [message_of(m) for m in got]
            await self._waiters.wait(config.name, min(remaining, POLL_S), max_messages)
            config = self.get(name)

    async def delete_messages(
        self, name: str, receipts: Sequence[tuple[str, str]]
    ) -> list[EntryError | None]:
        """(entry id, receipt handle) pairs; a stale receipt is no error (as in SQS)."""
        config = self.get(name)
        outcomes: list[EntryError | None] = []
        valid: list[str] = []
        for entry_id, receipt in receipts:
            error = check_receipt(receipt)
            outcomes.append(EntryError.of(entry_id, error) if error else None)
            if error is None:
                valid.append(receipt)
        if valid:
            await self._store.delete_messages(config.name, valid)
            if config.fifo:
                self._waiters.notify(config.name, 1)  # the group it freed: one receive can take it
        return outcomes

    async def delete_message(self, name: str, receipt: str) -> None:
        error = (await self.delete_messages(name, [("0", receipt)]))[0]
        if error is not None:
            raise InvalidRequest(error.message, code=error.code)

    async def give_back(self, name: str, receipts: Sequence[str]) -> int:
        """Return received messages a consumer could not pass on (an event source mapping
        whose batch was too big for one invocation): visible again now, and this receive
        does not count towards their maxReceiveCount."""
        returned = await self._store.return_messages(name, receipts, self._clock_ms())
        self._waiters.notify(name, returned)
        return returned

    async def change_visibility(
        self, name: str, changes: Sequence[tuple[str, str, int]]
    ) -> list[EntryError | None]:
        """(entry id, receipt handle, timeout s); a message not in flight is MessageNotInflight."""
        config = self.get(name)
        outcomes: list[EntryError | None] = [None] * len(changes)
        valid: list[tuple[int, str, int]] = []
        for index, (entry_id, receipt, timeout_s) in enumerate(changes):
            error = check_receipt(receipt)
            if error is None:
                try:
                    check_range(
                        f"queue {config.name!r}",
                        "VisibilityTimeout",
                        timeout_s,
                        0,
                        MAX_VISIBILITY_S,
                    )
                except InvalidRequest as exc:
                    error = exc
            if error is not None:
                outcomes[index] = EntryError.of(entry_id, error)
            else:
                valid.append((index, receipt, timeout_s * 1000))
        if valid:
            changed = await self._store.change_visibility(
                config.name, [(r, t) for _, r, t in valid], self._clock_ms()
            )
            for (index, receipt, _), ok in zip(valid, changed, strict=True):
                if not ok:
                    outcomes[index] = EntryError(
                        changes[index][0],
                        "MessageNotInflight",
                        f"the message of receipt handle {receipt} is not in flight (it was "
                        "deleted, or its visibility timeout ran out and it was received again)",
                    )
            self._waiters.notify(config.name)
        return outcomes

    async def change_message_visibility(self, name: str, receipt: str, timeout_s: int) -> None:
        error = (await self.change_visibility(name, [("0", receipt, timeout_s)]))[0]
        if error is not None:
            raise InvalidRequest(error.message, code=error.code)

    async def purge(self, name: str) -> int:
        config = self.get(name)
        now = self._clock_ms()
        last = self._purged_ms.get(config.name)
        if last is not None and now - last < PURGE_INTERVAL_MS:
            raise InvalidRequest(
                f"Only one PurgeQueue operation on {config.name} is allowed every 60 seconds.",
                code="PurgeQueueInProgress",
            )
        self._purged_ms[config.name] = now
        return await self._store.purge_queue(config.name)

    async def redrive(
        self, dead_letter_queue: str, destination: str | None = None, max_messages: int = 10_000
    ) -> dict[str, Any]:
        """Move messages from a dead-letter queue back to `destination`, by default the one
        queue whose RedrivePolicy names it (SQS's StartMessageMoveTask)."""
        source = self.get(dead_letter_queue)
        if destination is None:
            sources = [
                q.name
                for q in self._queues.values()
                if q.redrive is not None and q.redrive.dead_letter_queue == source.name
            ]
            if len(sources) != 1:
                raise InvalidRequest(
                    f"queue {source.name!r} is the dead-letter queue of "
                    f"{len(sources)} queues ({', '.join(sources) or 'none'}); name the "
                    "destination",
                    code="InvalidParameterValue",
                )
            destination = sources[0]
        target = self.get(destination)
        if target.fifo != source.fifo:
            raise InvalidRequest(
                f"cannot move messages between a FIFO and a standard queue ({source.name} -> "
                f"{target.name})",
                code="InvalidParameterValue",
            )
        moved = await self._store.move_messages(
            source.name, target.name, max_messages, self._clock_ms()
        )
        self._waiters.notify(target.name)
        return {"source": source.name, "destination": target.name, "moved": moved}

    # -- internals ------------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            for config in list(self._queues.values()):
                now = self._clock_ms()
                try:
                    await self._store.expire_messages(
                        config.name, now - config.retention_s * 1000, now
                    )
                except Exception:  # boundary: the next sweep tries again
                    log.exception("queue %s: retention sweep failed", config.name)
