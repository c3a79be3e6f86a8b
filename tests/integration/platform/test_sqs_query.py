"""SQS's query protocol (form posts answered with XML), as older SDKs speak it, against the
platform: boto3 driven by SQS's query model (botocore's current model with the protocol and
the element names botocore shipped until SQS moved to JSON), and signed raw forms as `curl`
users and the Java v1 SDK send them. The digests the SDKs check are computed here from AWS's
documented algorithm."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import threading
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import boto3
import botocore
import botocore.session
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.loaders import Loader

from tests.integration.platform_process import PlatformProcess

_names = itertools.count(1)
_JSON_MODEL = Path(botocore.__file__).parent / "data" / "sqs" / "2012-11-05" / "service-2.json.gz"
_XMLNS = "{http://queue.amazonaws.com/doc/2012-11-05/}"
#: The query model's element names that SQS's JSON model dropped (its `locationName`s): the
#: member of each flattened list of strings (lists of structures use the structure's name)...
_LIST_MEMBERS = {
    "AttributeNameList": "AttributeName",
    "MessageAttributeNameList": "MessageAttributeName",
    "MessageSystemAttributeList": "MessageSystemAttributeName",
    "QueueUrlList": "QueueUrl",
    "StringList": "StringListValue",
    "BinaryList": "BinaryListValue",
    "TagKeyList": "TagKey",
    "AWSAccountIdList": "AWSAccountId",
    "ActionNameList": "ActionName",
}
#: ... the structure members with a singular name ...
_MEMBERS = {
    "Attributes": "Attribute",
    "MessageAttributes": "MessageAttribute",
    "MessageSystemAttributes": "MessageSystemAttribute",
    "tags": "Tag",
    "Tags": "Tag",
    "StringListValues": "StringListValue",
    "BinaryListValues": "BinaryListValue",
}
#: ... and the errors' query codes, which name boto3's exception classes.
_ERROR_CODES = {
    "QueueDoesNotExist": "AWS.SimpleQueueService.NonExistentQueue",
    "QueueNameExists": "QueueAlreadyExists",
    "PurgeQueueInProgress": "AWS.SimpleQueueService.PurgeQueueInProgress",
    "BatchEntryIdsNotDistinct": "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
    "TooManyEntriesInBatchRequest": "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    "EmptyBatchRequest": "AWS.SimpleQueueService.EmptyBatchRequest",
}


def query_model() -> dict[str, Any]:
    """SQS's service model with the query protocol, as botocore shipped it before 2023."""
    model: dict[str, Any] = json.loads(gzip.decompress(_JSON_MODEL.read_bytes()))
    metadata = model["metadata"]
    for key in ("jsonVersion", "targetPrefix", "awsQueryCompatible"):
        metadata.pop(key, None)
    metadata.update(
        protocol="query",
        protocols=["query"],
        xmlNamespace="http://queue.amazonaws.com/doc/2012-11-05/",
    )
    for name, operation in model["operations"].items():
        if "output" in operation:
            operation["output"]["resultWrapper"] = f"{name}Result"
    for name, shape in model["shapes"].items():
        if shape["type"] == "list":
            member = shape["member"]
            member["locationName"] = _LIST_MEMBERS.get(name, member["shape"])
        elif shape["type"] == "map":
            shape["key"]["locationName"] = "Key" if name == "TagMap" else "Name"
            shape["value"]["locationName"] = "Value"
        for member_name, member in shape.get("members", {}).items():
            if member_name in _MEMBERS:
                member["locationName"] = _MEMBERS[member_name]
        if name in _ERROR_CODES:
            shape["error"] = {"code": _ERROR_CODES[name], "httpStatusCode": 400}
    return model


