"""Queue -> function mappings through the real platform: queues declared in the manifest,
messages sent with boto3 to the platform's SQS endpoint, batches delivered to real function
instances as Lambda's SQS event, deletes on success, redelivery and the dead-letter queue on
failure, partial batch responses, FIFO order per group, and the concurrency cap."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.platform_process import PlatformProcess, wait_until, write_app

APP = """
import json, os, time

def _note(**fields):
    with open(os.environ["OUT"], "a") as out:
        out.write(json.dumps(fields) + "\\n")

def worker(event, context):
    records = event["Records"]
    started = time.time()
    time.sleep(float(os.environ.get("PAUSE", "0")))
    failed = []
    for r in records:
        _note(body=r["body"], id=r["messageId"], count=r["attributes"]["ApproximateReceiveCount"],
              size=len(records), pid=os.getpid(), start=started, end=time.time(), record=r)
        if r["body"].startswith("poison"):
            failed.append(r["messageId"])
    if failed and os.environ.get("PARTIAL") == "1":
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
    if failed:
        raise ValueError("poison in the batch")
    return {}
"""

MANIFEST = """
service: {service}
provider:
  environment: {{OUT: {out}, PAUSE: "{pause}", PARTIAL: "{partial}"}}
resources:
  queues:
    {queue}-dlq: {{{fifo_attr}}}
    {queue}:
      visibilityTimeout: {visibility}
      {fifo_line}
      deadLetterQueue: {{queue: {queue}-dlq, maxReceiveCount: 2}}
functions:
  worker:
    handler: app.worker
    timeout: 1
    events:
      - sqs:
          queue: {queue}
          batchSize: {batch}
          {extra}
