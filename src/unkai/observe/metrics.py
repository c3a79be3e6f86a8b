"""Prometheus metrics of the event sources, rendered at scrape time from the services' own
counts (`GET /_unkai/metrics`): nothing is sampled in the background, so an idle platform
does no work for them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render(
    queues: Iterable[Mapping[str, Any]],
    topics: Iterable[Mapping[str, Any]],
    mappings: Iterable[Mapping[str, Any]],
    async_pending: int,
) -> bytes:
    """The exposition text of one scrape; the inputs are the services' `stats()` rows."""
    # Imported on the first scrape: a node nobody scrapes does not carry the library.
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    by_queue = {
        "visible": Gauge(
            "unkai_queue_messages_visible",
            "Messages that can be received now (ApproximateNumberOfMessages).",
            ["queue"],
            registry=registry,
        ),
        "in_flight": Gauge(
            "unkai_queue_messages_in_flight",
            "Messages received and not yet deleted (ApproximateNumberOfMessagesNotVisible).",
            ["queue"],
            registry=registry,
        ),
        "delayed": Gauge(
            "unkai_queue_messages_delayed",
            "Messages whose delay has not passed (ApproximateNumberOfMessagesDelayed).",
            ["queue"],
            registry=registry,
        ),
        "oldest_age_s": Gauge(
            "unkai_queue_oldest_message_age_seconds",
            "Age of the oldest message in the queue (ApproximateAgeOfOldestMessage).",
            ["queue"],
            registry=registry,
        ),
    }
    for row in queues:
        for key, gauge in by_queue.items():
            gauge.labels(row["name"]).set(row[key])
    pending = Gauge(
        "unkai_topic_pending_deliveries",
        "Deliveries of published messages not yet made (retrying ones included).",
        ["topic"],
        registry=registry,
    )
    for row in topics:
        pending.labels(row["name"]).set(row["pending_deliveries"])
    workers = Gauge(
        "unkai_queue_mapping_workers",
        "Pollers running for a queue -> function mapping.",
        ["stage", "function", "queue"],
        registry=registry,
    )
    processed = Gauge(
        "unkai_queue_mapping_processed_messages",
        "Messages a mapping's function processed and deleted since the platform started.",
        ["stage", "function", "queue"],
        registry=registry,
    )
    throttled = Gauge(
        "unkai_queue_mapping_throttles",
        "Batches a mapping's function refused as throttled since the platform started.",
        ["stage", "function", "queue"],
        registry=registry,
    )
    for row in mappings:
        labels = (row["stage"], row["function"], row["queue"])
        workers.labels(*labels).set(row["workers"])
        processed.labels(*labels).set(row["processed"])
        throttled.labels(*labels).set(row["throttles"])
    Gauge(
        "unkai_async_events_pending",
        "Asynchronous invocations accepted and not finished (retries included).",
        registry=registry,
    ).set(async_pending)
    return generate_latest(registry)
