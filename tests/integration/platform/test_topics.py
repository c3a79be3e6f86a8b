"""Topics through the real platform's control API and CLI: SNS's envelope to queues, raw
delivery with message attributes (read with boto3), SNS's Lambda event for a function's
`- sns:` event, HTTP notifications with SNS's headers, every filter-policy operator through a
real publish, PublishBatch, retries and the subscription's dead-letter queue, and errors.

Topics and queues are platform-wide, so every test names its own with `unique`. A test waits
for its deliveries on the topic's `pending_deliveries`, which is 0 once each delivery is made
or dead-lettered; it never sleeps.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.integration.hook_server import HookServer
from tests.integration.platform_process import PlatformProcess, wait_until, write_app

TOPICS = "/_unkai/api/topics"
QUEUES = "/_unkai/api/queues"
SUBSCRIPTIONS = "/_unkai/api/subscriptions"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def http(platform: PlatformProcess) -> Iterator[httpx.Client]:
    with platform.client() as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(http: httpx.Client, name: str) -> str:
    response = http.post(TOPICS, json={"name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["arn"])


def create_queue(http: httpx.Client, name: str) -> str:
    response = http.post(QUEUES, json={"name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["arn"])


def subscribe(
    http: httpx.Client, topic: str, protocol: str, endpoint: str, **attributes: Any
) -> dict[str, Any]:
    request = {"protocol": protocol, "endpoint": endpoint, "attributes": attributes}
    response = http.post(f"{TOPICS}/{topic}/subscriptions", json=request)
    assert response.status_code == 201, response.text
    return dict(response.json())


def publish(http: httpx.Client, topic: str, message: str, **fields: Any) -> str:
    response = http.post(f"{TOPICS}/{topic}/messages", json={"Message": message, **fields})
    assert response.status_code == 200, response.text
    return str(response.json()["MessageId"])


def delivered(http: httpx.Client, topic: str) -> bool:
    """Every delivery of `topic` made (or dead-lettered)."""
    (shown,) = [t for t in http.get(TOPICS).json()["topics"] if t["name"] == topic]
    return shown["pending_deliveries"] == 0


def drain(http: httpx.Client, queue: str) -> list[dict[str, Any]]:
    """Every message now in `queue` (each hidden for a minute once received)."""
    found: list[dict[str, Any]] = []
    while True:
        request = {"MaxNumberOfMessages": 10, "VisibilityTimeout": 60}
        response = http.post(f"{QUEUES}/{queue}/messages/receive", json=request)
        assert response.status_code == 200, response.text
        batch = response.json()["Messages"]
        if not batch:
            return found
        found += batch


def attribute(name: str, data_type: str, value: str) -> dict[str, dict[str, str]]:
    return {name: {"DataType": data_type, "StringValue": value}}


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


def test_a_queue_gets_sns_envelope_and_a_raw_subscription_the_bare_message(
    platform: PlatformProcess, http: httpx.Client
) -> None:
    # Given a topic with an enveloped and a raw queue subscription
    topic, wrapped, raw = unique("fanout"), unique("wrapped"), unique("raw")
    topic_arn = create_topic(http, topic)
    for queue in (wrapped, raw):
        create_queue(http, queue)
    first = subscribe(http, topic, "sqs", wrapped)
    second = subscribe(http, topic, "sqs", raw, RawMessageDelivery=True)
    assert second["attributes"]["RawMessageDelivery"] == "true"
    assert first["topic_arn"] == topic_arn and first["arn"].startswith(topic_arn + ":")
    listed = http.get(f"{TOPICS}/{topic}/subscriptions").json()["subscriptions"]
    assert {s["arn"] for s in listed} == {first["arn"], second["arn"]}
    every = {s["arn"] for s in http.get(SUBSCRIPTIONS).json()["subscriptions"]}
    assert {first["arn"], second["arn"]} <= every
    # When a message with a subject and attributes is published
    attributes = {**attribute("color", "String", "red"), **attribute("n", "Number", "3")}
    message_id = publish(
        http, topic, "hello topic", Subject="greeting", MessageAttributes=attributes
    )
    assert wait_until(lambda: delivered(http, topic), timeout_s=10)
    # Then the first queue holds SNS's JSON envelope
    (message,) = drain(http, wrapped)
    envelope = json.loads(message["Body"])
    assert envelope["Type"] == "Notification"
    assert envelope["MessageId"] == message_id
    assert envelope["TopicArn"] == topic_arn
    assert envelope["Subject"] == "greeting"
    assert envelope["Message"] == "hello topic"
    assert TIMESTAMP.match(envelope["Timestamp"])
    assert envelope["MessageAttributes"] == {
        "color": {"Type": "String", "Value": "red"},
        "n": {"Type": "Number", "Value": "3"},
    }
    # And the raw queue the bare message, its attributes as SQS message attributes (boto3
    # checks their MD5 digest)
    sqs = boto3.client(
        "sqs",
        endpoint_url=platform.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    url = sqs.get_queue_url(QueueName=raw)["QueueUrl"]
    received = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], WaitTimeSeconds=5)
    (bare,) = received["Messages"]
    assert bare["Body"] == "hello topic"
    assert bare["MessageAttributes"] == {
        "color": {"DataType": "String", "StringValue": "red"},
        "n": {"DataType": "Number", "StringValue": "3"},
    }


LISTENER = """
import json, os

