"""The shipped examples work as a user would run them: deployed as they are, driven by HTTP."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3

from tests.integration.platform_process import PlatformProcess, wait_until

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def deploy_example(
    platform: PlatformProcess,
    name: str,
    tmp: Path,
    stage: str,
    replace: dict[str, str] | None = None,
) -> Path:
    app = tmp / name
    shutil.copytree(EXAMPLES / name, app)
    manifest = app / "unkai.yml"
    text = manifest.read_text()
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    manifest.write_text(text)
    platform.cli("deploy", str(app), "--stage", stage, check=True)
    return app


def test_hello_example_answers_on_its_route(
    platform: PlatformProcess, tmp_path: Path, stage: str
) -> None:
    deploy_example(platform, "hello", tmp_path, stage)
    with platform.client() as http:
        response = http.get(f"/{stage}/hello", params={"name": "ada"})
    assert response.status_code == 200
    assert response.json()["message"] == "hello, ada"


def test_tracker_pipeline_validates_enqueues_stores_dead_letters_and_compacts(
    platform: PlatformProcess, tmp_path: Path, stage: str
) -> None:
    sink = tmp_path / "sink"
    deploy_example(
        platform,
        "tracker",
        tmp_path,
        stage,
        replace={
            "SINK_DIR: /tmp/unkai-tracker": f"SINK_DIR: {sink}",
            "visibilityTimeout: 60": "visibilityTimeout: 1",
            "handler: tracker.store\n    timeout: 10": "handler: tracker.store\n    timeout: 1",
        },
    )
    good = {
        "type": "Page_View",
        "url": "https://Example.COM/a?b=1#frag",
        "user_id": "u-1",
        "timestamp": "2026-11-22T10:00:00+01:00",
        "properties": {"ref": "news"},
    }
    with platform.client() as http:
        missing = http.post(f"/{stage}/events", json=good)
        unknown = http.post(f"/{stage}/events", json=good, headers={"x-api-key": "nope"})
        invalid = http.post(
            f"/{stage}/events",
            headers={"x-api-key": "demo-key-123"},
            json={"events": [good, {"type": "teleport", "url": "ftp://x"}]},
        )
        accepted = http.post(f"/{stage}/events", json=good, headers={"x-api-key": "demo-key-123"})
    assert missing.status_code == 401
    assert unknown.status_code == 403
    assert invalid.status_code == 400
    assert invalid.json()["errors"][0]["index"] == 1
    assert "type must be one of" in invalid.json()["errors"][0]["message"]
    assert accepted.status_code == 202 and accepted.json()["accepted"] == 1

    def stored() -> list[dict[str, Any]]:
        return [
            json.loads(line)
            for f in sink.glob("events-*.jsonl")
            for line in f.read_text().splitlines()
        ]

    # The worker consumed the queue and stored the record; the rejected batch stored nothing
    assert wait_until(lambda: len(stored()) >= 1, 20)
    assert len(stored()) == 1
    record = stored()[0]
    assert record["id"] == accepted.json()["ids"][0]
    assert record["client"] == "demo-site"
    assert record["type"] == "page_view"
    assert record["url"] == "https://example.com/a?b=1"
    assert record["timestamp"] == "2026-11-22T09:00:00.000Z"
    assert record["user"] != "u-1" and len(record["user"]) == 16

    # A poison message is reported as a failed item and ends in the dead-letter queue
    sqs = boto3.client(
        "sqs",
        endpoint_url=platform.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    events_url = sqs.get_queue_url(QueueName="tracker-events")["QueueUrl"]
    dead_url = sqs.get_queue_url(QueueName="tracker-dead-letters")["QueueUrl"]
    sqs.send_message(QueueUrl=events_url, MessageBody='{"not": "an event"}')

    def dead_letters() -> int:
        attrs = sqs.get_queue_attributes(QueueUrl=dead_url, AttributeNames=["All"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"])

    assert wait_until(lambda: dead_letters() == 1, 30)
    # The nightly compaction de-duplicates a day (delivery is at least once) and sorts it
    day_file = next(sink.glob("events-*.jsonl"))
    day_file.write_text(day_file.read_text() * 2)
    platform.cli("invoke", "-f", "compact", "--stage", stage, "--data", "{}", check=True)
    compacted = next(sink.glob("compacted-*.jsonl")).read_text().splitlines()
    assert [json.loads(line)["id"] for line in compacted] == [record["id"]]
    assert not day_file.exists()
