"""`kill -9` of the platform while queue messages, FIFO groups, asynchronous invocations and
topic deliveries are in flight: after a restart on the same data directory, every accepted
message is processed at least once, each FIFO group's order holds (before and after the
restart), and nothing deleted before the kill is processed again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import httpx

from tests.integration.platform_process import PlatformProcess, wait_until, write_app

APP = """
import json, os, time

def _note(kind, body, receives=None):
    with open(os.environ["OUT"], "a") as out:
        out.write(json.dumps({"kind": kind, "body": body, "receives": receives}) + "\\n")

def worker(event, context):
    time.sleep(0.02)
    for r in event["Records"]:
        body = r["body"]
        if body.startswith("{"):
            body = "topic:" + json.loads(body)["Message"]
        _note("std", body)

def ordered(event, context):
    time.sleep(0.02)
    for r in event["Records"]:
        _note("fifo", r["body"], int(r["attributes"]["ApproximateReceiveCount"]))

def job(event, context):
    time.sleep(0.01)
    _note("async", event["n"])
"""

MANIFEST = """
service: durable
provider:
  timeout: 2
  environment: {{OUT: {out}}}
resources:
  queues:
    dur-q: {{visibilityTimeout: 2}}
    dur-f.fifo: {{visibilityTimeout: 2, contentBasedDeduplication: true}}
  topics:
    dur-t:
      subscriptions:
        - queue: dur-q
functions:
  worker:
    handler: app.worker
    events:
      - sqs: {{queue: dur-q, batchSize: 10, maximumConcurrency: 2}}
  ordered:
    handler: app.ordered
    events:
      - sqs: {{queue: dur-f.fifo, batchSize: 5, maximumConcurrency: 3}}
  job:
    handler: app.job
"""


def notes(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def assert_in_order_at_least_once(deliveries: list[dict[str, Any]]) -> None:
    """A FIFO group's messages ran in order, before and after the restart, each once or again
    from a later receive, as in SQS: after the kill, or when a batch's visibility timeout ran
    out before it was deleted (an invocation once waited this queue's 2 s for a slot at the
    node cap, fixed since; a loaded machine can still do it) and it was received and run
    again. So every delivery is the message after the one before it, or a replay from an
    earlier message, with a higher receive count for each message it repeats."""
    order = sorted({n["body"] for n in deliveries})
    assert len(order) == 20, deliveries
    receives: dict[str, int] = {}
    previous = -1
    for n in deliveries:
        position = order.index(n["body"])
        if n["body"] in receives:
            assert n["receives"] > receives[n["body"]], (n, deliveries)
        else:
            assert position == previous + 1, (n, deliveries)
        receives[n["body"]] = n["receives"]
        previous = position


def test_kill_9_loses_nothing_accepted_and_redelivers_nothing_deleted(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    app = write_app(tmp_path / "app", MANIFEST.format(out=out), {"app.py": APP})
    data = tmp_path / "data"
    node = PlatformProcess(data, app_dir=app)
    node.start()
    sqs = boto3.client(
        "sqs",
        endpoint_url=node.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    q = sqs.get_queue_url(QueueName="dur-q")["QueueUrl"]
    f = sqs.get_queue_url(QueueName="dur-f.fifo")["QueueUrl"]
    try:
        # Given 50 messages processed and deleted (the queue is empty afterwards)
        for start in range(0, 50, 10):
            sqs.send_message_batch(
                QueueUrl=q,
                Entries=[{"Id": str(i), "MessageBody": f"a{i}"} for i in range(start, start + 10)],
            )

        def drained() -> bool:
            attrs = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["All"])["Attributes"]
            return (
                attrs["ApproximateNumberOfMessages"] == "0"
                and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
            )

        assert wait_until(lambda: len(notes(out)) >= 50 and drained(), 30)

        # When many more are accepted: queue messages, FIFO groups, async events, publishes
        for start in range(0, 400, 10):
            sqs.send_message_batch(
                QueueUrl=q,
                Entries=[{"Id": str(i), "MessageBody": f"b{i}"} for i in range(start, start + 10)],
            )
        for i in range(20):
            sqs.send_message_batch(
                QueueUrl=f,
                Entries=[
                    {"Id": g, "MessageBody": f"{g}-{i:02d}", "MessageGroupId": g}
                    for g in ("g1", "g2", "g3")
                ],
            )
        with httpx.Client(base_url=node.url) as client:
            for n in range(40):
                answer = client.post(
                    "/2015-03-31/functions/job/invocations",
                    headers={"X-Amz-Invocation-Type": "Event"},
                    json={"n": n},
                )
                assert answer.status_code == 202
        for n in range(5):
            node.cli("topics", "publish", "dur-t", f"p{n}", check=True)
        # ... and the platform is killed while they are being processed
        assert wait_until(lambda: len(notes(out)) >= 120, 30)
        node.kill9()
    finally:
        node.stop()

    # Then a restart on the same data processes everything accepted
    node = PlatformProcess(data, app_dir=app)
    node.start()
    try:
        wanted_std = {f"b{i}" for i in range(400)} | {f"topic:p{n}" for n in range(5)}
        wanted_fifo = {f"{g}-{i:02d}" for g in ("g1", "g2", "g3") for i in range(20)}

        def everything() -> bool:
            seen = notes(out)
            return (
                wanted_std <= {n["body"] for n in seen if n["kind"] == "std"}
                and wanted_fifo <= {n["body"] for n in seen if n["kind"] == "fifo"}
                and set(range(40)) <= {n["body"] for n in seen if n["kind"] == "async"}
            )

        assert wait_until(everything, 90)
    finally:
        node.stop()
    seen = notes(out)
    # Nothing deleted before the kill came back
    bodies = [n["body"] for n in seen if n["kind"] == "std"]
    assert all(bodies.count(f"a{i}") == 1 for i in range(50))
    for group in ("g1", "g2", "g3"):
        assert_in_order_at_least_once(
            [n for n in seen if n["kind"] == "fifo" and n["body"][:2] == group]
        )