def listener(event, context):
    with open(os.environ["OUT"], "a") as out:
        out.write(json.dumps(event) + "\\n")
"""

LISTENER_MANIFEST = """
service: {service}
provider:
  environment: {{OUT: {out}}}
resources:
  topics:
    {topic}: {{}}
functions:
  listener:
    handler: app.listener
    events:
      - sns: {{topic: {topic}, filterPolicy: {{kind: [order]}}}}
"""


def test_a_function_subscribed_with_sns_gets_sns_lambda_event(
    platform: PlatformProcess, http: httpx.Client, tmp_path: Path, stage: str
) -> None:
    # Given a function deployed with `- sns:` on a topic the manifest declares
    topic, out = unique("orders"), tmp_path / "events.jsonl"
    manifest = LISTENER_MANIFEST.format(service=f"svc-{topic}", out=out, topic=topic)
    app = write_app(tmp_path / "app", manifest, {"app.py": LISTENER})
    platform.cli("deploy", str(app), "--stage", stage, check=True)

    def subscribed() -> bool:
        listed = http.get(f"{TOPICS}/{topic}/subscriptions").json()["subscriptions"]
        return [(s["protocol"], s["endpoint"]) for s in listed] == [("lambda", f"{stage}/listener")]

    assert wait_until(subscribed, timeout_s=10)
    # When one message its filter policy refuses and one it accepts are published
    publish(http, topic, "not for me", MessageAttributes=attribute("kind", "String", "refund"))
    kind = attribute("kind", "String", "order")
    message_id = publish(http, topic, "order 7", Subject="new order", MessageAttributes=kind)
    # Then the function is invoked once, with SNS's Lambda event
    assert wait_until(lambda: out.exists() and bool(out.read_text().strip()), timeout_s=30)
    (line,) = out.read_text().splitlines()
    (record,) = json.loads(line)["Records"]
    topic_arn = f"arn:aws:sns:us-east-1:000000000000:{topic}"
    assert record["EventSource"] == "aws:sns"
    assert record["EventVersion"] == "1.0"
    assert record["EventSubscriptionArn"].startswith(topic_arn + ":")
    sns = record["Sns"]
    assert sns["Type"] == "Notification"
    assert sns["MessageId"] == message_id
    assert sns["TopicArn"] == topic_arn
    assert sns["Subject"] == "new order"
    assert sns["Message"] == "order 7"
    assert TIMESTAMP.match(sns["Timestamp"])
    assert sns["MessageAttributes"] == {"kind": {"Type": "String", "Value": "order"}}
    # And the deploy owns the subscription: it cannot be unsubscribed by hand
    refused = http.delete(f"{SUBSCRIPTIONS}/{record['EventSubscriptionArn']}")
    assert error_of(refused) == (404, "NotFound") and "deploy" in refused.json()["hint"]


def test_an_http_subscription_gets_a_notification_post(
    http: httpx.Client, hooks: HookServer
) -> None:
    # Given an HTTP endpoint subscribed to a topic
    topic = unique("hook")
    topic_arn = create_topic(http, topic)
    sub = subscribe(http, topic, "http", hooks.url("/hook"))
    # When a message is published
    message_id = publish(
        http, topic, "ping", Subject="hi", MessageAttributes=attribute("a", "String", "b")
    )
    # Then the endpoint gets one POST with SNS's headers and JSON envelope
    assert wait_until(lambda: delivered(http, topic), timeout_s=10)
    ((headers, body),) = hooks.to("/hook")
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["x-amz-sns-message-type"] == "Notification"
    assert lowered["x-amz-sns-message-id"] == message_id
    assert lowered["x-amz-sns-topic-arn"] == topic_arn
    assert lowered["x-amz-sns-subscription-arn"] == sub["arn"]
    assert lowered["content-type"].startswith("text/plain")
    envelope = json.loads(body)
    assert (envelope["Type"], envelope["MessageId"], envelope["TopicArn"]) == (
        "Notification",
        message_id,
        topic_arn,
    )
    assert (envelope["Subject"], envelope["Message"]) == ("hi", "ping")
    assert envelope["MessageAttributes"] == {"a": {"Type": "String", "Value": "b"}}
    # And a MessageStructure=json publish sends the endpoint its protocol's message
    structured = json.dumps({"default": "for anyone", "http": "for http"})
    publish(http, topic, structured, MessageStructure="json")
    assert wait_until(lambda: delivered(http, topic), timeout_s=10)
    assert json.loads(hooks.to("/hook")[1][1])["Message"] == "for http"


#: Each policy, in the scope named, and the messages (below) it lets through.
POLICIES: dict[str, tuple[str, dict[str, Any], set[str]]] = {
    "exact": ("MessageAttributes", {"color": ["red"]}, {"a"}),
    "number": ("MessageAttributes", {"size": [{"numeric": ["=", 5]}]}, {"a"}),
    "range": ("MessageAttributes", {"size": [{"numeric": [">", 0, "<=", 10]}]}, {"a", "d"}),
    "prefix": ("MessageAttributes", {"color": [{"prefix": "bl"}]}, {"b"}),
    "suffix": ("MessageAttributes", {"color": [{"suffix": "en"}]}, {"c"}),
    "but": ("MessageAttributes", {"color": [{"anything-but": ["red", "blue"]}]}, {"c", "d"}),
    "exists": ("MessageAttributes", {"priority": [{"exists": True}]}, {"b"}),
    "absent": ("MessageAttributes", {"priority": [{"exists": False}]}, {"a", "c", "d", "e"}),
    "nocase": ("MessageAttributes", {"color": [{"equals-ignore-case": "RED"}]}, {"a", "d"}),
    "or": (
        "MessageAttributes",
        {"$or": [{"color": ["green"]}, {"size": [{"numeric": [">", 100]}]}]},
        {"b", "c"},
    ),
    "array": ("MessageAttributes", {"tags": ["urgent"]}, {"a"}),
    "body": ("MessageBody", {"order": {"kind": ["refund"]}}, {"b", "e"}),
}

#: Message id -> (attributes as {name: (DataType, value)}, body beside the id).
MESSAGES: dict[str, tuple[dict[str, tuple[str, str]], dict[str, Any]]] = {
    "a": (
        {
            "color": ("String", "red"),
            "size": ("Number", "5"),
            "tags": ("String.Array", '["urgent", "later"]'),
        },
        {"order": {"kind": "sale"}},
    ),
    "b": (
        {"color": ("String", "blue"), "size": ("Number", "150"), "priority": ("String", "high")},
        {"order": {"kind": "refund"}},
    ),
    "c": ({"color": ("String", "green"), "size": ("Number", "500")}, {}),
    "d": (
        {
            "color": ("String", "Red"),
            "size": ("Number", "10"),
            "tags": ("String.Array", '["later"]'),
        },
        {"order": {"kind": "REFUND"}},
    ),
    "e": ({}, {"order": {"kind": "refund"}}),
}


def test_each_filter_policy_operator_picks_its_messages(http: httpx.Client) -> None:
    # Given one raw queue subscription per filter policy
    topic = unique("filters")
    create_topic(http, topic)
    queues = {}
    for label, (scope, policy, _) in POLICIES.items():
        queues[label] = unique(f"f-{label}")
        create_queue(http, queues[label])
        attributes = {"RawMessageDelivery": True, "FilterPolicy": policy}
        subscribe(http, topic, "sqs", queues[label], FilterPolicyScope=scope, **attributes)
    # When each message is published
    for message_id, (attributes, body) in MESSAGES.items():
        shaped = {
            name: {"DataType": data_type, "StringValue": value}
            for name, (data_type, value) in attributes.items()
        }
        text = json.dumps({"id": message_id, **body})
        publish(http, topic, text, **({"MessageAttributes": shaped} if shaped else {}))
    assert wait_until(lambda: delivered(http, topic), timeout_s=10)
    # Then each queue holds exactly the messages its policy matches
    got = {
        label: {json.loads(m["Body"])["id"] for m in drain(http, queue)}
        for label, queue in queues.items()
    }
    assert got == {label: expected for label, (_, _, expected) in POLICIES.items()}


def test_a_malformed_filter_policy_is_refused_naming_filter_policy(http: httpx.Client) -> None:
    topic, queue = unique("badpolicy"), unique("badpolicy-q")
    create_topic(http, topic)
    create_queue(http, queue)
    path = f"{TOPICS}/{topic}/subscriptions"
    for policy in ("{not json", {"color": [{"begins-with": "x"}]}, {"order": {"kind": ["x"]}}):
        request = {"protocol": "sqs", "endpoint": queue, "attributes": {"FilterPolicy": policy}}
        refused = http.post(path, json=request)
        assert error_of(refused) == (400, "InvalidParameter"), refused.text
        message = refused.json()["message"]
        assert message.startswith("Invalid parameter: FilterPolicy: ")
        assert "FilterPolicy: FilterPolicy" not in message
    assert http.get(path).json()["subscriptions"] == []
    # A subscription's policy is checked when it changes too; a good one is taken
    sub = subscribe(http, topic, "sqs", queue)
    where = f"{SUBSCRIPTIONS}/{sub['arn']}"
    bad = http.patch(where, json={"attributes": {"FilterPolicy": {"n": [{"numeric": [">"]}]}}})
    assert error_of(bad) == (400, "InvalidParameter") and "FilterPolicy" in bad.text
    good = http.patch(where, json={"attributes": {"FilterPolicy": {"color": ["red"]}}})
    assert good.status_code == 200, good.text
    assert json.loads(good.json()["attributes"]["FilterPolicy"]) == {"color": ["red"]}


def test_publish_batch_fails_a_bad_entry_alone(http: httpx.Client) -> None:
    # Given a topic with a raw queue subscription
    topic, queue = unique("batch"), unique("batch-q")
    create_topic(http, topic)
    create_queue(http, queue)
    subscribe(http, topic, "sqs", queue, RawMessageDelivery="true")
    # When a batch with one entry whose subject is too long is published
    entries = [
        {"Id": "a", "Message": "first"},
        {"Id": "b", "Message": "second", "Subject": "s" * 101},
        {"Id": "c", "Message": "third", "MessageAttributes": attribute("k", "String", "v")},
    ]
    response = http.post(f"{TOPICS}/{topic}/messages", json={"PublishBatchRequestEntries": entries})
    assert response.status_code == 200, response.text
    result = response.json()
    # Then the other entries are published and the bad one fails alone, naming the problem
    assert [s["Id"] for s in result["Successful"]] == ["a", "c"]
    assert all(s["MessageId"] for s in result["Successful"])
    (failed,) = result["Failed"]
    assert (failed["Id"], failed["Code"], failed["SenderFault"]) == ("b", "InvalidParameter", True)
    assert "Subject" in failed["Message"]
    assert wait_until(lambda: delivered(http, topic), timeout_s=10)
    assert sorted(m["Body"] for m in drain(http, queue)) == ["first", "third"]
    # And whole-request rules fail the whole request
    eleven = [{"Id": str(i), "Message": "x"} for i in range(11)]
    too_many = http.post(f"{TOPICS}/{topic}/messages", json={"PublishBatchRequestEntries": eleven})
    assert error_of(too_many) == (400, "TooManyEntriesInBatchRequest")


def test_an_unknown_topic_is_404_not_found(http: httpx.Client) -> None:
    topic = unique("missing")
    # (a batch whose every entry is bad names the topic too, not the entries)
    batch = {"PublishBatchRequestEntries": [{"Id": "a", "Message": ""}]}
    for response in (
        http.post(f"{TOPICS}/{topic}/messages", json={"Message": "x"}),
        http.post(f"{TOPICS}/{topic}/messages", json=batch),
        http.get(f"{TOPICS}/{topic}/subscriptions"),
        http.post(f"{TOPICS}/{topic}/subscriptions", json={"protocol": "sqs", "endpoint": "q"}),
        http.delete(f"{TOPICS}/{topic}"),
    ):
        assert error_of(response) == (404, "NotFound"), response.text
        assert topic in response.json()["message"]


def test_subscribe_refuses_unknown_protocols_and_endpoints(http: httpx.Client) -> None:
    topic = unique("endpoints")
    create_topic(http, topic)
    path = f"{TOPICS}/{topic}/subscriptions"
    for protocol, endpoint in (
        ("email", "me@example.com"),
        ("http", "ftp://example.com/"),
        ("https", "http://example.com/"),
        ("lambda", "stage/function/extra"),
    ):
        refused = http.post(path, json={"protocol": protocol, "endpoint": endpoint})
        assert error_of(refused) == (400, "InvalidParameter"), refused.text
    missing_queue = http.post(path, json={"protocol": "sqs", "endpoint": unique("nowhere")})
    assert error_of(missing_queue) == (404, "QueueDoesNotExist")
    typo = http.post(path, json={"protocol": "sqs", "endpoint": "q", "atributes": {}})
    assert error_of(typo) == (400, "InvalidParameterValue") and "atributes" in typo.text
    # A bare function name is a function of the default stage
    sub = subscribe(http, topic, "lambda", "handler")
    assert sub["endpoint"] == "dev/handler"
    assert http.get(path).json()["subscriptions"] == [sub]


def test_failed_http_deliveries_are_retried_then_dead_lettered(
    tmp_path: Path, hooks: HookServer
) -> None:
    # Given a platform retrying deliveries after 50 ms (then 100, 200), and two endpoints, each
    # with its own dead-letter queue: one always failing, one failing twice
    platform = PlatformProcess(tmp_path / "data", extra_args=("--delivery-retry-base-s", "0.05"))
    platform.start()
    try:
        with platform.client() as http:
            topic = unique("retry")
            create_topic(http, topic)
            hooks.statuses = {"/down": [500], "/flaky": [500, 500, 200]}
            dead_letter_queues = {"/down": unique("dlq-down"), "/flaky": unique("dlq-flaky")}
            for path, dead_letter_queue in dead_letter_queues.items():
                dlq_arn = create_queue(http, dead_letter_queue)
                redrive = {"deadLetterTargetArn": dlq_arn}
                subscribe(http, topic, "http", hooks.url(path), RedrivePolicy=redrive)
            # When a message is published
            message_id = publish(http, topic, "important")
            assert wait_until(lambda: delivered(http, topic), timeout_s=20)
            # Then the failing endpoint was tried 4 times and the message went to its DLQ
            assert len(hooks.to("/down")) == 4
            (dead,) = drain(http, dead_letter_queues["/down"])
            assert json.loads(dead["Body"])["Message"] == "important"
            errors = dead["MessageAttributes"]
            assert errors["ErrorCode"]["StringValue"] == "DeliveryFailed"
            assert errors["ErrorMessage"]["StringValue"] == "HTTP 500"
            assert errors["RequestID"]["StringValue"] == message_id
            # And the flaky one got it on its third try, with nothing dead-lettered
            assert len(hooks.to("/flaky")) == 3
            assert drain(http, dead_letter_queues["/flaky"]) == []
    finally:
        platform.stop()


def test_the_cli_creates_subscribes_publishes_and_lists(
    platform: PlatformProcess, http: httpx.Client
) -> None:
    # Given a topic created and a queue subscribed with the CLI
    topic, queue = unique("cli"), unique("cli-q")
    created = platform.cli("topics", "create", topic, check=True)
    assert topic in created.stdout and "arn:aws:sns:" in created.stdout
    create_queue(http, queue)
    subscribed = platform.cli(
        "topics", "subscribe", topic, "sqs", queue, "-a", "RawMessageDelivery=true", check=True
    )
    arn = subscribed.stdout.strip()
    assert arn.startswith(f"arn:aws:sns:us-east-1:000000000000:{topic}:")
    # When a message is published with the CLI
    published = platform.cli(
        "topics",
        "publish",
        topic,
        "from the cli",
        "--subject",
        "s",
        "-a",
        "n=Number:7",
        check=True,
    )
    message_id = published.stdout.strip()
    assert wait_until(lambda: delivered(http, topic), timeout_s=10)
    # Then the queue holds it, with its attribute
    (message,) = drain(http, queue)
    assert message["Body"] == "from the cli"
    assert message["MessageAttributes"] == {"n": {"DataType": "Number", "StringValue": "7"}}
    assert uuid.UUID(message_id)
    # And `ls` and `subscriptions` show the topic and its subscription
    listed = platform.cli("topics", "ls", check=True).stdout
    (row,) = [line for line in listed.splitlines() if topic in line]
    assert " 1 " in row
    shown = platform.cli("topics", "subscriptions", topic, check=True).stdout
    assert queue in shown and "RawMessageDelivery=true" in shown
    # And unsubscribe and delete undo it; an unknown topic is an error with a hint
    assert "unsubscribed" in platform.cli("topics", "unsubscribe", arn, check=True).stdout
    again = platform.cli("topics", "unsubscribe", arn)
    assert again.returncode == 1 and "unkai topics subscriptions" in again.stderr
    platform.cli("topics", "delete", topic, check=True)
    assert topic not in platform.cli("topics", "ls", check=True).stdout
    missing = platform.cli("topics", "publish", topic, "x")
    assert missing.returncode == 1
    assert "Topic does not exist" in missing.stderr and "unkai topics ls" in missing.stderr


def test_messages_waiting_for_a_retry_do_not_hold_their_content_in_memory(
    tmp_path: Path, hooks: HookServer
) -> None:
    # Given a platform retrying failed deliveries after seconds, and an HTTP endpoint that
    # fails, with a dead-letter queue for deliveries that run out of attempts
    platform = PlatformProcess(tmp_path / "data", extra_args=("--delivery-retry-base-s", "10"))
    platform.start()
    try:
        with platform.client() as http:
            topic = unique("backlog")
            create_topic(http, topic)
            hooks.statuses = {"/backlog": [500]}
            dead_letter_queue = unique("dlq-backlog")
            redrive = {"deadLetterTargetArn": create_queue(http, dead_letter_queue)}
            subscribe(http, topic, "http", hooks.url("/backlog"), RedrivePolicy=redrive)
            sent: dict[str, str] = {}

            def publish_many(numbers: range) -> None:
                for n in numbers:
                    text = str(n % 10) * 200_000 + f"#{n}"
                    sent[publish(http, topic, text)] = text

            # When 60 messages of 200 KB warm the platform up, then 150 more (30 MB) are
            # published while every first delivery fails
            publish_many(range(60))
            before_kb = platform.rss_kb()
            publish_many(range(60, 210))
            grown_mb = (platform.rss_kb() - before_kb) / 1024
            # Then the backlog costs the platform far less memory than its messages
            assert grown_mb < 12, f"the platform grew by {grown_mb:.1f} MB for 30 MB of messages"
            # And once the endpoint recovers, every try of every message carried it whole
            hooks.statuses = {"/backlog": [200]}
            assert wait_until(lambda: delivered(http, topic), timeout_s=60)
            tries: dict[str, list[str]] = {}
            for headers, body in hooks.to("/backlog"):
                lowered = {k.lower(): v for k, v in headers.items()}
                message_id = lowered["x-amz-sns-message-id"]
                tries.setdefault(message_id, []).append(json.loads(body)["Message"])
            assert set(tries) == set(sent)
            assert all(texts == [sent[m]] * len(texts) for m, texts in tries.items())
            assert sum(len(texts) for texts in tries.values()) > len(sent)  # retries were made
            for dead in drain(http, dead_letter_queue):
                notification = json.loads(dead["Body"])
                assert notification["Message"] == sent[notification["MessageId"]]
    finally:
        platform.stop()
