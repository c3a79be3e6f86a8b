"""Deliveries read back at start (after downtime) reload each message's content only while
one of its deliveries runs: the backlog is not all held in memory at once, whatever order the
deliveries come due in. Real sqlite store and queue service."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from unkai.backends.base import Write
from unkai.backends.factory import open_backend
from unkai.events import topic_deliveries
from unkai.events.endpoint_policy import EndpointPolicy
from unkai.events.queues import QueueService
from unkai.events.sns_messages import Delivery, PendingMessage
from unkai.events.subscriptions import Subscription
from unkai.events.topic_deliveries import MESSAGE_KIND, TopicDeliveries

MESSAGES = 60


def test_a_backlog_read_back_at_start_is_not_all_loaded_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(topic_deliveries, "MAX_IN_FLIGHT", 4)
    asyncio.run(_backlog(tmp_path))


async def _backlog(tmp_path: Path) -> None:
    backend = open_backend("sqlite", tmp_path)
    await backend.open()
    queues = QueueService(backend, account_id="000000000000", region="us-east-1")
    await queues.start()
    try:
        await queues.create("sink", {})
        subscriptions = {s: Subscription(s, "t", "sqs", "sink", raw=True) for s in ("a", "b")}
        # Given messages stored by an earlier run, each owing two deliveries long overdue: every
        # message's first delivery comes due before any message's second
        for i in range(MESSAGES):
            pending = PendingMessage(f"m{i:03d}", "t", f"{i}:" + "x" * 10_000, None, None, {}, "")
            pending.deliveries["a"] = Delivery("a", 1, 1_000 + i)
            pending.deliveries["b"] = Delivery("b", 1, 5_000 + i)
            await backend.commit([Write(MESSAGE_KIND, pending.message_id, pending.to_doc())])
        deliveries = TopicDeliveries(
            backend,
            queues,
            None,  # type: ignore[arg-type]  # no subscription is a function's
            subscription=subscriptions.get,
            topic_arn=lambda topic: topic,
            subscription_arn=lambda sub: sub.id,
            retry_base_s=1.0,
            clock_ms=lambda: 10_000_000,
            endpoint_policy=EndpointPolicy(allow_private=True),
        )
        # When they are read back and delivered
        await deliveries.start()
        peak = 0
        for _ in range(3000):
            await asyncio.sleep(0.002)
            loaded = sum(p.loaded for p in deliveries._pending.values())
            peak = max(peak, loaded)
            if not deliveries._pending:
                break
        await deliveries.close()
        # Then no more messages were loaded at once than deliveries may run at once
        assert peak <= 4, f"{peak} of {MESSAGES} messages held their content at once"
        # And every delivery was made, with the whole message
        bodies: list[str] = []
        while batch := await queues.receive("sink", max_messages=10, visibility_s=60):
            bodies += [m.body for m in batch]
        expected = sorted([f"{i}:" + "x" * 10_000 for i in range(MESSAGES)] * 2)
        assert sorted(bodies) == expected
        assert await backend.list(MESSAGE_KIND) == []
    finally:
        await queues.close()
        await backend.close()
