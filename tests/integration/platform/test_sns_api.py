"""boto3's SNS client and the AWS CLI, unchanged but for the endpoint, against the platform's
SNS query protocol: every operation unkai serves, deliveries to queues (envelope and raw), to
HTTP and to a function subscribed by its ARN, filter policies set afterwards, PublishBatch's
per-entry failures, and the error codes and exception classes boto3 users catch.

Topics are platform-wide, so each test names its own. A test waits for deliveries on the
control API's `pending_deliveries` (0 once each delivery is made), or on a long poll; it never
sleeps.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.hook_server import HookServer
from tests.integration.platform_process import PlatformProcess, wait_until, write_app

ACCOUNT = "000000000000"
REGION = "us-east-1"


def unique(prefix: str) -> str:
    return f"sns-{prefix}-{uuid.uuid4().hex[:10]}"


def delivered(platform: PlatformProcess, topic_arn: str) -> bool:
    """Every delivery of the topic made (or dead-lettered), as the control API counts."""
    name = topic_arn.rsplit(":", 1)[-1]
    with platform.client() as http:
        topics = http.get("/_unkai/api/topics").json()["topics"]
    return [t["pending_deliveries"] for t in topics if t["name"] == name] == [0]


def queue(sqs: Any, name: str) -> tuple[str, str]:
    """A new queue's (URL, ARN)."""
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, arn["QueueArn"]


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message now in the queue, with all its attributes."""
    found: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        if not got.get("Messages"):
            return found
        found += got["Messages"]


def test_topic_lifecycle_attributes_and_listing(sns: Any) -> None:
    # Given a topic created twice (CreateTopic is idempotent)
    name = unique("life")
    arn = sns.create_topic(Name=name, Attributes={"DisplayName": "Life & <times>"})["TopicArn"]
    assert arn == f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"
    assert sns.create_topic(Name=name)["TopicArn"] == arn
    # Then its attributes and the listing show it
    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attributes["TopicArn"] == arn
    assert attributes["Owner"] == ACCOUNT
    assert attributes["DisplayName"] == "Life & <times>"
    assert attributes["SubscriptionsConfirmed"] == "0"
    listed = [
        t["TopicArn"]
        for page in sns.get_paginator("list_topics").paginate()
        for t in page["Topics"]
    ]
    assert arn in listed
    # When it is deleted, it is gone; deleting it again is no error (DeleteTopic is idempotent)
    sns.delete_topic(TopicArn=arn)
    with pytest.raises(sns.exceptions.NotFoundException) as caught:
        sns.get_topic_attributes(TopicArn=arn)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    sns.delete_topic(TopicArn=arn)


def test_list_topics_pages_by_100(sns: Any) -> None:
    # Given more than a page of topics
    prefix = unique("page")
    created = {sns.create_topic(Name=f"{prefix}-{i}")["TopicArn"] for i in range(101)}
    # When the first page is read
    first = sns.list_topics()
    # Then it holds 100 and a NextToken, and the paginator reaches every topic once
    assert len(first["Topics"]) == 100 and first["NextToken"]
    pages = list(sns.get_paginator("list_topics").paginate())
    listed = [t["TopicArn"] for page in pages for t in page["Topics"]]
    assert created <= set(listed) and len(listed) == len(set(listed))
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.list_topics(NextToken="not-a-token")
    for arn in created:
        sns.delete_topic(TopicArn=arn)


def test_publish_reaches_queues_as_envelope_and_raw(
    sns: Any, sqs: Any, platform: PlatformProcess
) -> None:
    # Given a topic with an enveloped and a raw queue subscription, each by its queue ARN
    topic = sns.create_topic(Name=unique("fanout"))["TopicArn"]
    wrapped_url, wrapped_arn = queue(sqs, unique("wrapped"))
    raw_url, raw_arn = queue(sqs, unique("raw"))
    wrapped = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=wrapped_arn)
    raw = sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=raw_arn,
        Attributes={"RawMessageDelivery": "true"},
        ReturnSubscriptionArn=True,
    )
    assert wrapped["SubscriptionArn"].startswith(topic + ":")
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert sorted(listed, key=lambda s: s["Endpoint"]) == sorted(
        [
            {
                "SubscriptionArn": sub["SubscriptionArn"],
                "Owner": ACCOUNT,
                "Protocol": "sqs",
                "Endpoint": endpoint,
                "TopicArn": topic,
            }
            for sub, endpoint in ((wrapped, wrapped_arn), (raw, raw_arn))
        ],
        key=lambda s: s["Endpoint"],
    )
    every = [
        s["SubscriptionArn"]
        for page in sns.get_paginator("list_subscriptions").paginate()
        for s in page["Subscriptions"]
    ]
    assert {wrapped["SubscriptionArn"], raw["SubscriptionArn"]} <= set(every)
    shown = sns.get_subscription_attributes(SubscriptionArn=raw["SubscriptionArn"])["Attributes"]
    assert shown["RawMessageDelivery"] == "true" and shown["Endpoint"] == raw_arn
    assert shown["TopicArn"] == topic and shown["PendingConfirmation"] == "false"
    # When a message with a subject and string, number and binary attributes is published
    message = "hello <topic> & friends\r\nline two"
    attributes = {
        "color": {"DataType": "String", "StringValue": "red"},
        "n": {"DataType": "Number", "StringValue": "3"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01bin"},
    }
    message_id = sns.publish(
        TopicArn=topic, Message=message, Subject="greeting", MessageAttributes=attributes
    )["MessageId"]
    assert wait_until(lambda: delivered(platform, topic), timeout_s=10)
    # Then the first queue holds SNS's JSON envelope
    (received,) = drain(sqs, wrapped_url)
    envelope = json.loads(received["Body"])
    assert (envelope["Type"], envelope["MessageId"], envelope["TopicArn"]) == (
        "Notification",
        message_id,
        topic,
    )
    assert (envelope["Subject"], envelope["Message"]) == ("greeting", message)
    assert envelope["MessageAttributes"] == {
        "color": {"Type": "String", "Value": "red"},
        "n": {"Type": "Number", "Value": "3"},
        "blob": {"Type": "Binary", "Value": base64.b64encode(b"\x00\x01bin").decode()},
    }
    # And the raw queue the bare message, its attributes as SQS message attributes
    (bare,) = drain(sqs, raw_url)
    assert bare["Body"] == message
    assert bare["MessageAttributes"] == {
        "color": {"DataType": "String", "StringValue": "red"},
        "n": {"DataType": "Number", "StringValue": "3"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01bin"},
    }


def test_a_filter_policy_set_later_takes_effect(
    sns: Any, sqs: Any, platform: PlatformProcess
) -> None:
    # Given a raw queue subscription, and then a filter policy set on it
    topic = sns.create_topic(Name=unique("filter"))["TopicArn"]
    url, arn = queue(sqs, unique("filter-q"))
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)["SubscriptionArn"]
    sns.set_subscription_attributes(
        SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="true"
    )
    policy = json.dumps({"kind": ["order"], "size": [{"numeric": [">", 10]}]})
    sns.set_subscription_attributes(
        SubscriptionArn=sub, AttributeName="FilterPolicy", AttributeValue=policy
    )
    shown = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert json.loads(shown["FilterPolicy"]) == json.loads(policy)
    assert shown["FilterPolicyScope"] == "MessageAttributes"
    # When messages it refuses and one it accepts are published
    for text, kind, size in (
        ("refund", "refund", "50"),
        ("small", "order", "5"),
        ("big", "order", "50"),
    ):
        sns.publish(
            TopicArn=topic,
            Message=text,
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": kind},
                "size": {"DataType": "Number", "StringValue": size},
            },
        )
    assert wait_until(lambda: delivered(platform, topic), timeout_s=10)
    # Then only the accepted one reaches the queue
    assert [m["Body"] for m in drain(sqs, url)] == ["big"]
    # And a malformed policy is refused, naming it, leaving the good one in place
    with pytest.raises(sns.exceptions.InvalidParameterException) as caught:
        sns.set_subscription_attributes(
            SubscriptionArn=sub, AttributeName="FilterPolicy", AttributeValue="{not json"
        )
    assert caught.value.response["Error"]["Code"] == "InvalidParameter"
    assert "FilterPolicy" in caught.value.response["Error"]["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    shown = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert json.loads(shown["FilterPolicy"]) == json.loads(policy)
    # And after Unsubscribe the subscription is gone, and unsubscribing again is NotFound
    sns.unsubscribe(SubscriptionArn=sub)
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.unsubscribe(SubscriptionArn=sub)


def test_publish_batch_fails_a_bad_entry_alone(
    sns: Any, sqs: Any, platform: PlatformProcess
) -> None:
    # Given a topic with a raw queue subscription
    topic = sns.create_topic(Name=unique("batch"))["TopicArn"]
    url, arn = queue(sqs, unique("batch-q"))
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
    )
    # When a batch with a too-long subject and a bad attribute type is published
    result = sns.publish_batch(
        TopicArn=topic,
        PublishBatchRequestEntries=[
            {"Id": "a", "Message": "first"},
            {"Id": "b", "Message": "second", "Subject": "s" * 101},
            {
                "Id": "c",
                "Message": "third",
                "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}},
            },
            {
                "Id": "d",
                "Message": "fourth",
                "MessageAttributes": {"k": {"DataType": "Text", "StringValue": "v"}},
            },
        ],
    )
    # Then the good entries are published and each bad one fails alone, naming the problem
    assert [s["Id"] for s in result["Successful"]] == ["a", "c"]
    assert all(s["MessageId"] for s in result["Successful"])
    failed = {f["Id"]: f for f in result["Failed"]}
    assert (failed["b"]["Code"], failed["b"]["SenderFault"]) == ("InvalidParameter", True)
    assert "Subject" in failed["b"]["Message"]
    assert failed["d"]["Code"] == "ParameterValueInvalid" and "DataType" in failed["d"]["Message"]
    assert wait_until(lambda: delivered(platform, topic), timeout_s=10)
    assert sorted(m["Body"] for m in drain(sqs, url)) == ["first", "third"]
    # And whole-request rules fail the whole request
    eleven = [{"Id": str(i), "Message": "x"} for i in range(11)]
    with pytest.raises(sns.exceptions.TooManyEntriesInBatchRequestException):
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=eleven)
    twice = [{"Id": "same", "Message": "x"}, {"Id": "same", "Message": "y"}]
    with pytest.raises(sns.exceptions.BatchEntryIdsNotDistinctException):
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=twice)


def test_an_http_subscription_gets_the_notification(
    sns: Any, hooks: HookServer, platform: PlatformProcess
) -> None:
    # Given an HTTP endpoint subscribed through the SNS API
    topic = sns.create_topic(Name=unique("hook"))["TopicArn"]
    endpoint = f"http://127.0.0.1:{hooks.server_address[1]}/hook"
    sub = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=endpoint)["SubscriptionArn"]
    # When a message is published
    message_id = sns.publish(TopicArn=topic, Message="ping", Subject="hi")["MessageId"]
    assert wait_until(lambda: delivered(platform, topic), timeout_s=10)
    # Then the endpoint got SNS's notification
    ((_path, headers, body),) = hooks.requests
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["x-amz-sns-subscription-arn"] == sub
    assert lowered["x-amz-sns-message-id"] == message_id
    assert json.loads(body)["Message"] == "ping"


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
functions:
  {function}:
    handler: app.listener
"""


