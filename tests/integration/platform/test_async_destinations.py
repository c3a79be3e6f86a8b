"""Asynchronous invocation outcomes to queues and topics: onSuccess to a queue, onFailure to a
topic (fanned out to a queue), and the function's dead-letter queue, through the real
platform with boto3 reading the queues. Retry delays are scaled down with
--async-retry-base-s."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.integration.platform_process import PlatformProcess, wait_until, write_app

APP = """
def good(event, context):
    return {"doubled": event["n"] * 2}

def bad(event, context):
    raise ValueError("bad input " + str(event["n"]))
"""

ARN = "arn:aws:{service}:us-east-1:000000000000:{name}"

MANIFEST = f"""
service: dests
resources:
  queues:
    ok-dest: {{}}
    topic-sink: {{}}
    bad-dlq: {{}}
  topics:
    outcomes:
      subscriptions:
        - queue: topic-sink
          rawMessageDelivery: true
functions:
  good:
    handler: app.good
    destinations: {{onSuccess: "{ARN.format(service="sqs", name="ok-dest")}"}}
  bad:
    handler: app.bad
    maximumRetryAttempts: 1
    destinations: {{onFailure: "{ARN.format(service="sns", name="outcomes")}"}}
    deadLetterQueue: bad-dlq
"""


@pytest.fixture
def node(tmp_path: Path) -> Iterator[PlatformProcess]:
    app = write_app(tmp_path / "app", MANIFEST, {"app.py": APP})
    platform = PlatformProcess(
        tmp_path / "data", app_dir=app, extra_args=("--async-retry-base-s", "0.05")
    )
    platform.start()
    try:
        yield platform
    finally:
        platform.stop()


def receive_all(sqs: Any, queue: str, want: int) -> list[dict[str, Any]]:
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    got: list[dict[str, Any]] = []

    def more() -> bool:
        got.extend(
            sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
        )
        return len(got) >= want

    assert wait_until(more, 20)
    return got


def invoke_async(node: PlatformProcess, function: str, payload: dict[str, Any]) -> str:
    answer = httpx.post(
        f"{node.url}/2015-03-31/functions/{function}/invocations",
        headers={"X-Amz-Invocation-Type": "Event"},
        json=payload,
    )
    assert answer.status_code == 202
    return answer.headers["x-amzn-requestid"]


def test_outcomes_reach_queues_topics_and_the_dead_letter_queue(node: PlatformProcess) -> None:
    sqs = boto3.client(
        "sqs",
        endpoint_url=node.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    ok_id = invoke_async(node, "good", {"n": 21})
    bad_id = invoke_async(node, "bad", {"n": 7})

    # onSuccess -> a queue: Lambda's destination record
    [success] = receive_all(sqs, "ok-dest", 1)
    record = json.loads(success["Body"])
    assert record["requestContext"]["requestId"] == ok_id
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["functionArn"].endswith(":function:good")
    assert record["requestPayload"] == {"n": 21}
    assert record["responsePayload"] == {"doubled": 42}

    # onFailure -> a topic -> (raw) its queue subscription: the record after 2 attempts
    [failure] = receive_all(sqs, "topic-sink", 1)
    record = json.loads(failure["Body"])
    assert record["requestContext"]["requestId"] == bad_id
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "ValueError"

    # The dead-letter queue gets the event itself, with the error in its attributes
    [dead] = receive_all(sqs, "bad-dlq", 1)
    assert json.loads(dead["Body"]) == {"n": 7}
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["RequestID"] == bad_id
    assert attributes["ErrorMessage"] == "bad input 7"


def test_missing_destination_queue_is_refused_at_deploy(tmp_path: Path) -> None:
    manifest = (
        "service: d2\nfunctions:\n  f:\n    handler: app.good\n"
        f'    destinations: {{onSuccess: "{ARN.format(service="sqs", name="nowhere")}"}}\n'
    )
    app = write_app(tmp_path / "bad", manifest, {"app.py": APP})
    platform = PlatformProcess(tmp_path / "data")
    platform.start()
    try:
        done = platform.cli("deploy", str(app), "--dry-run")
    finally:
        platform.stop()
    assert done.returncode != 0
    text = done.stdout + done.stderr
    assert "nowhere" in text and "destinations.onSuccess" in text