@pytest.fixture(scope="module")
def sqs(platform: PlatformProcess, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """boto3's SQS client speaking the query protocol."""
    models = tmp_path_factory.mktemp("models")
    path = models / "sqs" / "2012-11-05" / "service-2.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(query_model()))
    session = botocore.session.Session()
    session.register_component("data_loader", Loader(extra_search_paths=[str(models)]))
    client = boto3.Session(botocore_session=session).client(
        "sqs",
        endpoint_url=platform.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    assert client.meta.service_model.protocol == "query"
    return client


@pytest.fixture(scope="module")
def json_sqs(platform: PlatformProcess) -> Any:
    return platform.aws("sqs")


def unique(prefix: str) -> str:
    return f"query-{prefix}-{next(_names)}"


def md5_of_attributes(attributes: dict[str, dict[str, Any]]) -> str:
    """MD5OfMessageAttributes as AWS computes it: per attribute, sorted by name, the
    length-prefixed name, data type, a transport byte (1 string, 2 binary) and the value
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html)."""
    encoded = b""
    for name in sorted(attributes):
        value = attributes[name]
        data_type = value["DataType"]
        for part in (name.encode(), data_type.encode()):
            encoded += len(part).to_bytes(4, "big") + part
        if "BinaryValue" in value:
            raw, transport = value["BinaryValue"], b"\x02"
        else:
            raw, transport = value["StringValue"].encode(), b"\x01"
        encoded += transport + len(raw).to_bytes(4, "big") + raw
    return hashlib.md5(encoded).hexdigest()


def signed_form(platform: PlatformProcess, path: str, params: dict[str, str]) -> httpx.Response:
    """A form post signed with SigV4, as an SDK without a model (or curl with --aws-sigv4)."""
    url = f"{platform.url}{path}"
    body = str(httpx.QueryParams(params)).encode()
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    SigV4Auth(Credentials("x", "x"), "sqs", "us-east-1").add_auth(request)
    return httpx.post(url, content=body, headers=dict(request.headers.items()), timeout=30.0)


def test_queue_lifecycle_attributes_redrive_and_listing(
    sqs: Any, platform: PlatformProcess
) -> None:
    # Given a dead-letter queue and a queue created with attributes and a redrive policy
    prefix = unique("life")
    dlq = sqs.create_queue(QueueName=f"{prefix}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    url = sqs.create_queue(
        QueueName=f"{prefix}-main",
        Attributes={"VisibilityTimeout": "7", "DelaySeconds": "1", "RedrivePolicy": policy},
    )["QueueUrl"]

    # Then the URLs, listings and attributes read back as SQS gives them
    assert url == f"{platform.url}/000000000000/{prefix}-main"
    assert sqs.get_queue_url(QueueName=f"{prefix}-main")["QueueUrl"] == url
    assert sorted(sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"]) == [dlq, url]
    page = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=1)
    assert len(page["QueueUrls"]) == 1 and page["NextToken"]
    rest = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=1, NextToken=page["NextToken"])
    assert page["QueueUrls"] + rest["QueueUrls"] == sorted([dlq, url]) and "NextToken" not in rest
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["VisibilityTimeout", "DelaySeconds", "RedrivePolicy"]
    )["Attributes"]
    assert attributes["VisibilityTimeout"] == "7" and attributes["DelaySeconds"] == "1"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": 3,
    }
    assert "ApproximateNumberOfMessages" in sqs.get_queue_attributes(QueueUrl=url)["Attributes"]
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [url]

    # When the attributes change, then they read back changed
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={
            "DelaySeconds": "0",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
        },
    )
    changed = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert changed["DelaySeconds"] == "0"
    assert json.loads(changed["RedrivePolicy"])["maxReceiveCount"] == 5

    # When the queue is deleted, then naming it is SQS's NonExistentQueue error
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as caught:
        sqs.get_queue_url(QueueName=f"{prefix}-main")
    error = caught.value.response["Error"]
    assert error["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert error["Type"] == "Sender"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=url, MessageBody="nobody home")


def test_send_and_receive_with_attributes_and_digests(sqs: Any) -> None:
    # Given a queue and a message whose body XML would otherwise change (CR, markup, emoji)
    url = sqs.create_queue(QueueName=unique("msgs"))["QueueUrl"]
    body = 'line one\r\nline two & <three attr="4">\t\U0001f600'
    attributes = {
        "trace.id": {"DataType": "String", "StringValue": "t-1 & <ok>"},
        "size": {"DataType": "Number", "StringValue": "3.5"},
        "blob": {"DataType": "Binary.gz", "BinaryValue": b"\x00\x01\xffbinary"},
    }

    # When it is sent
    sent = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)

    # Then the digests are AWS's
    assert sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(attributes)

    # When it is received with chosen system and message attributes
    [message] = sqs.receive_message(
        QueueUrl=url,
        AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        MessageAttributeNames=["trace.*", "blob"],
        WaitTimeSeconds=5,
        VisibilityTimeout=30,
    )["Messages"]

    # Then the body is byte for byte the one sent, and the digests cover what is shown
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == body
    assert message["MD5OfBody"] == hashlib.md5(body.encode()).hexdigest()
    assert set(message["Attributes"]) == {"ApproximateReceiveCount", "SentTimestamp"}
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    shown = {k: attributes[k] for k in ("trace.id", "blob")}
    assert message["MessageAttributes"] == shown
    assert message["MD5OfMessageAttributes"] == md5_of_attributes(shown)

    # When its visibility is changed to 0, then it is received again, and deleted it is gone
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    [again] = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], WaitTimeSeconds=5)[
        "Messages"
    ]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert "MessageAttributes" not in again  # none asked for
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)