def test_a_function_subscribed_by_its_arn_gets_the_sns_event(
    sns: Any, platform: PlatformProcess, tmp_path: Path
) -> None:
    # Given a function deployed to the default stage, subscribed by its Lambda ARN
    service, function = unique("svc"), f"listen{uuid.uuid4().hex[:8]}"
    out = tmp_path / "events.jsonl"
    manifest = LISTENER_MANIFEST.format(service=service, out=out, function=function)
    app = write_app(tmp_path / "app", manifest, {"app.py": LISTENER})
    platform.cli("deploy", str(app), check=True)
    try:
        topic = sns.create_topic(Name=unique("fn"))["TopicArn"]
        function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"
        sub = sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=function_arn)
        (listed,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        assert (listed["Protocol"], listed["Endpoint"]) == ("lambda", function_arn)
        # When a message is published
        attributes = {"kind": {"DataType": "String", "StringValue": "order"}}
        message_id = sns.publish(
            TopicArn=topic, Message="order 7", Subject="new", MessageAttributes=attributes
        )["MessageId"]
        # Then the function runs once with SNS's Lambda event
        assert wait_until(lambda: out.exists() and bool(out.read_text().strip()), timeout_s=30)
        (line,) = out.read_text().splitlines()
        (record,) = json.loads(line)["Records"]
        assert record["EventSource"] == "aws:sns"
        assert record["EventSubscriptionArn"] == sub["SubscriptionArn"]
        event = record["Sns"]
        assert (event["MessageId"], event["TopicArn"]) == (message_id, topic)
        assert (event["Message"], event["Subject"]) == ("order 7", "new")
        assert event["MessageAttributes"] == {"kind": {"Type": "String", "Value": "order"}}
        # And a qualified or foreign ARN is refused
        with pytest.raises(sns.exceptions.InvalidParameterException):
            sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=function_arn + ":1")
    finally:
        platform.cli("remove", "--service", service, check=True)


