"""boto3's SQS client, unchanged but for `endpoint_url`, against the platform's SQS JSON
protocol: the operations, their answers, and the error codes and exception classes boto3
users catch."""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.platform_process import PlatformProcess

_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"api-{prefix}-{next(_names)}"


def test_queue_lifecycle_and_listing(sqs: Any, platform: PlatformProcess) -> None:
    name = unique("life")
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
    assert url == f"{platform.url}/000000000000/{name}"
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    assert url in sqs.list_queues(QueueNamePrefix="api-life")["QueueUrls"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "2"})
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds", "QueueArn"])
    assert attrs["Attributes"] == {
        "DelaySeconds": "2",
        "QueueArn": f"arn:aws:sqs:us-east-1:000000000000:{name}",
    }
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as caught:
        sqs.get_queue_url(QueueName=name)
    assert caught.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


def test_messages_batches_visibility_and_attribute_selection(sqs: Any) -> None:
    url = sqs.create_queue(QueueName=unique("msgs"))["QueueUrl"]
    sent = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {
                "Id": "a",
                "MessageBody": "alpha",
                "MessageAttributes": {
                    "trace.id": {"DataType": "String", "StringValue": "t-1"},
                    "size": {"DataType": "Number", "StringValue": "3"},
                },
            },
            {"Id": "b", "MessageBody": "beta"},
            {"Id": "c", "MessageBody": "gamma", "DelaySeconds": 901},
        ],
    )
    assert [s["Id"] for s in sent["Successful"]] == ["a", "b"]
    assert sent["Successful"][0]["MD5OfMessageBody"] == hashlib.md5(b"alpha").hexdigest()
    [failed] = sent["Failed"]
    assert failed["Id"] == "c" and failed["Code"] == "InvalidParameterValue"
    assert failed["SenderFault"] is True

    got = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["trace.*"],
        MessageSystemAttributeNames=["ApproximateReceiveCount"],
    )["Messages"]
    alpha = next(m for m in got if m["Body"] == "alpha")
    assert alpha["MessageAttributes"] == {"trace.id": {"StringValue": "t-1", "DataType": "String"}}
    assert alpha["Attributes"] == {"ApproximateReceiveCount": "1"}
    # The digest covers the attributes returned
    encoded = (
        b"".join(len(part).to_bytes(4, "big") + part for part in (b"trace.id", b"String"))
        + b"\x01"
        + len(b"t-1").to_bytes(4, "big")
        + b"t-1"
    )
    assert alpha["MD5OfMessageAttributes"] == hashlib.md5(encoded).hexdigest()

    changed = sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "x", "ReceiptHandle": got[0]["ReceiptHandle"], "VisibilityTimeout": 0},
            {"Id": "y", "ReceiptHandle": "not-a-receipt", "VisibilityTimeout": 0},
        ],
    )
    assert [s["Id"] for s in changed["Successful"]] == ["x"]
    assert changed["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["MessageId"] for m in again] == [got[0]["MessageId"]]
    deleted = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(again)]
        + [{"Id": "z", "ReceiptHandle": got[1]["ReceiptHandle"]}],
    )
    assert len(deleted["Successful"]) == 2
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []


def test_whole_request_errors_carry_sqs_codes(sqs: Any) -> None:
    url = sqs.create_queue(QueueName=unique("errors"))["QueueUrl"]

    def code(call: Any, **kwargs: Any) -> str:
        with pytest.raises(ClientError) as caught:
            call(QueueUrl=url, **kwargs)
        return str(caught.value.response["Error"]["Code"])

    entries = [{"Id": str(i), "MessageBody": "x"} for i in range(11)]
    assert code(sqs.send_message_batch, Entries=entries).endswith("TooManyEntriesInBatchRequest")
    assert code(sqs.send_message_batch, Entries=[{"Id": "a", "MessageBody": "x"}] * 2).endswith(
        "BatchEntryIdsNotDistinct"
    )
    assert code(sqs.receive_message, MaxNumberOfMessages=11) == "InvalidParameterValue"
    assert code(sqs.send_message, MessageBody="x" * (1024 * 1024 + 1)) == "InvalidParameterValue"
    assert code(sqs.delete_message, ReceiptHandle="garbage") == "ReceiptHandleIsInvalid"
    sqs.purge_queue(QueueUrl=url)
    assert code(sqs.purge_queue).endswith("PurgeQueueInProgress")
    assert code(sqs.set_queue_attributes, Attributes={"VisibilityTimeout": "99999"}) == (
        "InvalidAttributeValue"
    )


