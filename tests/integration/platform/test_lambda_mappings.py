"""boto3's `lambda` and `sqs` clients, unchanged but for `endpoint_url`, mapping queues to
functions made through the Lambda API: Create/Get/List/Update/DeleteEventSourceMapping, the
messages the function then processes (or leaves while disabled or deleted), a manifest's
mappings listed read-only, and the error codes boto3 users catch. Each test works in its own
stage (X-Unkai-Stage) with queues named after it."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.platform.test_lambda_api import create, error_of, lambda_client, zip_of
from tests.integration.platform_process import PlatformProcess, wait_until, write_app

ARN = "arn:aws:lambda:us-east-1:000000000000:"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

APP = """
import json, os

def handler(event, context):
    with open(os.environ["OUT"], "a") as out:
        for r in event["Records"]:
            out.write(json.dumps({"body": r["body"], "source": r["eventSourceARN"]}) + "\\n")
    return {}
"""


@pytest.fixture
def lam(platform: PlatformProcess, stage: str) -> Any:
    return lambda_client(platform, stage)


def make_queue(sqs: Any, name: str) -> tuple[str, str]:
    """(url, ARN) of a new queue."""
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, arn["QueueArn"]


def make_function(lam: Any, name: str, out: Path) -> None:
    create(lam, name, zip_of({"app.py": APP}), Environment={"Variables": {"OUT": str(out)}})


def bodies(out: Path) -> list[str]:
    if not out.exists():
        return []
    return [json.loads(line)["body"] for line in out.read_text().splitlines() if line]


def workers(platform: PlatformProcess, stage: str, function: str, queue: str) -> int:
    """The mapping's running workers, as the control API reports them (0 when none runs)."""
    with platform.client() as http:
        info = http.get(f"/_unkai/api/functions/{function}", params={"stage": stage}).json()
    return sum(q["workers"] for q in info["queues"] if q["name"] == queue)