def test_errors_carry_sns_codes_and_statuses(sns: Any, sqs: Any) -> None:
    missing = f"arn:aws:sns:{REGION}:{ACCOUNT}:{unique('missing')}"
    # An unknown topic is NotFound (404) for every operation that names one
    for call in (
        lambda: sns.publish(TopicArn=missing, Message="x"),
        lambda: sns.publish_batch(
            TopicArn=missing, PublishBatchRequestEntries=[{"Id": "a", "Message": "x"}]
        ),
        lambda: sns.subscribe(TopicArn=missing, Protocol="http", Endpoint="http://127.0.0.1/"),
        lambda: sns.list_subscriptions_by_topic(TopicArn=missing),
        lambda: sns.get_topic_attributes(TopicArn=missing),
    ):
        with pytest.raises(sns.exceptions.NotFoundException) as caught:
            call()
        error = caught.value.response
        assert error["Error"]["Code"] == "NotFound" and missing.rsplit(":", 1)[-1] in str(error)
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    # A bad filter policy, an unsupported protocol, a malformed ARN are InvalidParameter
    topic = sns.create_topic(Name=unique("errors"))["TopicArn"]
    _, queue_arn = queue(sqs, unique("errors-q"))
    for kwargs in (
        {"Protocol": "sqs", "Endpoint": queue_arn, "Attributes": {"FilterPolicy": "{bad"}},
        {"Protocol": "email", "Endpoint": "me@example.com"},
        {"Protocol": "https", "Endpoint": "http://example.com/"},
    ):
        with pytest.raises(sns.exceptions.InvalidParameterException):
            sns.subscribe(TopicArn=topic, **kwargs)
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.publish(TopicArn="not-an-arn", Message="x")
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.publish(TopicArn=topic, Message="x", MessageStructure="xml")
    # A bad message attribute is ParameterValueInvalid
    with pytest.raises(sns.exceptions.InvalidParameterValueException):
        sns.publish(
            TopicArn=topic,
            Message="x",
            MessageAttributes={"a": {"DataType": "Text", "StringValue": "v"}},
        )
    # Another account's topic is AuthorizationError (403)
    foreign = topic.replace(ACCOUNT, "123456789012")
    with pytest.raises(sns.exceptions.AuthorizationErrorException) as denied:
        sns.publish(TopicArn=foreign, Message="x")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # An action unkai does not serve answers 501, naming it
    with pytest.raises(ClientError) as unsupported:
        sns.set_topic_attributes(TopicArn=topic, AttributeName="DisplayName", AttributeValue="x")
    assert unsupported.value.response["Error"]["Code"] == "InvalidAction"
    assert "SetTopicAttributes" in unsupported.value.response["Error"]["Message"]
    assert unsupported.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501


