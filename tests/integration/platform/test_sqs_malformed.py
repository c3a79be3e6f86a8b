"""Malformed SQS requests, in both protocols, against the platform: each gets SQS's 400 with
its error code, and none is left without an answer. The clients read for at most 10 s and never
retry, so a request the platform leaves hanging fails its test instead of stalling it.

boto3 runs with `parameter_validation=False` so that it sends what its model would refuse
(`{"QueueNamePrefix": 5}`), as clients without a model, or with an older one, do; the query
protocol's forms are signed by hand, as `curl --aws-sigv4` sends them."""

from __future__ import annotations

import itertools
import json
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.integration.platform_process import PlatformProcess

_names = itertools.count(1)
#: Long enough for any answer; a hang fails the test rather than waiting out a default.
READ_TIMEOUT_S = 10
#: One digit more than int() converts (https://docs.python.org/3/library/stdtypes.html#int-max-str-digits).
TOO_MANY_DIGITS = "9" * 4301


@pytest.fixture(scope="module")
def sqs(platform: PlatformProcess) -> Any:
    """boto3's SQS JSON client that sends what it is given and asks once."""
    return platform.aws(
        "sqs",
        Config(
            read_timeout=READ_TIMEOUT_S,
            connect_timeout=READ_TIMEOUT_S,
            retries={"total_max_attempts": 1},
            parameter_validation=False,
        ),
    )


def unique(prefix: str) -> str:
    return f"bad-{prefix}-{next(_names)}"