def test_long_poll_returns_when_a_message_arrives(sqs: Any, json_sqs: Any) -> None:
    # Given a receive waiting up to 20 s on an empty queue
    url = sqs.create_queue(QueueName=unique("wait"))["QueueUrl"]
    received: list[dict[str, Any]] = []
    waiter = threading.Thread(
        target=lambda: received.append(
            sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20, MessageAttributeNames=["All"])
        )
    )
    waiter.start()

    # When the JSON protocol sends a message
    sent = json_sqs.send_message(
        QueueUrl=url,
        MessageBody="hello",
        MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}},
    )
    waiter.join(timeout=30)

    # Then the query receive gets it with the same digests (one queue, two protocols)
    [message] = received[0]["Messages"]
    assert message["Body"] == "hello"
    assert message["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]


def test_batches_report_failed_entries_on_their_own(sqs: Any) -> None:
    # Given a queue and a batch with one entry over the delay limit
    url = sqs.create_queue(QueueName=unique("batch"))["QueueUrl"]
    attributes = {"n": {"DataType": "Number", "StringValue": "1"}}
    sent = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "a", "MessageBody": "alpha", "MessageAttributes": attributes},
            {"Id": "b", "MessageBody": "beta", "DelaySeconds": 0},
            {"Id": "c", "MessageBody": "gamma", "DelaySeconds": 901},
        ],
    )

    # Then the good entries succeed with digests and the bad one fails alone
    assert [s["Id"] for s in sent["Successful"]] == ["a", "b"]
    assert sent["Successful"][0]["MD5OfMessageBody"] == hashlib.md5(b"alpha").hexdigest()
    assert sent["Successful"][0]["MD5OfMessageAttributes"] == md5_of_attributes(attributes)
    assert "MD5OfMessageAttributes" not in sent["Successful"][1]
    [failed] = sent["Failed"]
    assert failed["Id"] == "c" and failed["Code"] == "InvalidParameterValue"
    assert failed["SenderFault"] is True and "DelaySeconds" in failed["Message"]

    # When visibility changes in a batch with one bad receipt
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=5)["Messages"]
    while len(got) < 2:
        got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=5)[
            "Messages"
        ]
    changed = sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "x", "ReceiptHandle": got[0]["ReceiptHandle"], "VisibilityTimeout": 0},
            {"Id": "y", "ReceiptHandle": "not-a-receipt", "VisibilityTimeout": 0},
        ],
    )
    # Then only that entry fails
    assert [s["Id"] for s in changed["Successful"]] == ["x"]
    assert changed["Failed"][0]["Id"] == "y"
    assert changed["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"

    # When the messages are deleted in a batch with one bad receipt
    again = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
    deleted = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "first", "ReceiptHandle": again[0]["ReceiptHandle"]},
            {"Id": "second", "ReceiptHandle": got[1]["ReceiptHandle"]},
            {"Id": "bad", "ReceiptHandle": "garbage"},
        ],
    )
    # Then the good ones are gone and the bad one is reported
    assert sorted(s["Id"] for s in deleted["Successful"]) == ["first", "second"]
    assert [(f["Id"], f["Code"]) for f in deleted["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)


def test_whole_request_errors_carry_the_query_codes(sqs: Any) -> None:
    # Given a queue
    url = sqs.create_queue(QueueName=unique("errors"))["QueueUrl"]

    def code(call: Any, **kwargs: Any) -> str:
        with pytest.raises(ClientError) as caught:
            call(QueueUrl=url, **kwargs)
        return str(caught.value.response["Error"]["Code"])

    # Then each rule broken answers SQS's query code
    too_many = [{"Id": str(i), "MessageBody": "x"} for i in range(11)]
    with pytest.raises(sqs.exceptions.TooManyEntriesInBatchRequest):
        sqs.send_message_batch(QueueUrl=url, Entries=too_many)
    twice = [{"Id": "a", "MessageBody": "x"}] * 2
    assert code(sqs.send_message_batch, Entries=twice) == (
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
    )
    assert code(sqs.receive_message, MaxNumberOfMessages=11) == "InvalidParameterValue"
    assert code(sqs.delete_message, ReceiptHandle="garbage") == "ReceiptHandleIsInvalid"
    too_long = {"VisibilityTimeout": "99999"}
    assert code(sqs.set_queue_attributes, Attributes=too_long) == "InvalidAttributeValue"
    sqs.purge_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.PurgeQueueInProgress):
        sqs.purge_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueNameExists):
        sqs.create_queue(QueueName=url.rsplit("/", 1)[1], Attributes={"DelaySeconds": "9"})


