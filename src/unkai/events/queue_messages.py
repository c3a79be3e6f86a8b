"""What the queue service hands out for messages: `Sent` and `Message` with SQS's fields, and
the message ids and receipt checks of its hot path."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from unkai.backends.base import QueuedMessage
from unkai.errors import InvalidRequest
from unkai.events import message_attributes
from unkai.events.message_attributes import Attributes

_RECEIPT = re.compile(r"^\d{1,19}:[0-9a-f]{18}$")


@dataclass(frozen=True, slots=True)
class Sent:
    id: str
    message_id: str
    md5_of_body: str
    md5_of_attributes: str | None
    #: FIFO queues only.
    sequence_number: str | None


@dataclass(frozen=True, slots=True)
class Message:
    """A received message with everything SQS and the Lambda event show of it."""

    message_id: str
    receipt_handle: str
    body: str
    md5_of_body: str
    attributes: Attributes
    md5_of_attributes: str | None
    sent_ms: int
    receive_count: int
    first_receive_ms: int
    sequence: int
    group_id: str | None
    dedup_id: str | None

    def system_attributes(self, fifo: bool) -> dict[str, str]:
        shown = {
            "ApproximateReceiveCount": str(self.receive_count),
            "SentTimestamp": str(self.sent_ms),
            "SenderId": "unkai",
            "ApproximateFirstReceiveTimestamp": str(self.first_receive_ms),
        }
        if fifo:
            shown["SequenceNumber"] = str(self.sequence)
            shown["MessageGroupId"] = self.group_id or ""
            shown["MessageDeduplicationId"] = self.dedup_id or ""
        return shown


def message_of(m: QueuedMessage) -> Message:
    body = m.body.decode()
    attributes: Attributes = (
        {k: (v[0], v[1]) for k, v in orjson.loads(m.attributes).items()} if m.attributes else {}
    )
    return Message(
        m.message_id,
        m.receipt,
        body,
        message_attributes.md5_of_body(body),
        attributes,
        message_attributes.md5_of_attributes(attributes),
        m.sent_ms,
        m.receive_count,
        m.first_receive_ms,
        m.sequence,
        m.group_id,
        m.dedup_id,
    )


def message_ids(count: int) -> Iterator[str]:
    """`count` random (version 4) UUIDs from one system call, formatted directly
    (`uuid.UUID` costs several microseconds per id, on the send path of every message)."""
    raw = bytearray(os.urandom(16 * count))
    for start in range(0, 16 * count, 16):
        raw[start + 6] = (raw[start + 6] & 0x0F) | 0x40  # version 4
        raw[start + 8] = (raw[start + 8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.hex()
    for start in range(0, 32 * count, 32):
        h = text[start : start + 32]
        yield f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def check_receipt(receipt: object) -> InvalidRequest | None:
    if (
        isinstance(receipt, str)
        and _RECEIPT.match(receipt)
        and int(receipt.partition(":")[0]) < 2**63  # a row id SQLite can hold
    ):
        return None
    return InvalidRequest(
        f"The input receipt handle {receipt!r} is not a valid receipt handle.",
        code="ReceiptHandleIsInvalid",
    )