"""


def notes(out: Path) -> list[dict[str, Any]]:
    """The whole lines the functions wrote so far (one being written has no newline yet)."""
    if not out.exists():
        return []
    text = out.read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines() if line.strip()]


def queue_and_dlq(sqs: Any, name: str) -> tuple[str, str]:
    """The URLs of queue `name` and of its dead-letter queue `name-dlq` (see `deploy`)."""
    return (
        sqs.get_queue_url(QueueName=name)["QueueUrl"],
        sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"],
    )


def sqs_client(platform: PlatformProcess) -> Any:
    return platform.aws("sqs")


def deploy(
    platform: PlatformProcess,
    tmp_path: Path,
    stage: str,
    queue: str,
    *,
    batch: int = 10,
    pause: float = 0.0,
    partial: bool = False,
    fifo: bool = False,
    extra: str = "",
    visibility: int = 1,
) -> Path:
    out = tmp_path / "out.jsonl"
    manifest = MANIFEST.format(
        service=f"svc-{queue}".replace(".", "-"),
        out=out,
        pause=pause,
        partial="1" if partial else "0",
        queue=queue.removesuffix(".fifo") if fifo else queue,
        fifo_attr="fifo: true" if fifo else "",
        fifo_line="fifo: true\n      contentBasedDeduplication: true" if fifo else "",
        batch=batch,
        extra=extra,
        visibility=visibility,
    )
    if fifo:
        base = queue.removesuffix(".fifo")
        manifest = manifest.replace(f"{base}-dlq", f"{base}-dlq.fifo").replace(
            f"    {base}:", f"    {base}.fifo:"
        )
        manifest = manifest.replace(f"queue: {base}\n", f"queue: {base}.fifo\n")
    app = write_app(tmp_path / "app", manifest, {"app.py": APP})
    platform.cli("deploy", str(app), "--stage", stage, check=True)
    return out


def counts(sqs: Any, url: str) -> tuple[int, int]:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def test_batches_arrive_as_lambda_sqs_events_and_are_deleted(
    platform: PlatformProcess, tmp_path: Path, stage: str
) -> None:
    out = deploy(platform, tmp_path, stage, "map-basic")
    sqs = sqs_client(platform)
    url = sqs.get_queue_url(QueueName="map-basic")["QueueUrl"]
    for start in range(0, 25, 5):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {
                    "Id": str(i),
                    "MessageBody": f"m{i}",
                    "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "t"}},
                }
                for i in range(start, start + 5)
            ],
        )
    assert wait_until(lambda: len(notes(out)) >= 25)
    seen = notes(out)
    assert sorted(n["body"] for n in seen) == sorted(f"m{i}" for i in range(25))
    assert all(1 <= n["size"] <= 10 for n in seen)
    record = seen[0]["record"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:000000000000:map-basic"
    assert record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(
        record["attributes"]
    )
    assert record["messageAttributes"] == {
        "kind": {
            "stringValue": "t",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }
    assert len(record["md5OfBody"]) == 32 and record["md5OfMessageAttributes"]
    assert record["receiptHandle"]
    # Every message was deleted after its batch succeeded: nothing visible, nothing in flight
    assert wait_until(lambda: counts(sqs, url) == (0, 0), 10)
    time.sleep(1.5)  # past the visibility timeout: nothing comes back
    assert len(notes(out)) == 25
    # The queue and its mapping show in `unkai info` and in the metrics
    info = platform.cli("info", "worker", "--stage", stage, check=True).stdout
    assert "queue: map-basic: 0 visible, 0 in flight, 0 delayed" in info
    assert "25 processed" in info
    with platform.client() as http:
        metrics = http.get("/_unkai/metrics")
    assert metrics.status_code == 200
    assert 'unkai_queue_messages_visible{queue="map-basic"} 0.0' in metrics.text
    assert 'unkai_queue_oldest_message_age_seconds{queue="map-basic"}' in metrics.text
    assert (
        f'unkai_queue_mapping_processed_messages{{function="worker",queue="map-basic",'
        f'stage="{stage}"}} 25.0' in metrics.text
    )


def test_failed_batches_return_and_end_in_the_dead_letter_queue(
    platform: PlatformProcess, tmp_path: Path, stage: str
) -> None:
    out = deploy(platform, tmp_path, stage, "map-fail", batch=1)
    sqs = sqs_client(platform)
    url, dlq = queue_and_dlq(sqs, "map-fail")
    sqs.send_message(QueueUrl=url, MessageBody="poison-1")
    sqs.send_message(QueueUrl=url, MessageBody="fine")
    # The poison message is tried twice (maxReceiveCount 2), then moved to the DLQ
    assert wait_until(lambda: counts(sqs, dlq)[0] == 1, 20)
    tries = [n for n in notes(out) if n["body"] == "poison-1"]
    assert [n["count"] for n in tries] == ["1", "2"]
    assert [n["body"] for n in notes(out)].count("fine") == 1
    got = sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"])["Messages"]
    assert got[0]["Body"] == "poison-1"


def test_partial_batch_response_keeps_only_the_failed_items(
    platform: PlatformProcess, tmp_path: Path, stage: str
) -> None:
    out = deploy(
        platform,
        tmp_path,
        stage,
        "map-partial",
        partial=True,
        extra="functionResponseType: ReportBatchItemFailures",
    )
    sqs = sqs_client(platform)
    url, dlq = queue_and_dlq(sqs, "map-partial")
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "a", "MessageBody": "ok-a"},
            {"Id": "b", "MessageBody": "poison-b"},
            {"Id": "c", "MessageBody": "ok-c"},
        ],
    )
    assert wait_until(lambda: counts(sqs, dlq)[0] == 1, 20)
    bodies = [n["body"] for n in notes(out)]
    # The successes of the failed batch were deleted, not redelivered
    assert bodies.count("ok-a") == 1 and bodies.count("ok-c") == 1
    assert bodies.count("poison-b") == 2


def test_fifo_mapping_keeps_each_group_in_order(
    platform: PlatformProcess, tmp_path: Path, stage: str
) -> None:
    out = deploy(
        platform,
        tmp_path,
        stage,
        "map-order.fifo",
        batch=3,
        fifo=True,
        extra="maximumConcurrency: 4",
    )
    sqs = sqs_client(platform)
    url = sqs.get_queue_url(QueueName="map-order.fifo")["QueueUrl"]
    for i in range(12):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": g, "MessageBody": f"{g}-{i:02d}", "MessageGroupId": g}
                for g in ("g1", "g2", "g3")
            ],
        )
    assert wait_until(lambda: len(notes(out)) >= 36)
    for group in ("g1", "g2", "g3"):
        bodies = [n["body"] for n in notes(out) if n["body"].startswith(group)]
        assert bodies == [f"{group}-{i:02d}" for i in range(12)]


def test_workers_scale_with_depth_up_to_maximum_concurrency(
    platform: PlatformProcess, tmp_path: Path, stage: str
) -> None:
    out = deploy(
        platform, tmp_path, stage, "map-scale", batch=1, pause=0.3, extra="maximumConcurrency: 3"
    )
    sqs = sqs_client(platform)
    url = sqs.get_queue_url(QueueName="map-scale")["QueueUrl"]
    for start in range(0, 20, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "MessageBody": f"s{i}"} for i in range(start, start + 10)],
        )
    assert wait_until(lambda: len(notes(out)) >= 20, 40)
    spans = [(n["start"], n["end"]) for n in notes(out)]
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    # More than one consumer ran at once, and never more than maximumConcurrency
    assert 2 <= most <= 3


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("batchSize: 0", "batchSize"),
        ("batchSize: 20", "maximumBatchingWindow"),
        ("maximumConcurrency: 1", "maximumConcurrency"),
    ],
)
def test_bad_mappings_are_refused_at_deploy(
    platform: PlatformProcess, tmp_path: Path, extra: str, problem: str
) -> None:
    manifest = (
        "service: badmap\nfunctions:\n  w:\n    handler: app.worker\n    events:\n"
        f"      - sqs:\n          queue: nowhere\n          {extra}\n"
    )
    app = write_app(tmp_path / "bad", manifest, {"app.py": APP})
    done = platform.cli("deploy", str(app), "--dry-run")
    assert done.returncode != 0
    assert problem in done.stdout + done.stderr


def test_a_mapping_to_a_missing_queue_names_it(platform: PlatformProcess, tmp_path: Path) -> None:
    manifest = (
        "service: badmap2\nfunctions:\n  w:\n    handler: app.worker\n    events:\n"
        "      - sqs: nowhere-queue\n"
    )
    app = write_app(tmp_path / "bad", manifest, {"app.py": APP})
    done = platform.cli("deploy", str(app), "--dry-run")
    assert done.returncode != 0
    text = done.stdout + done.stderr
    assert "nowhere-queue" in text and "does not exist" in text and "events[0].sqs" in text


def test_fifo_partial_failure_holds_back_the_rest_of_the_group(
    platform: PlatformProcess, tmp_path: Path, stage: str
) -> None:
    out = deploy(
        platform,
        tmp_path,
        stage,
        "map-fifo-partial.fifo",
        fifo=True,
        partial=True,
        extra="functionResponseType: ReportBatchItemFailures",
    )
    sqs = sqs_client(platform)
    url = sqs.get_queue_url(QueueName="map-fifo-partial.fifo")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="map-fifo-partial-dlq.fifo")["QueueUrl"]
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(i), "MessageBody": body, "MessageGroupId": "g"}
            for i, body in enumerate(["g-0", "poison-1", "g-2"])
        ],
    )
    # The poison message and the message after it in its group end in the DLQ, in order;
    # the one before it was processed once and deleted
    assert wait_until(lambda: counts(sqs, dlq)[0] == 2, 30)
    got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["poison-1", "g-2"]
    bodies = [n["body"] for n in notes(out)]
    assert bodies.count("g-0") == 1
    # g-2 never ran ahead of the poison message
    assert all(bodies[i - 1] == "poison-1" for i, b in enumerate(bodies) if b == "g-2")


def test_a_throttled_function_backs_the_poller_off_and_messages_follow_the_redrive_policy(
    platform: PlatformProcess, tmp_path: Path, stage: str
) -> None:
    # Given a function that can never run (reserved concurrency 0)
    deploy(platform, tmp_path, stage, "map-throttled", batch=1)
    app = tmp_path / "app" / "unkai.yml"
    app.write_text(app.read_text().replace("timeout: 1", "timeout: 1\n    reservedConcurrency: 0"))
    platform.cli("deploy", str(tmp_path / "app"), "--stage", stage, check=True)
    sqs = sqs_client(platform)
    url, dlq = queue_and_dlq(sqs, "map-throttled")
    sqs.send_message(QueueUrl=url, MessageBody="never runs")
    # Then each throttled receive counts (as in Lambda), so the message reaches the DLQ after
    # maxReceiveCount, and the mapping reports the throttles
    assert wait_until(lambda: counts(sqs, dlq)[0] == 1, 20)

    def throttles() -> int:
        with platform.client() as http:
            text = http.get("/_unkai/metrics").text
        line = next(
            (
                row
                for row in text.splitlines()
                if row.startswith("unkai_queue_mapping_throttles{")
                and 'queue="map-throttled"' in row
            ),
            "",
        )
        return int(float(line.rsplit(" ", 1)[1])) if line else 0

    assert throttles() >= 2


def test_a_visibility_timeout_shorter_than_the_function_timeout_is_refused(
    platform: PlatformProcess, tmp_path: Path
) -> None:
    manifest = (
        "service: shortvis\nresources:\n  queues:\n    shortvis-q: {visibilityTimeout: 5}\n"
        "functions:\n  w:\n    handler: app.worker\n    timeout: 30\n    events:\n"
        "      - sqs: shortvis-q\n"
    )
    app = write_app(tmp_path / "short", manifest, {"app.py": APP})
    done = platform.cli("deploy", str(app), "--dry-run")
    assert done.returncode != 0
    text = done.stdout + done.stderr
    assert "visibility timeout of 5 s" in text and "timeout of 30 s" in text


def test_removing_the_service_stops_its_mapping(
    platform: PlatformProcess, tmp_path: Path, stage: str
) -> None:
    out = deploy(platform, tmp_path, stage, "map-removed", batch=1)
    sqs = sqs_client(platform)
    url = sqs.get_queue_url(QueueName="map-removed")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="before")
    assert wait_until(lambda: len(notes(out)) == 1)
    # When the service is removed, its poller stops: a later message stays in the queue
    platform.cli("remove", str(tmp_path / "app"), "--stage", stage, check=True)

    def no_workers() -> bool:
        with platform.client() as http:
            text = http.get("/_unkai/metrics").text
        return f'queue="map-removed",stage="{stage}"' not in text

    assert wait_until(no_workers, 10)
    sqs.send_message(QueueUrl=url, MessageBody="after")
    time.sleep(1.5)
    assert [n["body"] for n in notes(out)] == ["before"]
    assert counts(sqs, url) == (1, 0)


def test_messages_trimmed_off_an_oversized_batch_keep_their_receive_count(
    platform: PlatformProcess, tmp_path: Path, stage: str
) -> None:
    # Given a queue with maxReceiveCount 2 and a mapping that gathers batches of 10
    out = deploy(
        platform,
        tmp_path,
        stage,
        "map-big",
        batch=10,
        extra="maximumBatchingWindow: 3",
        visibility=30,
    )
    sqs = sqs_client(platform)
    url, dlq = queue_and_dlq(sqs, "map-big")
    # When 20 messages of 900 KB arrive: ten of them are over Lambda's 6 MB event, so the
    # poller hands on half of each batch and gives the rest back, several times over
    for i in range(20):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i:02d}-" + "x" * 900_000)
    # Then every message reaches the function once, each on its first counted receive,
    # and none is moved to the dead-letter queue for receives it never got to use
    assert wait_until(lambda: len({n["body"][:3] for n in notes(out)}) == 20, 60)
    assert wait_until(lambda: counts(sqs, url) == (0, 0), 20)
    assert counts(sqs, dlq) == (0, 0)
    assert sorted(n["body"][:3] for n in notes(out)) == [f"m{i:02d}" for i in range(20)]
    assert {n["count"] for n in notes(out)} == {"1"}