def error_of(call: Any, **kwargs: Any) -> tuple[int, str]:
    """(HTTP status, error code as boto3 reports it) of a call that must fail."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], str(response["Error"]["Code"])


def signed_post(platform: PlatformProcess, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """A POST to the SQS endpoint signed with SigV4, as an SDK without a model sends it."""
    url = f"{platform.url}/"
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials("x", "x"), "sqs", "us-east-1").add_auth(request)
    return httpx.post(
        url, content=body, headers=dict(request.headers.items()), timeout=READ_TIMEOUT_S
    )


def json_error(
    platform: PlatformProcess, operation: str, members: dict[str, Any]
) -> tuple[int, str, str]:
    """(status, `__type`'s code, the query code boto3 reports) of a JSON-protocol request
    that must fail; the body is sent as given, which boto3 could not serialize."""
    answer = signed_post(
        platform,
        json.dumps(members).encode(),
        {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"AmazonSQS.{operation}",
        },
    )
    kind = str(answer.json()["__type"]).rpartition("#")[2]
    query_code = answer.headers.get("x-amzn-query-error", "").partition(";")[0]
    return answer.status_code, kind, query_code


def query(platform: PlatformProcess, params: dict[str, str]) -> tuple[int, str, str, str]:
    """(status, error Type, error Code, Message) of a signed query-protocol form that must fail."""
    answer = signed_post(
        platform,
        str(httpx.QueryParams(params)).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    found = ElementTree.fromstring(answer.content).find("Error")
    assert found is not None, answer.text
    return (
        answer.status_code,
        found.findtext("Type") or "",
        found.findtext("Code") or "",
        found.findtext("Message") or "",
    )


# -- ListQueues -------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["abc", "²", "-1", TOO_MANY_DIGITS])
def test_list_queues_refuses_a_next_token_it_did_not_give(sqs: Any, token: str) -> None:
    # When a client pages with a token that is not one of unkai's offsets
    status, code = error_of(sqs.list_queues, NextToken=token, MaxResults=5)

    # Then SQS's parameter error answers it
    assert (status, code) == (400, "InvalidParameterValue")


@pytest.mark.parametrize("prefix", [5, ["a"], {"a": "b"}, True])
def test_list_queues_refuses_a_prefix_that_is_not_a_string(sqs: Any, prefix: object) -> None:
    status, code = error_of(sqs.list_queues, QueueNamePrefix=prefix)
    assert (status, code) == (400, "InvalidParameterValue")


@pytest.mark.parametrize("max_results", [0, -1, 1001, "5", 2.5])
def test_list_queues_refuses_max_results_outside_1_to_1000(sqs: Any, max_results: object) -> None:
    status, code = error_of(sqs.list_queues, MaxResults=max_results)
    assert (status, code) == (400, "InvalidParameterValue")


def test_list_queues_pages_with_max_results_and_its_tokens(sqs: Any) -> None:
    # Given three queues under one prefix
    prefix = unique("page")
    urls = [sqs.create_queue(QueueName=f"{prefix}-{i}")["QueueUrl"] for i in range(3)]

    # When they are listed two at a time, and at the limit of 1000
    first = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=2)
    second = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=2, NextToken=first["NextToken"])
    whole = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=1000)

    # Then the token leads to the rest, and the last page has none
    assert first["QueueUrls"] == urls[:2]
    assert second["QueueUrls"] == urls[2:] and "NextToken" not in second
    assert whole["QueueUrls"] == urls and "NextToken" not in whole


# -- the other operations' members ---------------------------------------------------------


def test_start_message_move_task_refuses_a_destination_that_is_not_a_string(sqs: Any) -> None:
    # Given a dead-letter queue
    url = sqs.create_queue(QueueName=unique("dlq"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]

    # When the move names a destination of the wrong type
    status, code = error_of(sqs.start_message_move_task, SourceArn=arn, DestinationArn=5)

    # Then it is refused before anything moves
    assert (status, code) == (400, "InvalidParameterValue")


_RECEIPT = "1:0123456789abcdef01"


@pytest.mark.parametrize(
    ("operation", "members", "expected"),
    [
        ("GetQueueAttributes", {"AttributeNames": 5}, "InvalidParameterValue"),
        ("GetQueueAttributes", {"AttributeNames": [1]}, "InvalidParameterValue"),
        ("SetQueueAttributes", {"Attributes": {"DelaySeconds": 5}}, "InvalidParameterValue"),
        ("SetQueueAttributes", {"Attributes": ["DelaySeconds"]}, "InvalidParameterValue"),
        ("ReceiveMessage", {"MessageSystemAttributeNames": "All"}, "InvalidParameterValue"),
        ("ReceiveMessage", {"AttributeNames": {"All": "All"}}, "InvalidParameterValue"),
        ("ReceiveMessage", {"MaxNumberOfMessages": "5"}, "InvalidParameterValue"),
        ("ReceiveMessage", {"WaitTimeSeconds": True}, "InvalidParameterValue"),
        ("DeleteMessage", {"ReceiptHandle": 5}, "InvalidParameterValue"),
        (
            "ChangeMessageVisibility",
            {"ReceiptHandle": _RECEIPT, "VisibilityTimeout": "5"},
            "InvalidParameterValue",
        ),
        ("ChangeMessageVisibility", {"ReceiptHandle": _RECEIPT}, "MissingParameter"),
        (
            "SendMessageBatch",
            {"Entries": [{"Id": 5, "MessageBody": "x"}]},
            "InvalidBatchEntryId",
        ),
        (
            "DeleteMessageBatch",
            {"Entries": [{"Id": "a", "ReceiptHandle": [_RECEIPT]}]},
            "InvalidParameterValue",
        ),
        (
            "ChangeMessageVisibilityBatch",
            {"Entries": [{"Id": "a", "ReceiptHandle": _RECEIPT, "VisibilityTimeout": "0"}]},
            "InvalidParameterValue",
        ),
        ("DeleteQueue", {"QueueUrl": 5}, "InvalidParameterValue"),
    ],
)
def test_members_of_the_wrong_type_are_sqs_errors(
    platform: PlatformProcess, sqs: Any, operation: str, members: dict[str, Any], expected: str
) -> None:
    # Given a queue
    url = sqs.create_queue(QueueName=unique("types"))["QueueUrl"]

    # When a JSON request gives one member of the wrong type
    status, kind, query_code = json_error(platform, operation, {"QueueUrl": url, **members})

    # Then SQS's 400 names it, in `__type` and in the query code boto3 reports
    assert (status, kind) == (400, expected)
    assert query_code.removeprefix("AWS.SimpleQueueService.") == expected


def test_create_queue_refuses_attribute_values_that_are_not_strings(sqs: Any) -> None:
    name = unique("create")
    status, code = error_of(sqs.create_queue, QueueName=name, Attributes={"DelaySeconds": 5})
    assert (status, code) == (400, "InvalidParameterValue")
    # And no queue was made
    assert sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", []) == []


def test_a_receive_with_bad_message_attribute_names_leaves_the_message_visible(sqs: Any) -> None:
    # Given a message with an attribute, on a queue that hides a received message for 30 s
    url = sqs.create_queue(QueueName=unique("recv"), Attributes={"VisibilityTimeout": "30"})[
        "QueueUrl"
    ]
    attributes = {"trace": {"DataType": "String", "StringValue": "t-1"}}
    sqs.send_message(QueueUrl=url, MessageBody="keep me", MessageAttributes=attributes)

    # When a receive names its message attributes with a number
    status, code = error_of(sqs.receive_message, QueueUrl=url, MessageAttributeNames=[1])

    # Then it is refused, and the message was not taken: the next receive gets it, received once
    assert (status, code) == (400, "InvalidParameterValue")
    got = sqs.receive_message(
        QueueUrl=url,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["ApproximateReceiveCount"],
        WaitTimeSeconds=0,
    )["Messages"]
    assert [m["Body"] for m in got] == ["keep me"]
    assert got[0]["Attributes"] == {"ApproximateReceiveCount": "1"}
    assert got[0]["MessageAttributes"] == {"trace": {"StringValue": "t-1", "DataType": "String"}}


def test_list_dead_letter_source_queues_pages_within_1_to_1000(sqs: Any) -> None:
    # Given a dead-letter queue with two source queues
    dlq = sqs.create_queue(QueueName=unique("dls"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})
    prefix = unique("dls-src")
    sources = [
        sqs.create_queue(QueueName=f"{prefix}-{i}", Attributes={"RedrivePolicy": policy})[
            "QueueUrl"
        ]
        for i in range(2)
    ]

    # When they are listed one at a time, and with MaxResults out of range
    first = sqs.list_dead_letter_source_queues(QueueUrl=dlq, MaxResults=1)
    second = sqs.list_dead_letter_source_queues(
        QueueUrl=dlq, MaxResults=1, NextToken=first["NextToken"]
    )

    # Then the pages hold one source each, and 0 is refused
    assert first["queueUrls"] + second["queueUrls"] == sources
    assert "NextToken" not in second
    assert error_of(sqs.list_dead_letter_source_queues, QueueUrl=dlq, MaxResults=0) == (
        400,
        "InvalidParameterValue",
    )


# -- the query protocol ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        {"NextToken": "abc"},
        {"NextToken": "²"},
        {"NextToken": TOO_MANY_DIGITS, "MaxResults": "5"},
        {"MaxResults": "0"},
        {"MaxResults": "-1"},
        {"MaxResults": "1001"},
        {"QueueNamePrefix.1": "a"},
    ],
)
def test_query_list_queues_refuses_bad_pages_and_prefixes(
    platform: PlatformProcess, form: dict[str, str]
) -> None:
    assert query(platform, {"Action": "ListQueues", **form})[:3] == (
        400,
        "Sender",
        "InvalidParameterValue",
    )


def test_query_members_of_the_wrong_shape_are_sqs_errors(
    platform: PlatformProcess, sqs: Any
) -> None:
    # Given a queue
    url = sqs.create_queue(QueueName=unique("query"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]

    # When a form gives a map where a string goes, or numbers its entries with a non-ASCII digit
    move = query(
        platform, {"Action": "StartMessageMoveTask", "SourceArn": arn, "DestinationArn.a": "x"}
    )
    batch = query(
        platform,
        {
            "Action": "SendMessageBatch",
            "QueueUrl": url,
            "SendMessageBatchRequestEntry.².Id": "a",
            "SendMessageBatchRequestEntry.².MessageBody": "x",
        },
    )

    # Then each is SQS's error response, naming the parameter
    assert move[:3] == (400, "Sender", "InvalidParameterValue")
    assert "DestinationArn" in move[3]
    assert batch[:3] == (400, "Sender", "MalformedQueryString")
    assert "SendMessageBatchRequestEntry" in batch[3]
