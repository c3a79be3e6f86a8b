"""XML-safe answers against the platform: SNS and SQS refuse at input the characters XML 1.0
cannot carry (SNS `InvalidParameter` naming the parameter, SQS `InvalidAttributeValue` for a
queue attribute over both protocols), so what they store stays readable by boto3; and the
query form is UTF-8, raw bytes as percent-escapes, with anything else refused.

boto3's SNS client speaks the query protocol and its SQS client the JSON protocol; SQS's query
protocol and raw (not percent-escaped) bytes are posted as signed forms with httpx.
"""

from __future__ import annotations

import itertools
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.integration.platform_process import PlatformProcess

REGION = "us-east-1"
_SQS_XMLNS = "{http://queue.amazonaws.com/doc/2012-11-05/}"
_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"xml-{prefix}-{next(_names)}"


def signed_post(
    platform: PlatformProcess, service: str, body: bytes, path: str = "/"
) -> httpx.Response:
    """A form body posted as given (raw bytes stay raw), signed with SigV4 for `service`."""
    url = f"{platform.url}{path}"
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials("x", "x"), service, REGION).add_auth(request)
    return httpx.post(url, content=body, headers=dict(request.headers.items()), timeout=30.0)


def signed_form(platform: PlatformProcess, service: str, params: dict[str, str]) -> httpx.Response:
    return signed_post(platform, service, str(httpx.QueryParams(params)).encode())


def query_error(answer: httpx.Response) -> tuple[int, str | None, str]:
    """(status, code, message) of a query protocol's ErrorResponse."""
    found = ElementTree.fromstring(answer.content).find("Error")
    assert found is not None, answer.text
    return answer.status_code, found.findtext("Code"), found.findtext("Message") or ""


def client_error(error: ClientError) -> tuple[int, str, str]:
    response = error.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


# -- SNS ------------------------------------------------------------------------------------


def test_sns_create_topic_with_a_control_character_is_refused(
    sns: Any, platform: PlatformProcess
) -> None:
    # Given a topic name
    name = unique("create")

    # When CreateTopic carries a control character in an attribute, by form and by boto3
    answer = signed_form(
        platform,
        "sns",
        {
            "Action": "CreateTopic",
            "Name": name,
            "Attributes.entry.1.key": "DisplayName",
            "Attributes.entry.1.value": "a\x01b",
        },
    )
    with pytest.raises(ClientError) as caught:
        sns.create_topic(Name=name, Attributes={"DisplayName": "a\x01b"})

    # Then both are SNS's InvalidParameter naming the parameter, and no topic was made
    status, code, message = query_error(answer)
    assert (status, code) == (400, "InvalidParameter")
    assert message.startswith("Invalid parameter: Attributes.entry.1.value")
    assert client_error(caught.value)[:2] == (400, "InvalidParameter")
    listed = [
        t["TopicArn"]
        for page in sns.get_paginator("list_topics").paginate()
        for t in page["Topics"]
    ]
    assert not [arn for arn in listed if arn.endswith(f":{name}")]


def test_sns_set_topic_attributes_refused_leaves_the_topic_readable(sns: Any) -> None:
    # Given a topic with a display name
    arn = sns.create_topic(Name=unique("set"), Attributes={"DisplayName": "before"})["TopicArn"]

    # When SetTopicAttributes carries a control character
    with pytest.raises(ClientError) as caught:
        sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="a\x01b")

    # Then it is InvalidParameter naming AttributeValue, and boto3 still reads the topic as it was
    status, code, message = client_error(caught.value)
    assert (status, code) == (400, "InvalidParameter")
    assert message.startswith("Invalid parameter: AttributeValue")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "before"


@pytest.mark.parametrize(
    ("extra", "parameter"),
    [
        ({"Message": "a\x01b"}, "Message"),
        ({"Message": "ok", "Subject": "a\x01b"}, "Subject"),
        (
            {
                "Message": "ok",
                "MessageAttributes": {"k": {"DataType": "String", "StringValue": "a\x01b"}},
            },
            "MessageAttributes.entry.1.Value.StringValue",
        ),
    ],
    ids=["message", "subject", "message attribute"],
)
def test_sns_publish_with_a_control_character_is_refused(
    sns: Any, extra: dict[str, Any], parameter: str
) -> None:
    # Given a topic
    arn = sns.create_topic(Name=unique("publish"))["TopicArn"]

    # When a Publish carries a control character
    with pytest.raises(ClientError) as caught:
        sns.publish(TopicArn=arn, **extra)

    # Then it is InvalidParameter naming the parameter
    status, code, message = client_error(caught.value)
    assert (status, code) == (400, "InvalidParameter")
    assert message.startswith(f"Invalid parameter: {parameter} ")


