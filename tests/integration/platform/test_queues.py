"""Queues through the real platform's control API and CLI: attributes, sends and batches,
size limits, visibility and redelivery, delays, long polling, dead-letter queues and redrive,
FIFO order and deduplication, purge, and message attributes with SQS's MD5 digest.

Queues are platform-wide (not per stage), so every test names its own with `unique`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.platform_process import PlatformProcess

API = "/_unkai/api/queues"
MiB = 1024 * 1024


@pytest.fixture
def http(platform: PlatformProcess) -> Iterator[httpx.Client]:
    with platform.client() as client:
        yield client


def unique(prefix: str, fifo: bool = False) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}" + (".fifo" if fifo else "")


def create(http: httpx.Client, name: str, **attributes: Any) -> dict[str, Any]:
    if name.endswith(".fifo"):
        attributes.setdefault("FifoQueue", "true")
    response = http.post(API, json={"name": name, "attributes": attributes})
    assert response.status_code == 201, response.text
    return dict(response.json())


def attributes_of(http: httpx.Client, name: str) -> dict[str, str]:
    response = http.get(f"{API}/{name}")
    assert response.status_code == 200, response.text
    return dict(response.json()["attributes"])


def send(http: httpx.Client, name: str, body: str, **fields: Any) -> dict[str, Any]:
    response = http.post(f"{API}/{name}/messages", json={"MessageBody": body, **fields})
    assert response.status_code == 200, response.text
    return dict(response.json())


def receive(http: httpx.Client, name: str, **fields: Any) -> list[dict[str, Any]]:
    response = http.post(f"{API}/{name}/messages/receive", json=fields)
    assert response.status_code == 200, response.text
    return list(response.json()["Messages"])


def delete(http: httpx.Client, name: str, message: dict[str, Any]) -> None:
    receipt = {"ReceiptHandle": message["ReceiptHandle"]}
    response = http.post(f"{API}/{name}/messages/delete", json=receipt)
    assert response.status_code == 200, response.text


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


def md5_of_attributes(attributes: dict[str, dict[str, str]]) -> str:
    """AWS's MD5OfMessageAttributes, written here from the SQS developer guide, not imported."""
    digest = hashlib.md5(usedforsecurity=False)

    def field(raw: bytes) -> None:
        digest.update(struct.pack(">I", len(raw)) + raw)

    for name in sorted(attributes):
        value = attributes[name]
        field(name.encode())
        field(value["DataType"].encode())
        if value["DataType"].startswith("Binary"):
            digest.update(b"\x02")
            field(base64.b64decode(value["BinaryValue"]))
        else:
            digest.update(b"\x01")
            field(value["StringValue"].encode())
    return digest.hexdigest()


def test_create_show_change_and_delete_a_queue(http: httpx.Client) -> None:
    # Given a new queue with a visibility timeout
    name = unique("attrs")
    created = create(http, name, VisibilityTimeout=5)
    assert created["name"] == name and created["arn"].endswith(f":{name}")
    # Then its attributes show SQS's names, defaults and counts
    shown = attributes_of(http, name)
    assert shown["VisibilityTimeout"] == "5"
    assert shown["QueueArn"] == created["arn"]
    assert shown["MaximumMessageSize"] == str(MiB)
    assert shown["ApproximateNumberOfMessages"] == "0"
    # The same create again is a no-op; a different value is a conflict
    assert http.post(API, json={"name": name, "attributes": {"VisibilityTimeout": "5"}}).is_success
    again = http.post(API, json={"name": name, "attributes": {"VisibilityTimeout": "6"}})
    assert error_of(again) == (409, "QueueNameExists")
    # When attributes change, they show the new values
    changed = http.patch(f"{API}/{name}", json={"attributes": {"DelaySeconds": 3}})
    assert changed.status_code == 200 and changed.json()["attributes"]["DelaySeconds"] == "3"
    only = http.get(f"{API}/{name}", params={"attribute": "DelaySeconds"}).json()["attributes"]
    assert only == {"DelaySeconds": "3"}
    bad = http.patch(f"{API}/{name}", json={"attributes": {"DelaySeconds": "901"}})
    assert error_of(bad) == (400, "InvalidAttributeValue")
    unknown = http.patch(f"{API}/{name}", json={"attributes": {"Colour": "blue"}})
    assert error_of(unknown) == (400, "InvalidAttributeName")
    # When it is deleted, it is gone
    assert http.delete(f"{API}/{name}").json() == {"deleted": name}
    assert error_of(http.get(f"{API}/{name}")) == (404, "QueueDoesNotExist")
    assert name not in [q["name"] for q in http.get(API).json()["queues"]]