def aws_cli(platform: PlatformProcess, tmp_path: Path, *args: str) -> Any:
    """Run the real AWS CLI (`python -m awscli`) against the platform; its JSON output."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "awscli",
            *args,
            "--endpoint-url",
            platform.url,
            "--region",
            REGION,
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def test_the_aws_cli_creates_publishes_and_lists(
    platform: PlatformProcess, sqs: Any, tmp_path: Path
) -> None:
    # Given a topic created with the AWS CLI, and a raw queue subscribed with it
    name = unique("awscli")
    created = aws_cli(platform, tmp_path, "sns", "create-topic", "--name", name)
    arn = created["TopicArn"]
    assert arn == f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"
    url, queue_arn = queue(sqs, unique("awscli-q"))
    aws_cli(
        platform,
        tmp_path,
        "sns",
        "subscribe",
        "--topic-arn",
        arn,
        "--protocol",
        "sqs",
        "--notification-endpoint",
        queue_arn,
        "--attributes",
        "RawMessageDelivery=true",
    )
    # When a message is published with it
    published = aws_cli(
        platform, tmp_path, "sns", "publish", "--topic-arn", arn, "--message", "from the cli"
    )
    assert uuid.UUID(published["MessageId"])
    # Then the queue gets it, and list-topics shows the topic
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)
    assert [m["Body"] for m in got["Messages"]] == ["from the cli"]
    listed = aws_cli(platform, tmp_path, "sns", "list-topics")
    assert {"TopicArn": arn} in listed["Topics"]


def test_a_fifo_queue_cannot_subscribe_to_a_standard_topic(sns: Any, sqs: Any) -> None:
    # Given a standard topic and a FIFO queue
    topic = sns.create_topic(Name=unique("std-topic"))["TopicArn"]
    url = sqs.create_queue(
        QueueName=unique("fifo-sub") + ".fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    # When the queue subscribes / Then SNS refuses it (deliveries could never be sent)
    with pytest.raises(ClientError) as caught:
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["QueueArn"])
    assert caught.value.response["Error"]["Code"] == "InvalidParameter"
    assert "FIFO" in caught.value.response["Error"]["Message"]