def test_sns_raw_utf8_in_a_form_body_is_stored_as_sent(sns: Any, platform: PlatformProcess) -> None:
    # Given a CreateTopic form whose display name is raw (not percent-escaped) UTF-8
    name = unique("raw")
    body = (
        f"Action=CreateTopic&Name={name}"
        "&Attributes.entry.1.key=DisplayName&Attributes.entry.1.value=caf"
    ).encode() + "é".encode()

    # When it is posted
    answer = signed_post(platform, "sns", body)

    # Then the topic's display name is é, not its latin-1 reading
    assert answer.status_code == 200, answer.text
    arn = ElementTree.fromstring(answer.content).findtext(".//{*}TopicArn")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "café"


@pytest.mark.parametrize("value", [b"caf\xe9", b"caf%E9"], ids=["raw", "percent-escaped"])
def test_sns_form_that_is_not_utf8_is_refused(
    sns: Any, platform: PlatformProcess, value: bytes
) -> None:
    # When a CreateTopic form's display name is latin-1, raw or percent-escaped
    name = unique("latin")
    body = (
        f"Action=CreateTopic&Name={name}"
        "&Attributes.entry.1.key=DisplayName&Attributes.entry.1.value="
    ).encode() + value
    answer = signed_post(platform, "sns", body)

    # Then it is refused with InvalidParameter, and no topic was made
    assert query_error(answer)[:2] == (400, "InvalidParameter")
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.get_topic_attributes(TopicArn=f"arn:aws:sns:{REGION}:000000000000:{name}")


# -- SQS ------------------------------------------------------------------------------------


def test_sqs_json_attribute_values_with_a_control_character_are_refused(sqs: Any) -> None:
    # Given a queue
    name = unique("json")
    url = sqs.create_queue(QueueName=name, Attributes={"Policy": "{}"})["QueueUrl"]

    # When CreateQueue and SetQueueAttributes carry a control character in an attribute value
    with pytest.raises(ClientError) as created:
        sqs.create_queue(QueueName=unique("json"), Attributes={"Policy": "a\x01b"})
    with pytest.raises(ClientError) as set_:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": "a\x01b"})

    # Then both are InvalidAttributeValue naming the attribute, and the queue is as it was
    for caught in (created, set_):
        status, code, message = client_error(caught.value)
        assert (status, code) == (400, "InvalidAttributeValue")
        assert "Policy" in message and "U+0001" in message
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
    assert attributes["Attributes"] == {"Policy": "{}"}


def test_sqs_query_attribute_values_with_a_control_character_are_refused(
    sqs: Any, platform: PlatformProcess
) -> None:
    # Given a queue
    name = unique("query")
    url = sqs.create_queue(QueueName=name, Attributes={"Policy": "{}"})["QueueUrl"]
    bad = {"Attribute.1.Name": "Policy", "Attribute.1.Value": "a\x01b"}

    # When query-protocol CreateQueue and SetQueueAttributes carry a control character
    created = signed_form(
        platform, "sqs", {"Action": "CreateQueue", "QueueName": unique("query"), **bad}
    )
    set_ = signed_form(platform, "sqs", {"Action": "SetQueueAttributes", "QueueUrl": url, **bad})

    # Then both are InvalidAttributeValue, and the queue's XML answer still parses
    for answer in (created, set_):
        status, code, message = query_error(answer)
        assert (status, code) == (400, "InvalidAttributeValue")
        assert "Policy" in message
    shown = signed_form(
        platform,
        "sqs",
        {"Action": "GetQueueAttributes", "QueueUrl": url, "AttributeName.1": "Policy"},
    )
    assert shown.status_code == 200, shown.text
    root = ElementTree.fromstring(shown.content)
    path = f"{_SQS_XMLNS}GetQueueAttributesResult/{_SQS_XMLNS}Attribute/{_SQS_XMLNS}Value"
    assert root.findtext(path) == "{}"


def test_sqs_query_form_that_is_not_utf8_is_refused(platform: PlatformProcess) -> None:
    # When a query-protocol form is latin-1
    body = f"Action=CreateQueue&QueueName={unique('latin')}&Attribute.1.Name=Policy".encode()
    answer = signed_post(platform, "sqs", body + b"&Attribute.1.Value=caf\xe9")

    # Then it is refused as malformed
    assert query_error(answer)[:2] == (400, "MalformedQueryString")


def test_an_error_message_that_echoes_a_control_character_is_still_xml(
    sqs: Any, platform: PlatformProcess
) -> None:
    # Given a query-protocol call whose bad value the error message repeats
    url = sqs.create_queue(QueueName=unique("echo"))["QueueUrl"]
    answer = signed_form(
        platform, "sqs", {"Action": "ReceiveMessage", "QueueUrl": url, "WaitTimeSeconds": "a\x01"}
    )
    # Then the ErrorResponse parses, with the character replaced rather than written raw
    status, code, message = query_error(answer)
    assert status == 400 and code == "InvalidParameterValue", answer.text
    assert "\x01" not in message and "a\ufffd" in message