def test_bad_requests_answer_400_naming_the_problem(http: httpx.Client) -> None:
    name = unique("bad")
    create(http, name)
    not_json = http.post(API, content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and "JSON object" in not_json.json()["message"]
    no_name = http.post(API, json={"attributes": {}})
    assert error_of(no_name) == (400, "MissingParameter") and "name" in no_name.json()["message"]
    no_body = http.post(f"{API}/{name}/messages", json={"DelaySeconds": 1})
    assert error_of(no_body) == (400, "MissingParameter")
    assert "MessageBody" in no_body.json()["message"]
    typo = http.post(f"{API}/{name}/messages", json={"MessageBody": "x", "DelaySecond": 1})
    assert error_of(typo) == (400, "InvalidParameterValue") and "DelaySecond" in typo.text
    no_receipt = http.post(f"{API}/{name}/messages/delete", json={})
    assert error_of(no_receipt) == (400, "MissingParameter")
    bad_receipt = http.post(f"{API}/{name}/messages/delete", json={"ReceiptHandle": "x"})
    assert error_of(bad_receipt) == (400, "ReceiptHandleIsInvalid")
    too_many = http.post(f"{API}/{name}/messages/receive", json={"MaxNumberOfMessages": 11})
    assert error_of(too_many) == (400, "InvalidParameterValue")
    bad_attributes = http.post(
        f"{API}/{name}/messages", json={"MessageBody": "x", "MessageAttributes": ["a"]}
    )
    assert error_of(bad_attributes) == (400, "InvalidParameterValue")


def test_an_unknown_queue_is_404_queue_does_not_exist_with_a_hint(http: httpx.Client) -> None:
    name = unique("missing")
    for response in (
        http.get(f"{API}/{name}"),
        http.post(f"{API}/{name}/messages", json={"MessageBody": "x"}),
        http.post(f"{API}/{name}/messages/receive", json={}),
        http.delete(f"{API}/{name}"),
    ):
        body = response.json()
        assert error_of(response) == (404, "QueueDoesNotExist")
        assert body["error"] == "QueueDoesNotExist" and name in body["message"]
        assert body["hint"] == "list them: unkai queues ls"


def test_send_receive_and_delete(http: httpx.Client) -> None:
    # Given a message sent
    name = unique("basic")
    create(http, name)
    sent = send(http, name, "hello queue")
    assert sent["MD5OfMessageBody"] == hashlib.md5(b"hello queue").hexdigest()
    assert "SequenceNumber" not in sent and "MD5OfMessageAttributes" not in sent
    # When it is received, it carries its id, digest, receipt and system attributes
    (message,) = receive(http, name, MaxNumberOfMessages=10)
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == "hello queue"
    assert message["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert "MessageAttributes" not in message  # SQS leaves it out when there are none
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    assert int(message["Attributes"]["SentTimestamp"]) > 0
    assert attributes_of(http, name)["ApproximateNumberOfMessagesNotVisible"] == "1"
    # Then, deleted, it is gone for good, and deleting it again is no error
    delete(http, name, message)
    delete(http, name, message)
    assert receive(http, name, VisibilityTimeout=0) == []
    shown = attributes_of(http, name)
    assert shown["ApproximateNumberOfMessages"] == "0"
    assert shown["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_a_batch_with_one_bad_entry_fails_that_entry_alone(http: httpx.Client) -> None:
    name = unique("batch")
    create(http, name)
    entries = [
        {"Id": "a", "MessageBody": "first"},
        {"Id": "b", "MessageBody": "second", "DelaySeconds": 901},
        {"Id": "c", "MessageBody": "third"},
    ]
    response = http.post(f"{API}/{name}/messages", json={"Entries": entries})
    assert response.status_code == 200, response.text
    result = response.json()
    assert [s["Id"] for s in result["Successful"]] == ["a", "c"]
    assert all(s["MD5OfMessageBody"] for s in result["Successful"])
    (failed,) = result["Failed"]
    assert (failed["Id"], failed["Code"], failed["SenderFault"]) == (
        "b",
        "InvalidParameterValue",
        True,
    )
    assert "DelaySeconds" in failed["Message"]
    bodies = sorted(m["Body"] for m in receive(http, name, MaxNumberOfMessages=10))
    assert bodies == ["first", "third"]
    # Whole-request rules fail the whole request
    eleven = [{"Id": str(i), "MessageBody": "x"} for i in range(11)]
    too_many = http.post(f"{API}/{name}/messages", json={"Entries": eleven})
    assert error_of(too_many) == (400, "TooManyEntriesInBatchRequest")
    twice = [{"Id": "same", "MessageBody": "x"}, {"Id": "same", "MessageBody": "y"}]
    repeated = http.post(f"{API}/{name}/messages", json={"Entries": twice})
    assert error_of(repeated) == (400, "BatchEntryIdsNotDistinct")


def test_messages_over_the_maximum_size_are_refused(http: httpx.Client) -> None:
    name = unique("size")
    create(http, name)
    at_limit = http.post(f"{API}/{name}/messages", json={"MessageBody": "x" * MiB})
    assert at_limit.status_code == 200, at_limit.text[:300]
    over = http.post(f"{API}/{name}/messages", json={"MessageBody": "x" * (MiB + 1)})
    assert error_of(over) == (400, "InvalidParameterValue")
    assert str(MiB) in over.json()["message"]
    # When the queue's MaximumMessageSize is lowered, the lower limit counts
    http.patch(f"{API}/{name}", json={"attributes": {"MaximumMessageSize": 1024}})
    assert http.post(f"{API}/{name}/messages", json={"MessageBody": "y" * 1024}).is_success
    small_over = http.post(f"{API}/{name}/messages", json={"MessageBody": "y" * 1025})
    assert error_of(small_over) == (400, "InvalidParameterValue")


def test_a_message_not_deleted_comes_back_after_its_visibility_timeout(
    http: httpx.Client,
) -> None:
    # Given a queue whose messages stay hidden one second after a receive
    name = unique("visibility")
    create(http, name, VisibilityTimeout=1)
    send(http, name, "again")
    (first,) = receive(http, name)
    # When nobody deletes it, it is hidden, then delivered again with a new receipt
    assert receive(http, name) == []
    (second,) = receive(http, name, WaitTimeSeconds=5)
    assert second["MessageId"] == first["MessageId"]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    assert (
        second["Attributes"]["ApproximateFirstReceiveTimestamp"]
        == first["Attributes"]["ApproximateFirstReceiveTimestamp"]
    )
    # The old receipt no longer changes its visibility
    stale = http.post(
        f"{API}/{name}/messages/visibility",
        json={"ReceiptHandle": first["ReceiptHandle"], "VisibilityTimeout": 0},
    )
    assert error_of(stale) == (400, "MessageNotInflight")
    # Then a visibility change to 0 makes it visible at once
    hidden = http.post(
        f"{API}/{name}/messages/visibility",
        json={"ReceiptHandle": second["ReceiptHandle"], "VisibilityTimeout": 0},
    )
    assert hidden.status_code == 200, hidden.text
    (third,) = receive(http, name, VisibilityTimeout=30)
    assert third["Attributes"]["ApproximateReceiveCount"] == "3"
    batch = http.post(
        f"{API}/{name}/messages/visibility",
        json={
            "Entries": [
                {"Id": "ok", "ReceiptHandle": third["ReceiptHandle"], "VisibilityTimeout": 60},
                {"Id": "old", "ReceiptHandle": first["ReceiptHandle"], "VisibilityTimeout": 60},
            ]
        },
    ).json()
    assert [s["Id"] for s in batch["Successful"]] == ["ok"]
    assert [(f["Id"], f["Code"]) for f in batch["Failed"]] == [("old", "MessageNotInflight")]


def test_delays_per_queue_and_per_message(http: httpx.Client) -> None:
    # Given a queue with a one-second delay and one without
    delayed = unique("delayed")
    plain = unique("plain")
    create(http, delayed, DelaySeconds=1)
    create(http, plain)
    send(http, delayed, "queue delay")
    send(http, plain, "message delay", DelaySeconds=1)
    # Then neither message is visible at once, and both are counted as delayed
    for name in (delayed, plain):
        assert receive(http, name) == []
        assert attributes_of(http, name)["ApproximateNumberOfMessagesDelayed"] == "1"
    # When the delay ran out, each is received, not earlier than a second after its send
    for name in (delayed, plain):
        (message,) = receive(http, name, WaitTimeSeconds=5)
        system = message["Attributes"]
        assert (
            int(system["ApproximateFirstReceiveTimestamp"]) - int(system["SentTimestamp"]) >= 1000
        )


def test_a_long_poll_returns_soon_after_a_send_from_elsewhere(
    platform: PlatformProcess, http: httpx.Client
) -> None:
    # Given an empty queue, an empty long poll waits its time out
    name = unique("longpoll")
    create(http, name)
    started = time.monotonic()
    assert receive(http, name, WaitTimeSeconds=1) == []
    assert 0.9 <= time.monotonic() - started < 10
    # Given a receive waiting up to 5 s in another thread
    got: list[list[dict[str, Any]]] = []
    done = threading.Event()

    def poll() -> None:
        with platform.client() as own:
            got.append(receive(own, name, WaitTimeSeconds=5))
        done.set()

    waiter = threading.Thread(target=poll)
    waiter.start()
    assert not done.wait(0.5)  # it is waiting: the queue is empty
    # When a message is sent, the waiting receive returns it before its wait is over
    sent_at = time.monotonic()
    send(http, name, "wake up")
    assert done.wait(10)
    waiter.join()
    assert time.monotonic() - sent_at < 4.0
    assert [m["Body"] for m in got[0]] == ["wake up"]


def test_dead_letter_queue_after_max_receive_count_then_redrive_back(
    http: httpx.Client,
) -> None:
    # Given a queue that sends a message to its DLQ after two receives
    dlq = unique("dlq")
    source = unique("source")
    dlq_arn = create(http, dlq)["arn"]
    policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}
    create(http, source, RedrivePolicy=json.dumps(policy))
    assert json.loads(attributes_of(http, source)["RedrivePolicy"]) == policy
    sent = send(http, source, "poison")
    # When it is received twice and never deleted
    for count in ("1", "2"):
        (message,) = receive(http, source, VisibilityTimeout=0)
        assert message["Attributes"]["ApproximateReceiveCount"] == count
    # Then the third receive moves it to the DLQ instead of returning it
    assert receive(http, source, VisibilityTimeout=0) == []
    assert attributes_of(http, dlq)["ApproximateNumberOfMessages"] == "1"
    listed = {q["name"]: q for q in http.get(API).json()["queues"]}
    assert listed[source]["dead_letter_queue"] == dlq and listed[dlq]["visible"] == 1
    # The DLQ cannot be deleted while it serves the source
    assert error_of(http.delete(f"{API}/{dlq}"))[0] == 409
    # When it is redriven, it is back on the source with its count reset
    moved = http.post(f"{API}/{dlq}/redrive", json={})
    assert moved.json() == {"source": dlq, "destination": source, "moved": 1}
    (back,) = receive(http, source)
    assert back["MessageId"] == sent["MessageId"] and back["Body"] == "poison"
    assert back["Attributes"]["ApproximateReceiveCount"] == "1"
    # A queue that is nobody's DLQ needs a destination
    nobody = http.post(f"{API}/{source}/redrive", json={})
    assert error_of(nobody) == (400, "InvalidParameterValue")


def test_fifo_keeps_each_groups_order_under_concurrent_consumers(
    platform: PlatformProcess, http: httpx.Client
) -> None:
    # Given 4 groups of 10 messages each, sent interleaved
    name = unique("ordered", fifo=True)
    create(http, name, VisibilityTimeout=30)
    groups = [f"g{i}" for i in range(4)]
    expected = {g: [f"{g}-{n}" for n in range(10)] for g in groups}
    for n in range(10):
        entries = [
            {
                "Id": g,
                "MessageBody": f"{g}-{n}",
                "MessageGroupId": g,
                "MessageDeduplicationId": f"{g}-{n}",
            }
            for g in groups
        ]
        result = http.post(f"{API}/{name}/messages", json={"Entries": entries}).json()
        assert result["Failed"] == [] and all(s["SequenceNumber"] for s in result["Successful"])
    # When 4 consumers receive and delete concurrently, each recording what it got in order
    seen: dict[str, list[str]] = {g: [] for g in groups}
    lock = threading.Lock()
    total = itertools.count(1)
    finished = threading.Event()
    failures: list[BaseException] = []

    def consume() -> None:
        try:
            with platform.client() as own:
                while not finished.is_set():
                    got = receive(own, name, MaxNumberOfMessages=3, WaitTimeSeconds=1)
                    with lock:
                        for m in got:
                            seen[m["Attributes"]["MessageGroupId"]].append(m["Body"])
                            if next(total) == 40:
                                finished.set()
                    for m in got:
                        delete(own, name, m)
        except BaseException as exc:  # reported by the test below
            failures.append(exc)
            finished.set()

    consumers = [threading.Thread(target=consume) for _ in range(4)]
    for consumer in consumers:
        consumer.start()
    assert finished.wait(30)
    for consumer in consumers:
        consumer.join(10)
    # Then every group was delivered once, in its send order
    assert failures == []
    assert seen == expected


def test_fifo_deduplicates_by_id_and_by_content(http: httpx.Client) -> None:
    # Given a FIFO queue with explicit deduplication ids
    by_id = unique("dedup-id", fifo=True)
    create(http, by_id)
    first = send(http, by_id, "one", MessageGroupId="g", MessageDeduplicationId="d1")
    again = send(http, by_id, "one, again", MessageGroupId="g", MessageDeduplicationId="d1")
    other = send(http, by_id, "two", MessageGroupId="g", MessageDeduplicationId="d2")
    # Then a repeated id is accepted but not stored twice
    assert again["MessageId"] == first["MessageId"]
    assert other["MessageId"] != first["MessageId"]
    bodies = [m["Body"] for m in receive(http, by_id, MaxNumberOfMessages=10)]
    assert bodies == ["one", "two"]
    # And without an id (or content deduplication) a FIFO send is refused
    no_id = http.post(f"{API}/{by_id}/messages", json={"MessageBody": "x", "MessageGroupId": "g"})
    assert error_of(no_id) == (400, "InvalidParameterValue")
    no_group = http.post(f"{API}/{by_id}/messages", json={"MessageBody": "x"})
    assert error_of(no_group) == (400, "MissingParameter")
    # Given a FIFO queue with content-based deduplication
    by_content = unique("dedup-body", fifo=True)
    create(http, by_content, ContentBasedDeduplication="true")
    a = send(http, by_content, "same body", MessageGroupId="g")
    b = send(http, by_content, "same body", MessageGroupId="h")
    c = send(http, by_content, "other body", MessageGroupId="g")
    assert a["MessageId"] == b["MessageId"] != c["MessageId"]
    received = receive(http, by_content, MaxNumberOfMessages=10)
    assert [m["Body"] for m in received] == ["same body", "other body"]
    assert (
        received[0]["Attributes"]["MessageDeduplicationId"]
        == hashlib.sha256(b"same body").hexdigest()
    )


def test_purge_empties_a_queue_once_a_minute(http: httpx.Client) -> None:
    name = unique("purge")
    create(http, name)
    for n in range(3):
        send(http, name, f"m{n}")
    receive(http, name)  # one in flight: purged too
    assert http.post(f"{API}/{name}/purge").json() == {"name": name, "purged": 3}
    shown = attributes_of(http, name)
    assert shown["ApproximateNumberOfMessages"] == shown["ApproximateNumberOfMessagesNotVisible"]
    assert shown["ApproximateNumberOfMessages"] == "0"
    assert error_of(http.post(f"{API}/{name}/purge")) == (400, "PurgeQueueInProgress")


def test_message_attributes_round_trip_with_sqs_digest(http: httpx.Client) -> None:
    # Given a message with string, number, binary and custom-typed attributes
    name = unique("attributes")
    create(http, name)
    attributes = {
        "colour": {"DataType": "String", "StringValue": "blue ✓"},
        "count": {"DataType": "Number", "StringValue": "42.5"},
        "blob": {"DataType": "Binary", "BinaryValue": base64.b64encode(b"\x00\x01\xff").decode()},
        "kind": {"DataType": "String.custom", "StringValue": "k"},
    }
    expected = md5_of_attributes(attributes)
    sent = send(http, name, "with attributes", MessageAttributes=attributes)
    # Then the send's and the receive's digests are SQS's, and the attributes come back as sent
    assert sent["MD5OfMessageAttributes"] == expected
    (message,) = receive(http, name)
    assert message["MessageAttributes"] == attributes
    assert message["MD5OfMessageAttributes"] == expected
    bad = http.post(
        f"{API}/{name}/messages",
        json={
            "MessageBody": "x",
            "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "x"}},
        },
    )
    assert error_of(bad) == (400, "InvalidParameterValue")


def test_the_cli_manages_queues_and_messages(platform: PlatformProcess, http: httpx.Client) -> None:
    dlq = unique("cli-dlq")
    work = unique("cli-work")
    # Given queues created from the CLI, one the other's dead-letter queue
    created = platform.cli("queues", "create", dlq, check=True).stdout
    assert dlq in created
    policy = json.dumps({"deadLetterTargetArn": dlq, "maxReceiveCount": 1})
    platform.cli(
        "queues",
        "create",
        work,
        "-a",
        "VisibilityTimeout=0",
        "-a",
        f"RedrivePolicy={policy}",
        check=True,
    )
    # When a message with an attribute is sent, it is listed, received and deleted
    message_id = platform.cli(
        "queues", "send", work, "hello [cli]", "--attribute", "colour=String:red", check=True
    ).stdout.strip()
    assert uuid.UUID(message_id)
    listing = platform.cli("queues", "ls", check=True).stdout
    row = next(line for line in listing.splitlines() if work in line)
    assert "standard" in row and dlq in row and " 1 " in row
    got = platform.cli("queues", "receive", work, "--max", "10", "--delete", check=True).stdout
    assert message_id in got and "hello [cli]" in got and "colour (String): red" in got
    assert "deleted 1" in got
    assert "no messages" in platform.cli("queues", "receive", work, check=True).stdout
    # A message received once and not deleted goes to the DLQ, and redrive brings it back
    platform.cli("queues", "send", work, "bounce", check=True)
    platform.cli("queues", "receive", work, check=True)
    assert "no messages" in platform.cli("queues", "receive", work, check=True).stdout
    assert attributes_of(http, dlq)["ApproximateNumberOfMessages"] == "1"
    moved = platform.cli("queues", "redrive", dlq, check=True).stdout
    assert f"moved 1 messages from {dlq} to {work}" in moved
    # Purge empties it, once a minute
    purged = platform.cli("queues", "purge", work, check=True).stdout
    assert f"purged 1 messages from {work}" in purged
    again = platform.cli("queues", "purge", work)
    assert again.returncode == 1 and "60 seconds" in again.stderr
    # FIFO from the CLI: --fifo, group and deduplication ids
    fifo = unique("cli", fifo=True)
    platform.cli("queues", "create", fifo, "--fifo", check=True)
    sent = platform.cli(
        "queues", "send", fifo, "ordered", "--group", "g", "--dedup", "d", check=True
    )
    assert "sequence" in sent.stdout
    shown = platform.cli("queues", "attributes", fifo, check=True).stdout
    assert "FifoQueue" in shown and "true" in shown
    # Errors print the message and the hint
    missing = platform.cli("queues", "attributes", unique("nope"))
    assert missing.returncode == 1
    assert (
        "does not exist" in missing.stderr and "hint: list them: unkai queues ls" in missing.stderr
    )
    malformed = platform.cli("queues", "send", work, "x", "--attribute", "colour=red")
    assert malformed.returncode == 1 and "NAME=TYPE:VALUE" in malformed.stderr
