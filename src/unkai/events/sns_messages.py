"""SNS's message shapes and a published message's stored state: what a publish stores (one
`sns_message` document with the deliveries it still owes) and what each protocol receives
(the JSON notification for queues and HTTP, the Lambda event for functions)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from unkai.errors import InvalidRequest
from unkai.events import message_attributes
from unkai.events.message_attributes import Attributes


@dataclass(frozen=True, slots=True)
class PublishEntry:
    message: str
    subject: str | None = None
    attributes: Mapping[str, Any] | None = None
    #: "json": `message` is a JSON object of per-protocol messages with a "default".
    structure: str | None = None
    id: str = "0"


@dataclass(slots=True)
class Delivery:
    subscription: str
    attempts: int = 0
    due_ms: int = 0
    error: str = ""


@dataclass(slots=True)
class PendingMessage:
    """A published message and the deliveries it still owes (one `sns_message` document)."""

    message_id: str
    topic: str
    message: str
    #: Per-protocol messages of a MessageStructure=json publish.
    structured: dict[str, str] | None
    subject: str | None
    attributes: Attributes
    timestamp: str
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    #: False while only the deliveries are held in memory: the message, its subject and
    #: attributes are then in the stored document alone (`load` brings them back).
    loaded: bool = True

    def content_size(self) -> int:
        """About what the message's content holds in memory, in characters."""
        size = len(self.message) + len(self.subject or "")
        size += sum(len(v) for v in (self.structured or {}).values())
        return size + sum(len(k) + len(str(v)) for k, v in self.attributes.items())

    def unload(self) -> None:
        """Drop the content from memory; the deliveries and their state stay."""
        self.message, self.structured, self.subject, self.attributes = "", None, None, {}
        self.loaded = False

    def load(self, doc: Mapping[str, Any]) -> None:
        """Take the content back from the message's stored document."""
        stored = PendingMessage.from_doc(doc)
        self.message, self.structured = stored.message, stored.structured
        self.subject, self.attributes = stored.subject, stored.attributes
        self.loaded = True

    def to_doc(self) -> dict[str, Any]:
        if not self.loaded:
            raise RuntimeError(f"message {self.message_id}: its content is not loaded")
        return {
            "message_id": self.message_id,
            "topic": self.topic,
            "message": self.message,
            "structured": self.structured,
            "subject": self.subject,
            "attributes": self.attributes,
            "timestamp": self.timestamp,
            "deliveries": [
                [d.subscription, d.attempts, d.due_ms, d.error] for d in self.deliveries.values()
            ],
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> PendingMessage:
        pending = cls(
            doc["message_id"],
            doc["topic"],
            doc["message"],
            doc.get("structured"),
            doc.get("subject"),
            {k: (v[0], v[1]) for k, v in doc.get("attributes", {}).items()},
            doc["timestamp"],
        )
        for sub, attempts, due_ms, error in doc["deliveries"]:
            pending.deliveries[sub] = Delivery(sub, attempts, due_ms, error)
        return pending


def parse_structured(entry: PublishEntry) -> dict[str, str]:
    try:
        doc = orjson.loads(entry.message)
    except orjson.JSONDecodeError:
        doc = None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("default"), str)
        or not all(isinstance(v, str) for v in doc.values())
    ):
        raise InvalidRequest(
            "Invalid parameter: Message Structure - JSON message body must be an object of "
            'strings with a "default" key',
            code="InvalidParameter",
        )
    return doc


def message_for(pending: PendingMessage, protocol: str) -> str:
    if pending.structured is None:
        return pending.message
    return pending.structured.get(protocol, pending.structured["default"])


def timestamp(ms: int) -> str:
    return (
        dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def envelope(pending: PendingMessage, topic_arn: str, message: str) -> dict[str, Any]:
    """The JSON notification SNS delivers to queues and HTTP endpoints."""
    doc: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": pending.message_id,
        "TopicArn": topic_arn,
    }
    if pending.subject is not None:
        doc["Subject"] = pending.subject
    doc.update(
        {
            "Message": message,
            "Timestamp": pending.timestamp,
            "SignatureVersion": "1",
            "Signature": "",
            "SigningCertURL": "",
            "UnsubscribeURL": "",
        }
    )
    if pending.attributes:
        doc["MessageAttributes"] = message_attributes.sns_shape(pending.attributes)
    return doc


def lambda_event(
    pending: PendingMessage, topic_arn: str, subscription_arn: str, message: str
) -> bytes:
    """SNS's Lambda event (https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html)."""
    return orjson.dumps(
        {
            "Records": [
                {
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": subscription_arn,
                    "EventSource": "aws:sns",
                    "Sns": {
                        "SignatureVersion": "1",
                        "Timestamp": pending.timestamp,
                        "Signature": "",
                        "SigningCertUrl": "",
                        "MessageId": pending.message_id,
                        "Message": message,
                        "MessageAttributes": message_attributes.sns_shape(pending.attributes),
                        "Type": "Notification",
                        "UnsubscribeUrl": "",
                        "TopicArn": topic_arn,
                        "Subject": pending.subject,
                    },
                }
            ]
        }
    )
