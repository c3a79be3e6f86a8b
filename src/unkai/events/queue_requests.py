"""What an SQS request carries, checked once for every front door: the members' types,
batch rules, message bodies, group and deduplication ids, and the numbers' limits, with SQS's
error names (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html).

The readers (`text`, `required_text`, `integer`, `string_list`, `string_map`, `entries`,
`entry_id`) take a request's members in the JSON protocol's shape, which the query protocol
is translated to, so a member of the wrong type (`{"QueueNamePrefix": 5}`,
`MessageAttributeName.1.x=y`) is SQS's 400 in either protocol, found before the operation
changes anything, and never an exception the operation did not expect."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from unkai.config.queue_config import MAX_MESSAGE_BYTES, QueueConfig
from unkai.errors import InvalidRequest
from unkai.events import message_attributes
from unkai.events.message_attributes import Attributes

#: A request's members, in the JSON protocol's shape.
Params = Mapping[str, Any]
MAX_BATCH_ENTRIES = 10
_ENTRY_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
#: MessageGroupId and MessageDeduplicationId: 1 to 128 letters, digits and punctuation.
_FIFO_ID = re.compile(r"^[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}$")
MAX_DELAY_S = 900
MAX_VISIBILITY_S = 43_200
MAX_WAIT_S = 20


@dataclass(frozen=True, slots=True)
class SendEntry:
    """One message of a SendMessage or SendMessageBatch request, as the client wrote it."""

    body: str
    attributes: Mapping[str, Any] | None = None
    delay_s: int | None = None
    group_id: str | None = None
    dedup_id: str | None = None
    #: The batch entry's Id ("0" for a single send).
    id: str = "0"


@dataclass(frozen=True, slots=True)
class CheckedSend:
    """A send entry that passed every check, ready for the store."""

    id: str
    body: str
    attributes: Attributes
    delay_s: int
    group_id: str | None
    dedup_id: str | None


@dataclass(frozen=True, slots=True)
class EntryError:
    """A batch entry that failed on its own (the others still count)."""

    id: str
    code: str
    message: str
    sender_fault: bool = True

    @classmethod
    def of(cls, entry_id: str, error: InvalidRequest) -> EntryError:
        return cls(entry_id, error.code, error.message)


def text(p: Params, name: str) -> str | None:
    """An optional string member; raises InvalidParameterValue when it is of another type."""
    value = p.get(name)
    if value is None or isinstance(value, str):
        return value
    raise _wrong_type(name, value, "a string")


def required_text(p: Params, name: str) -> str:
    """A required string member; raises MissingParameter when it is absent or empty, and
    InvalidParameterValue when it is of another type."""
    value = text(p, name)
    if not value:
        raise _missing(name)
    return value


def integer(p: Params, name: str) -> int | None:
    """An optional integer member (not a boolean, which JSON keeps apart); raises
    InvalidParameterValue when it is of another type. Its range is the operation's to check."""
    value = p.get(name)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise _wrong_type(name, value, "an integer")


def required_integer(p: Params, name: str) -> int:
    """A required integer member; raises MissingParameter or InvalidParameterValue."""
    value = integer(p, name)
    if value is None:
        raise _missing(name)
    return value


def string_list(p: Params, name: str) -> list[str]:
    """An optional list of strings (AttributeNames, MessageAttributeNames), empty when absent;
    raises InvalidParameterValue for anything else."""
    value = p.get(name)
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise _wrong_type(name, value, "a list of strings")


def string_map(p: Params, name: str) -> dict[str, str]:
    """An optional map of strings to strings (a queue's Attributes), empty when absent; raises
    InvalidParameterValue for anything else (SQS takes every attribute value as a string)."""
    value = p.get(name)
    if value is None:
        return {}
    if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return value
    raise _wrong_type(name, value, "a map of strings to strings")


def entries(p: Params) -> list[dict[str, Any]]:
    """A batch request's Entries (a list of objects); raises MissingParameter otherwise."""
    value = p.get("Entries")
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise InvalidRequest(
            "The request must contain the parameter Entries (a list of objects).",
            code="MissingParameter",
        )
    return value


def entry_id(entry: Params) -> str:
    """A batch entry's Id ("" when absent, which `check_batch` refuses); raises
    InvalidBatchEntryId when it is not a string."""
    value = entry.get("Id", "")
    if not isinstance(value, str):
        raise InvalidRequest(
            f"A batch entry id must be a string, got {_shown(value)}", code="InvalidBatchEntryId"
        )
    return value


def _missing(name: str) -> InvalidRequest:
    return InvalidRequest(
        f"The request must contain the parameter {name}.", code="MissingParameter"
    )


def _wrong_type(name: str, value: object, kind: str) -> InvalidRequest:
    return InvalidRequest(
        f"Value {_shown(value)} for parameter {name} is invalid. Reason: it must be {kind}.",
        code="InvalidParameterValue",
    )


def _shown(value: object, limit: int = 80) -> str:
    """`value` for an error message, cut to `limit` characters (a client's mistake can be long)."""
    shown = repr(value)
    return shown if len(shown) <= limit else f"{shown[: limit - 3]}..."