def test_dead_letter_sources_and_message_move_task(sqs: Any) -> None:
    dlq_name = unique("dlq")
    dlq = sqs.create_queue(QueueName=dlq_name)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    source = sqs.create_queue(
        QueueName=unique("src"), Attributes={"RedrivePolicy": policy, "VisibilityTimeout": "0"}
    )["QueueUrl"]
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [source]
    sqs.send_message(QueueUrl=source, MessageBody="fails")
    assert len(sqs.receive_message(QueueUrl=source)["Messages"]) == 1
    # The next receive moves it (received once already, maxReceiveCount 1)
    assert sqs.receive_message(QueueUrl=source).get("Messages", []) == []
    assert (
        sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "1"
    )
    assert sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    back = sqs.receive_message(QueueUrl=source, AttributeNames=["All"])["Messages"]
    assert back[0]["Body"] == "fails" and back[0]["Attributes"]["ApproximateReceiveCount"] == "1"


def test_fifo_sequence_numbers_and_deduplication(sqs: Any) -> None:
    url = sqs.create_queue(
        QueueName=unique("order") + ".fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    first = sqs.send_message(QueueUrl=url, MessageBody="one", MessageGroupId="g")
    second = sqs.send_message(QueueUrl=url, MessageBody="two", MessageGroupId="g")
    duplicate = sqs.send_message(QueueUrl=url, MessageBody="one", MessageGroupId="g")
    assert int(first["SequenceNumber"]) < int(second["SequenceNumber"])
    assert duplicate["MessageId"] == first["MessageId"]
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])[
        "Messages"
    ]
    assert [m["Body"] for m in got] == ["one", "two"]
    assert got[0]["Attributes"]["MessageGroupId"] == "g"
    with pytest.raises(ClientError) as caught:
        sqs.send_message(QueueUrl=url, MessageBody="no group")
    assert caught.value.response["Error"]["Code"] == "MissingParameter"


def test_deduplication_scope_message_group(sqs: Any) -> None:
    # Given a FIFO queue whose deduplication ids count within a message group
    url = sqs.create_queue(
        QueueName=unique("scoped") + ".fifo",
        Attributes={
            "FifoQueue": "true",
            "ContentBasedDeduplication": "true",
            "DeduplicationScope": "messageGroup",
        },
    )["QueueUrl"]
    # When the same body goes to two groups, and again to the first
    a = sqs.send_message(QueueUrl=url, MessageBody="ping", MessageGroupId="tenant-a")
    b = sqs.send_message(QueueUrl=url, MessageBody="ping", MessageGroupId="tenant-b")
    again = sqs.send_message(QueueUrl=url, MessageBody="ping", MessageGroupId="tenant-a")
    # Then each group has its message, and the repeat within a group is a duplicate
    assert a["MessageId"] != b["MessageId"] and again["MessageId"] == a["MessageId"]
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])
    assert sorted(m["Attributes"]["MessageGroupId"] for m in got["Messages"]) == [
        "tenant-a",
        "tenant-b",
    ]
    # And the scope is a FIFO setting with two values
    for name, attributes, code in (
        (unique("std"), {"DeduplicationScope": "queue"}, "InvalidAttributeName"),
        (
            unique("bad") + ".fifo",
            {"FifoQueue": "true", "DeduplicationScope": "everywhere"},
            "InvalidAttributeValue",
        ),
    ):
        with pytest.raises(ClientError) as caught:
            sqs.create_queue(QueueName=name, Attributes=attributes)
        assert caught.value.response["Error"]["Code"] == code