def test_raw_forms_to_the_queue_path_and_their_xml(platform: PlatformProcess) -> None:
    # Given a queue created by a bare form (indexed attributes, as in AWS's examples)
    name = unique("raw")
    created = signed_form(
        platform,
        "/",
        {
            "Action": "CreateQueue",
            "Version": "2012-11-05",
            "QueueName": name,
            "Attribute.1.Name": "VisibilityTimeout",
            "Attribute.1.Value": "40",
        },
    )
    assert created.status_code == 200 and created.headers["content-type"] == "text/xml"
    root = ElementTree.fromstring(created.content)
    assert root.tag == f"{_XMLNS}CreateQueueResponse"
    queue_url = root.findtext(f"{_XMLNS}CreateQueueResult/{_XMLNS}QueueUrl")
    assert queue_url == f"{platform.url}/000000000000/{name}"
    assert root.findtext(f"{_XMLNS}ResponseMetadata/{_XMLNS}RequestId")

    # When messages are sent and received by posting to the queue's path without QueueUrl
    path = f"/000000000000/{name}"
    sent = signed_form(
        platform,
        path,
        {
            "Action": "SendMessage",
            "MessageBody": "a+b c",
            "MessageAttribute.1.Name": "color",
            "MessageAttribute.1.Value.DataType": "String",
            "MessageAttribute.1.Value.StringValue": "blue",
        },
    )
    result = ElementTree.fromstring(sent.content).find(f"{_XMLNS}SendMessageResult")
    assert result is not None
    assert result.findtext(f"{_XMLNS}MD5OfMessageBody") == hashlib.md5(b"a+b c").hexdigest()
    assert result.findtext(f"{_XMLNS}MD5OfMessageAttributes") == md5_of_attributes(
        {"color": {"DataType": "String", "StringValue": "blue"}}
    )
    received = signed_form(
        platform,
        path,
        {"Action": "ReceiveMessage", "AttributeName": "All", "MessageAttributeName.1": "All"},
    )

    # Then the answer has SQS's flattened elements
    message = ElementTree.fromstring(received.content).find(
        f"{_XMLNS}ReceiveMessageResult/{_XMLNS}Message"
    )
    assert message is not None and message.findtext(f"{_XMLNS}Body") == "a+b c"
    system = {
        a.findtext(f"{_XMLNS}Name"): a.findtext(f"{_XMLNS}Value")
        for a in message.findall(f"{_XMLNS}Attribute")
    }
    assert system["ApproximateReceiveCount"] == "1" and "SentTimestamp" in system
    [attribute] = message.findall(f"{_XMLNS}MessageAttribute")
    assert attribute.findtext(f"{_XMLNS}Name") == "color"
    assert attribute.findtext(f"{_XMLNS}Value/{_XMLNS}DataType") == "String"
    assert attribute.findtext(f"{_XMLNS}Value/{_XMLNS}StringValue") == "blue"

    # And an action without output answers only its metadata
    deleted = signed_form(platform, path, {"Action": "DeleteQueue"})
    root = ElementTree.fromstring(deleted.content)
    assert [child.tag for child in root] == [f"{_XMLNS}ResponseMetadata"]


def test_raw_form_errors_are_error_responses(platform: PlatformProcess) -> None:
    # When a form names a missing queue, omits the action, or sends a word for a number
    missing = signed_form(platform, "/000000000000/no-such-queue", {"Action": "PurgeQueue"})
    no_action = signed_form(platform, "/", {"QueueName": "x"})
    not_a_number = signed_form(
        platform,
        "/",
        {"Action": "ReceiveMessage", "QueueUrl": "/000000000000/x", "WaitTimeSeconds": "ten"},
    )

    # Then each is an ErrorResponse with SQS's type and code
    def error(answer: httpx.Response) -> tuple[int, str | None, str | None]:
        found = ElementTree.fromstring(answer.content).find("Error")
        assert found is not None, answer.text
        return answer.status_code, found.findtext("Type"), found.findtext("Code")

    assert error(missing) == (400, "Sender", "AWS.SimpleQueueService.NonExistentQueue")
    assert error(no_action) == (400, "Sender", "MissingAction")
    assert error(not_a_number) == (400, "Sender", "InvalidParameterValue")
    assert "WaitTimeSeconds" in not_a_number.text


def test_binary_attributes_round_trip_as_base64(sqs: Any) -> None:
    # Given a binary attribute sent by the query protocol (base64 in the form)
    url = sqs.create_queue(QueueName=unique("binary"))["QueueUrl"]
    raw = bytes(range(256))
    sqs.send_message(
        QueueUrl=url,
        MessageBody="b",
        MessageAttributes={"data": {"DataType": "Binary", "BinaryValue": raw}},
    )

    # When it is received, then it is the same bytes (base64 in the XML)
    [message] = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert message["MessageAttributes"]["data"]["BinaryValue"] == raw