def queued(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def without_metadata(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def test_a_mapping_runs_the_function_until_disabled_or_deleted(
    lam: Any, sqs: Any, platform: PlatformProcess, stage: str, tmp_path: Path
) -> None:
    # Given a queue and a function made through the API
    queue = f"esm-{stage}-jobs"
    url, queue_arn = make_queue(sqs, queue)
    out = tmp_path / "out.jsonl"
    make_function(lam, "consumer", out)

    # When the queue is mapped to it
    created = lam.create_event_source_mapping(
        EventSourceArn=queue_arn, FunctionName="consumer", BatchSize=5
    )

    # Then the mapping answers 202 in Lambda's shape, enabled
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    uuid = created["UUID"]
    assert UUID.match(uuid)
    assert without_metadata(created) == {
        "UUID": uuid,
        "BatchSize": 5,
        "MaximumBatchingWindowInSeconds": 0,
        "EventSourceArn": queue_arn,
        "FunctionArn": ARN + "function:consumer",
        "LastModified": created["LastModified"],
        "State": "Enabled",
        "StateTransitionReason": "USER_INITIATED",
        "FunctionResponseTypes": [],
        "EventSourceMappingArn": ARN + "event-source-mapping:" + uuid,
    }
    assert isinstance(created["LastModified"], datetime.datetime)

    # And messages sent to the queue reach the function, as Lambda's SQS event
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    assert wait_until(lambda: sorted(bodies(out)) == ["m0", "m1", "m2"])
    source = json.loads(out.read_text().splitlines()[0])["source"]
    assert source == queue_arn

    # And Get and List (all, by function, by queue ARN) show it
    got = lam.get_event_source_mapping(UUID=uuid)
    assert without_metadata(got) == without_metadata(created)
    for filters in ({}, {"FunctionName": "consumer"}, {"EventSourceArn": queue_arn}):
        listed = lam.list_event_source_mappings(**filters)["EventSourceMappings"]
        assert [m["UUID"] for m in listed] == [uuid]
    assert lam.list_event_source_mappings(FunctionName=ARN + "function:consumer")[
        "EventSourceMappings"
    ] == [without_metadata(created)]

    # And a change of the function's configuration keeps the mapping as it was
    lam.update_function_configuration(FunctionName="consumer", Timeout=5)
    assert without_metadata(lam.get_event_source_mapping(UUID=uuid)) == without_metadata(got)

    # When it is disabled
    disabled = lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert disabled["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert disabled["State"] == "Disabled" and disabled["LastModified"] >= got["LastModified"]
    assert wait_until(lambda: workers(platform, stage, "consumer", queue) == 0)
    sqs.send_message(QueueUrl=url, MessageBody="while-disabled")

    # Then the message stays in the queue
    assert not wait_until(lambda: "while-disabled" in bodies(out), timeout_s=1.5)
    assert queued(sqs, url) == 1

    # When it is enabled again, with other settings
    enabled = lam.update_event_source_mapping(
        UUID=uuid,
        Enabled=True,
        BatchSize=2,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        ScalingConfig={"MaximumConcurrency": 3},
    )

    # Then it reports them, and the waiting message is processed
    assert enabled["State"] == "Enabled" and enabled["BatchSize"] == 2
    assert enabled["MaximumBatchingWindowInSeconds"] == 1
    assert enabled["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert enabled["ScalingConfig"] == {"MaximumConcurrency": 3}
    assert wait_until(lambda: "while-disabled" in bodies(out))

    # And an empty ScalingConfig and FunctionResponseTypes remove them
    cleared = lam.update_event_source_mapping(UUID=uuid, ScalingConfig={}, FunctionResponseTypes=[])
    assert "ScalingConfig" not in cleared and cleared["FunctionResponseTypes"] == []

    # When it is deleted
    deleted = lam.delete_event_source_mapping(UUID=uuid)

    # Then Lambda's answer says Deleting, it is gone, and messages stay in the queue
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert deleted["State"] == "Deleting" and deleted["UUID"] == uuid
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_event_source_mapping(UUID=uuid)
    assert lam.list_event_source_mappings(FunctionName="consumer")["EventSourceMappings"] == []
    assert wait_until(lambda: workers(platform, stage, "consumer", queue) == 0)
    sqs.send_message(QueueUrl=url, MessageBody="after-delete")
    assert not wait_until(lambda: "after-delete" in bodies(out), timeout_s=1.5)
    assert queued(sqs, url) == 1


def test_list_pages_and_filters(lam: Any, sqs: Any, stage: str, tmp_path: Path) -> None:
    # Given one function mapped to three queues and another to one of them
    arns = [make_queue(sqs, f"esm-{stage}-q{n}")[1] for n in range(3)]
    make_function(lam, "first", tmp_path / "first.jsonl")
    make_function(lam, "second", tmp_path / "second.jsonl")
    made = [
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="first")["UUID"]
        for arn in arns
    ]
    other = lam.create_event_source_mapping(EventSourceArn=arns[0], FunctionName="second")

    # When the mappings are listed two at a time
    page = lam.list_event_source_mappings(MaxItems=2)
    rest = lam.list_event_source_mappings(MaxItems=2, Marker=page["NextMarker"])

    # Then the pages hold all four, by function then queue, and the last has no marker
    listed = [m["UUID"] for m in page["EventSourceMappings"] + rest["EventSourceMappings"]]
    assert listed == [*made, other["UUID"]]
    assert "NextMarker" not in rest
    paginator = lam.get_paginator("list_event_source_mappings")
    pages = paginator.paginate(PaginationConfig={"PageSize": 3})
    assert [m["UUID"] for p in pages for m in p["EventSourceMappings"]] == listed

    # And the filters combine
    both = lam.list_event_source_mappings(EventSourceArn=arns[0])["EventSourceMappings"]
    assert [m["UUID"] for m in both] == [made[0], other["UUID"]]
    one = lam.list_event_source_mappings(EventSourceArn=arns[0], FunctionName="second")
    assert [m["UUID"] for m in one["EventSourceMappings"]] == [other["UUID"]]


def test_errors_name_what_is_wrong(lam: Any, sqs: Any, stage: str, tmp_path: Path) -> None:
    # Given a queue mapped to a function
    _, queue_arn = make_queue(sqs, f"esm-{stage}-errors")
    make_function(lam, "target", tmp_path / "out.jsonl")
    mapped = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="target")
    missing_uuid = "00000000-0000-4000-8000-000000000000"

    def refused(call: Any, **arguments: Any) -> tuple[str, str]:
        with pytest.raises(ClientError) as caught:
            call(**arguments)
        return error_of(caught)

    # Then the same mapping again is a conflict naming the existing one
    code, message = refused(
        lam.create_event_source_mapping, EventSourceArn=queue_arn, FunctionName="target"
    )
    assert code == "ResourceConflictException" and mapped["UUID"] in message

    # And a missing or non-SQS source, or an unknown queue, is an invalid parameter
    code, message = refused(lam.create_event_source_mapping, FunctionName="target")
    assert code == "InvalidParameterValueException" and "EventSourceArn" in message
    kinesis = "arn:aws:kinesis:us-east-1:000000000000:stream/clicks"
    code, message = refused(
        lam.create_event_source_mapping, EventSourceArn=kinesis, FunctionName="target"
    )
    assert code == "InvalidParameterValueException" and "kinesis" in message
    nowhere = f"arn:aws:sqs:us-east-1:000000000000:esm-{stage}-nowhere"
    code, message = refused(
        lam.create_event_source_mapping, EventSourceArn=nowhere, FunctionName="target"
    )
    assert code == "InvalidParameterValueException"
    assert message.startswith("EventSourceArn: ") and "does not exist" in message

    # And the manifest's limits answer with the member's name
    code, message = refused(lam.update_event_source_mapping, UUID=mapped["UUID"], BatchSize=20000)
    assert (code, message) == (
        "InvalidParameterValueException",
        "BatchSize: must be between 1 and 10000, got 20000",
    )
    code, message = refused(lam.update_event_source_mapping, UUID=mapped["UUID"], BatchSize=50)
    assert code == "InvalidParameterValueException" and "maximumBatchingWindow" in message
    code, message = refused(
        lam.update_event_source_mapping,
        UUID=mapped["UUID"],
        FilterCriteria={"Filters": [{"Pattern": "{}"}]},
    )
    assert code == "InvalidParameterValueException" and "FilterCriteria" in message
    assert lam.get_event_source_mapping(UUID=mapped["UUID"])["BatchSize"] == 10

    # And an unknown function or UUID is not found
    code, _ = refused(
        lam.create_event_source_mapping, EventSourceArn=queue_arn, FunctionName="nobody"
    )
    assert code == "ResourceNotFoundException"
    code, _ = refused(lam.list_event_source_mappings, FunctionName="nobody")
    assert code == "ResourceNotFoundException"
    for call in (lam.get_event_source_mapping, lam.delete_event_source_mapping):
        assert refused(call, UUID=missing_uuid)[0] == "ResourceNotFoundException"
    code, _ = refused(lam.update_event_source_mapping, UUID=missing_uuid, Enabled=False)
    assert code == "ResourceNotFoundException"


def test_a_manifest_mapping_is_listed_read_only(
    platform: PlatformProcess, lam: Any, sqs: Any, stage: str, apps: Path
) -> None:
    # Given a function whose manifest maps a queue
    queue = f"esm-{stage}-manifest"
    _, queue_arn = make_queue(sqs, queue)
    app = write_app(
        apps / "svc",
        f"service: owned\nfunctions:\n  worker:\n    handler: app.handler\n"
        f"    events:\n      - sqs: {{queue: {queue}, batchSize: 3}}\n",
        {"app.py": APP},
    )
    platform.cli("deploy", str(app), "--stage", stage, check=True)

    # When the mappings are listed
    listed = lam.list_event_source_mappings()["EventSourceMappings"]

    # Then the manifest's is there, with a UUID that stays the same
    assert [(m["FunctionArn"], m["EventSourceArn"], m["BatchSize"]) for m in listed] == [
        (ARN + "function:worker", queue_arn, 3)
    ]
    uuid = listed[0]["UUID"]
    assert UUID.match(uuid) and lam.get_event_source_mapping(UUID=uuid)["UUID"] == uuid
    assert lam.list_event_source_mappings()["EventSourceMappings"][0]["UUID"] == uuid

    # And changing it, or mapping another queue to its function, names the manifest's service
    other_arn = make_queue(sqs, f"esm-{stage}-other")[1]
    for call, arguments in (
        (lam.update_event_source_mapping, {"UUID": uuid, "Enabled": False}),
        (lam.delete_event_source_mapping, {"UUID": uuid}),
        (
            lam.create_event_source_mapping,
            {"EventSourceArn": other_arn, "FunctionName": "worker"},
        ),
    ):
        with pytest.raises(lam.exceptions.ResourceConflictException) as caught:
            call(**arguments)
        assert "'owned'" in error_of(caught)[1]
    assert lam.get_event_source_mapping(UUID=uuid)["State"] == "Enabled"
