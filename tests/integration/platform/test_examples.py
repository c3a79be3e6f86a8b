"""The shipped examples work as a user would run them: deployed as they are, driven by HTTP."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.integration.platform_process import PlatformProcess

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


def test_tracker_authenticates_validates_normalizes_and_stores(
    platform: PlatformProcess, tmp_path: Path, stage: str
) -> None:
    sink = tmp_path / "sink"
    deploy_example(
        platform,
        "tracker",
        tmp_path,
        stage,
        replace={"SINK_DIR: /tmp/unkai-tracker": f"SINK_DIR: {sink}"},
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
    stored = [
        json.loads(line) for f in sink.glob("events-*.jsonl") for line in f.read_text().splitlines()
    ]
    assert len(stored) == 1  # the rejected batch stored nothing
    record = stored[0]
    assert record["id"] == accepted.json()["ids"][0]
    assert record["client"] == "demo-site"
    assert record["type"] == "page_view"
    assert record["url"] == "https://example.com/a?b=1"
    assert record["timestamp"] == "2026-11-22T09:00:00.000Z"
    assert record["user"] != "u-1" and len(record["user"]) == 16