def check_batch(ids: Sequence[str], action: str) -> None:
    """SQS's batch rules; they fail the whole request."""
    if not ids:
        raise InvalidRequest(
            f"There should be at least one {action}RequestEntry in the request.",
            code="EmptyBatchRequest",
        )
    if len(ids) > MAX_BATCH_ENTRIES:
        raise InvalidRequest(
            f"Maximum number of entries per request are {MAX_BATCH_ENTRIES}. You have sent "
            f"{len(ids)}.",
            code="TooManyEntriesInBatchRequest",
        )
    for entry_id in ids:
        if not isinstance(entry_id, str) or not _ENTRY_ID.match(entry_id):
            raise InvalidRequest(
                f"A batch entry id can only contain alphanumeric characters, hyphens and "
                f"underscores. It can be at most 80 letters long: {entry_id!r}",
                code="InvalidBatchEntryId",
            )
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise InvalidRequest(
            f"Id {duplicate} repeated.",
            code="BatchEntryIdsNotDistinct",
        )


def check_send(queue: QueueConfig, entry: SendEntry) -> CheckedSend:
    """Raises InvalidRequest naming the entry, the parameter and the limit."""
    where = f"queue {queue.name!r}, message {entry.id!r}"
    if not isinstance(entry.body, str) or entry.body == "":
        raise InvalidRequest(
            f"{where}: the request must contain the parameter MessageBody (at least one character)",
            code="MissingParameter",
        )
    message_attributes.check_text(entry.body, f"{where}: MessageBody")
    attributes = message_attributes.parse(entry.attributes, where)
    size = len(entry.body.encode()) + message_attributes.size(attributes)
    if size > queue.maximum_message_size:
        raise InvalidRequest(
            f"{where}: One or more parameters are invalid. Reason: Message must be shorter "
            f"than {queue.maximum_message_size} bytes (body and attributes are {size} bytes).",
            code="InvalidParameterValue",
        )
    if queue.fifo:
        return _check_fifo(queue, entry, attributes, where)
    if entry.dedup_id is not None:
        raise InvalidRequest(
            f"{where}: The request includes parameter MessageDeduplicationId that is not "
            "valid for this queue type (it is for FIFO queues)",
            code="InvalidParameterValue",
        )
    delay = queue.delay_s if entry.delay_s is None else entry.delay_s
    check_range(where, "DelaySeconds", delay, 0, MAX_DELAY_S)
    if entry.group_id is not None:
        _check_fifo_id(where, "MessageGroupId", entry.group_id)
    return CheckedSend(entry.id, entry.body, attributes, delay, None, None)


def check_batch_size(entries: Sequence[SendEntry]) -> None:
    """The batch's total size; an entry with malformed attributes counts its body only (it
    fails on its own later), so it cannot hide the rest of the batch's size."""
    total = sum(len(e.body.encode()) for e in entries if isinstance(e.body, str))
    for e in entries:
        try:
            total += message_attributes.size(
                message_attributes.parse(e.attributes, f"message {e.id!r}")
            )
        except InvalidRequest:
            continue
    if total > MAX_MESSAGE_BYTES:
        raise InvalidRequest(
            f"Batch requests cannot be longer than {MAX_MESSAGE_BYTES} bytes. You have sent "
            f"{total} bytes.",
            code="BatchRequestTooLong",
        )


def check_range(where: str, name: str, value: object, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidRequest(
            f"{where}: Value {value} for parameter {name} is invalid. Reason: Must be between "
            f"{low} and {high}, if provided.",
            code="InvalidParameterValue",
        )
    return value


def _check_fifo(
    queue: QueueConfig, entry: SendEntry, attributes: Attributes, where: str
) -> CheckedSend:
    if entry.delay_s is not None and entry.delay_s != 0:
        raise InvalidRequest(
            f"{where}: Value {entry.delay_s} for parameter DelaySeconds is invalid. Reason: "
            "The request include parameter that is not valid for this queue type (a FIFO "
            "queue's delay is set on the queue).",
            code="InvalidParameterValue",
        )
    if entry.group_id is None:
        raise InvalidRequest(
            f"{where}: The request must contain the parameter MessageGroupId.",
            code="MissingParameter",
        )
    _check_fifo_id(where, "MessageGroupId", entry.group_id)
    dedup = entry.dedup_id
    if dedup is None:
        if not queue.content_based_deduplication:
            raise InvalidRequest(
                f"{where}: The queue should either have ContentBasedDeduplication enabled or "
                "MessageDeduplicationId provided explicitly",
                code="InvalidParameterValue",
            )
        dedup = hashlib.sha256(entry.body.encode()).hexdigest()
    else:
        _check_fifo_id(where, "MessageDeduplicationId", dedup)
    return CheckedSend(entry.id, entry.body, attributes, queue.delay_s, entry.group_id, dedup)


def _check_fifo_id(where: str, name: str, value: object) -> None:
    if not isinstance(value, str) or not _FIFO_ID.match(value):
        raise InvalidRequest(
            f"{where}: Value {value!r} for parameter {name} is invalid. Reason: 1 to 128 "
            "letters, digits or punctuation.",
            code="InvalidParameterValue",
        )
