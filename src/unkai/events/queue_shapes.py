"""SQS's response shapes (SendMessage, ReceiveMessage, the batch answers), written once for
the SQS endpoint and the control API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from unkai.events import message_attributes
from unkai.events.queue_messages import Message, Sent
from unkai.events.queue_requests import EntryError


def sent_shape(sent: Sent) -> dict[str, Any]:
    """SendMessage's result; the digests and sequence number only where SQS gives them."""
    shaped = {"MessageId": sent.message_id, "MD5OfMessageBody": sent.md5_of_body}
    if sent.md5_of_attributes is not None:
        shaped["MD5OfMessageAttributes"] = sent.md5_of_attributes
    if sent.sequence_number is not None:
        shaped["SequenceNumber"] = sent.sequence_number
    return shaped


def message_shape(
    message: Message,
    fifo: bool,
    system: Sequence[str] = ("All",),
    wanted: Sequence[str] = ("All",),
) -> dict[str, Any]:
    """A message as ReceiveMessage shows it: the system attributes named in `system`
    (AttributeNames) and the message attributes named in `wanted` (MessageAttributeNames:
    names, `All` or `.*`, or prefixes such as `bar.*`), whose digest covers those shown."""
    shaped: dict[str, Any] = {
        "MessageId": message.message_id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": message.md5_of_body,
        "Body": message.body,
    }
    if system:
        attributes = message.system_attributes(fifo)
        if "All" not in system:
            attributes = {k: v for k, v in attributes.items() if k in system}
        shaped["Attributes"] = attributes
    chosen = _chosen_attributes(message, wanted)
    if chosen:
        shaped["MessageAttributes"] = message_attributes.api_shape(chosen)
        shaped["MD5OfMessageAttributes"] = message_attributes.md5_of_attributes(chosen)
    return shaped


def entry_error_shape(error: EntryError) -> dict[str, Any]:
    return {
        "Id": error.id,
        "Code": error.code,
        "Message": error.message,
        "SenderFault": error.sender_fault,
    }


def batch_result(
    ids: Sequence[str], outcomes: Sequence[dict[str, Any] | EntryError]
) -> dict[str, Any]:
    """SQS's batch answer: the entries that worked and the ones that failed on their own."""
    successful = [
        {"Id": entry_id, **outcome}
        for entry_id, outcome in zip(ids, outcomes, strict=True)
        if not isinstance(outcome, EntryError)
    ]
    failed = [entry_error_shape(o) for o in outcomes if isinstance(o, EntryError)]
    return {"Successful": successful, "Failed": failed}


def _chosen_attributes(m: Message, wanted: Sequence[str]) -> message_attributes.Attributes:
    """MessageAttributeNames: names, `All` or `.*`, or prefixes such as `bar.*`."""
    if not wanted or not m.attributes:
        return {}
    if "All" in wanted or ".*" in wanted:
        return m.attributes
    exact = {w for w in wanted if not w.endswith(".*")}
    prefixes = tuple(w[:-1] for w in wanted if w.endswith(".*"))
    return {
        k: v for k, v in m.attributes.items() if k in exact or (prefixes and k.startswith(prefixes))
    }
