"""`QueueConfig`: a queue's settings, read from and shown as SQS's queue attributes.

One parser for every front door: the manifest's `resources.queues`, `unkai queues create`, and
the SQS API all hand over SQS attribute names with string values, and get SQS's error names
and limits back (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from unkai.errors import InvalidRequest

#: SQS: 1 to 80 letters, digits, '-' or '_'; a FIFO queue's name ends in ".fifo".
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
FIFO_SUFFIX = ".fifo"
#: SQS's current maximum message size (raised from 256 KiB in 2025).
MAX_MESSAGE_BYTES = 1024 * 1024

#: attribute -> (lowest, highest) for the integer attributes.
_RANGES: dict[str, tuple[int, int]] = {
    "DelaySeconds": (0, 900),
    "MaximumMessageSize": (1024, MAX_MESSAGE_BYTES),
    "MessageRetentionPeriod": (60, 1_209_600),
    "ReceiveMessageWaitTimeSeconds": (0, 20),
    "VisibilityTimeout": (0, 43_200),
}
_SETTABLE = {
    *_RANGES,
    "RedrivePolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "Policy",
}
#: Stored as given. DeduplicationScope is checked and acted on (`dedup_per_group`); the
#: others are accepted for compatibility and change nothing here.
_PASSED_THROUGH = (
    "DeduplicationScope",
    "FifoThroughputLimit",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "Policy",
)
READ_ONLY = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
)
ALL_ATTRIBUTES = (*sorted(_SETTABLE), *READ_ONLY)


@dataclass(frozen=True, slots=True)
class RedrivePolicy:
    dead_letter_queue: str
    max_receive_count: int


@dataclass(frozen=True, slots=True)
class QueueConfig:
    name: str
    fifo: bool = False
    content_based_deduplication: bool = False
    delay_s: int = 0
    maximum_message_size: int = MAX_MESSAGE_BYTES
    retention_s: int = 345_600
    receive_wait_s: int = 0
    visibility_timeout_s: int = 30
    redrive: RedrivePolicy | None = None
    created_ms: int = 0
    modified_ms: int = 0
    #: The compatibility attributes as given (see `_PASSED_THROUGH`).
    extra: tuple[tuple[str, str], ...] = ()

    def with_attributes(self, attributes: Mapping[str, str], now_ms: int) -> QueueConfig:
        """A copy with SQS `attributes` applied; raises InvalidRequest naming the attribute."""
        changes: dict[str, Any] = {}
        extra = dict(self.extra)
        for name, raw in attributes.items():
            if name not in _SETTABLE:
                raise InvalidRequest(
                    f"Unknown Attribute {name}.",
                    code="InvalidAttributeName",
                    hint=f"settable attributes: {', '.join(sorted(_SETTABLE))}",
                )
            value = str(raw)
            if name in _RANGES:
                changes[_FIELD[name]] = _integer(name, value)
            elif name == "RedrivePolicy":
                changes["redrive"] = _redrive(value) if value else None
            elif name == "FifoQueue":
                if _boolean(name, value) != self.fifo:
                    raise InvalidRequest(
                        "FifoQueue can only be set when a queue is created, and only as its "
                        "name says (a FIFO queue's name ends in .fifo)",
                        code="InvalidAttributeValue",
                    )
            elif name == "ContentBasedDeduplication":
                self._check_fifo_only(name)
                changes["content_based_deduplication"] = _boolean(name, value)
            elif name == "DeduplicationScope":
                self._check_fifo_only(name)
                if value not in ("queue", "messageGroup"):
                    raise InvalidRequest(
                        f"Invalid value for the parameter DeduplicationScope: {value!r} "
                        "(queue or messageGroup)",
                        code="InvalidAttributeValue",
                    )
                extra[name] = value
            else:
                extra[name] = value
        return replace(self, **changes, extra=tuple(sorted(extra.items())), modified_ms=now_ms)

    def _check_fifo_only(self, name: str) -> None:
        if not self.fifo:
            raise InvalidRequest(
                f"{name} is only valid for FIFO queues", code="InvalidAttributeName"
            )

    @property
    def dedup_per_group(self) -> bool:
        """DeduplicationScope messageGroup: a deduplication id counts within its group only."""
        return dict(self.extra).get("DeduplicationScope") == "messageGroup"

    def attributes(self, arn: str, dead_letter_arn: str | None) -> dict[str, str]:
        """The settable and static attributes as SQS shows them (counts come from the store)."""
        shown = {
            "QueueArn": arn,
            "CreatedTimestamp": str(self.created_ms // 1000),
            "LastModifiedTimestamp": str(self.modified_ms // 1000),
            "DelaySeconds": str(self.delay_s),
            "MaximumMessageSize": str(self.maximum_message_size),
            "MessageRetentionPeriod": str(self.retention_s),
            "ReceiveMessageWaitTimeSeconds": str(self.receive_wait_s),
            "VisibilityTimeout": str(self.visibility_timeout_s),
            **dict(self.extra),
        }
        if self.fifo:
            shown["FifoQueue"] = "true"
            shown["ContentBasedDeduplication"] = str(self.content_based_deduplication).lower()
        if self.redrive is not None and dead_letter_arn is not None:
            shown["RedrivePolicy"] = orjson.dumps(
                {
                    "deadLetterTargetArn": dead_letter_arn,
                    "maxReceiveCount": self.redrive.max_receive_count,
                }
            ).decode()
        return shown

    def to_doc(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fifo": self.fifo,
            "content_based_deduplication": self.content_based_deduplication,
            "delay_s": self.delay_s,
            "maximum_message_size": self.maximum_message_size,
            "retention_s": self.retention_s,
            "receive_wait_s": self.receive_wait_s,
            "visibility_timeout_s": self.visibility_timeout_s,
            "redrive": None
            if self.redrive is None
            else [self.redrive.dead_letter_queue, self.redrive.max_receive_count],
            "created_ms": self.created_ms,
            "modified_ms": self.modified_ms,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> QueueConfig:
        redrive = doc.get("redrive")
        return cls(
            **{
                **doc,
                "redrive": RedrivePolicy(redrive[0], redrive[1]) if redrive else None,
                "extra": tuple(sorted(doc.get("extra", {}).items())),
            }
        )


_FIELD = {
    "DelaySeconds": "delay_s",
    "MaximumMessageSize": "maximum_message_size",
    "MessageRetentionPeriod": "retention_s",
    "ReceiveMessageWaitTimeSeconds": "receive_wait_s",
    "VisibilityTimeout": "visibility_timeout_s",
}


def new_queue(name: str, attributes: Mapping[str, str], now_ms: int) -> QueueConfig:
    """The config of a queue created as `name` with `attributes`; raises InvalidRequest."""
    check_name(name)
    fifo = name.endswith(FIFO_SUFFIX)
    declared = attributes.get("FifoQueue")
    if declared is not None and _boolean("FifoQueue", str(declared)) != fifo:
        raise InvalidRequest(
            f"queue {name!r}: FifoQueue={declared} but a FIFO queue's name must end in "
            f"'{FIFO_SUFFIX}' and only a FIFO queue's name may",
            code="InvalidParameterValue",
        )
    if fifo and declared is None:
        raise InvalidRequest(
            f"queue {name!r}: a name ending in '{FIFO_SUFFIX}' needs FifoQueue=true",
            code="InvalidParameterValue",
        )
    base = QueueConfig(name, fifo=fifo, created_ms=now_ms)
    return base.with_attributes(attributes, now_ms)


def check_name(name: str) -> None:
    stem = name.removesuffix(FIFO_SUFFIX)
    if not NAME_PATTERN.match(stem) or len(name) > 80:
        raise InvalidRequest(
            f"queue name {name!r} is invalid: use 1 to 80 letters, digits, '-' or '_' "
            f"(a FIFO queue's name ends in '{FIFO_SUFFIX}', counted in the 80)",
            code="InvalidParameterValue",
        )


def queue_name_of(target: str) -> str:
    """A queue named by its name or its ARN (`arn:aws:sqs:region:account:name`)."""
    return target.rsplit(":", 1)[-1] if target.startswith("arn:") else target


def _integer(name: str, value: str) -> int:
    low, high = _RANGES[name]
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise InvalidRequest(
            f"Invalid value for the parameter {name}: {value!r} (an integer from {low} to {high})",
            code="InvalidAttributeValue",
        )
    return number


def _boolean(name: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise InvalidRequest(
            f"Invalid value for the parameter {name}: {value!r} (true or false)",
            code="InvalidAttributeValue",
        )
    return value.lower() == "true"


def _redrive(value: str) -> RedrivePolicy:
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        doc = None
    target = doc.get("deadLetterTargetArn") if isinstance(doc, dict) else None
    count = doc.get("maxReceiveCount") if isinstance(doc, dict) else None
    if isinstance(count, str) and count.isdigit():
        count = int(count)
    if not isinstance(target, str) or not isinstance(count, int) or not 1 <= count <= 1000:
        raise InvalidRequest(
            f"Value {value} for parameter RedrivePolicy is invalid. Reason: it must be a JSON "
            'object {"deadLetterTargetArn": "<queue arn or name>", "maxReceiveCount": 1 to 1000}',
            code="InvalidAttributeValue",
        )
    return RedrivePolicy(queue_name_of(target), count)


@dataclass(frozen=True, slots=True)
class QueueMappingConfig:
    """A queue -> function mapping as deployed (stored with the routes, method `SQS`)."""

    batch_size: int = 10
    maximum_batching_window_s: int = 0
    report_batch_item_failures: bool = False
    maximum_concurrency: int | None = None
    enabled: bool = True

    def to_doc(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "maximum_batching_window_s": self.maximum_batching_window_s,
            "report_batch_item_failures": self.report_batch_item_failures,
            "maximum_concurrency": self.maximum_concurrency,
            "enabled": self.enabled,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> QueueMappingConfig:
        return cls(**doc)
