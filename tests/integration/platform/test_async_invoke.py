"""Asynchronous invocation through the real platform: 202 once stored, retries with
backoff up to maximumRetryAttempts, throttles that use no attempt, destination records, and
events that survive `kill -9`. Retry delays are scaled down with --async-retry-base-s."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.platform_process import PlatformProcess, wait_until, write_app

APP = """
import json, os

def _note(kind, event, request_id=None):
    with open(os.environ["OUT"], "a") as out:
        out.write(json.dumps({"kind": kind, "event": event, "id": request_id}) + "\\n")

def work(event, context):
    _note("work", event, context.aws_request_id)
    return {"done": event.get("n")}

def flaky(event, context):
    _note("flaky", event)
    raise ValueError("always failing")

def once(event, context):
    _note("once", event)
    raise ValueError("no retries for me")

def sink(event, context):
    _note("sink", event)

def big(event, context):
    blob = event["blob"]
    _note("big", {"n": event["n"], "size": len(blob), "ok": set(blob) == {str(event["n"] % 10)}})

def nan(event, context):
    _note("nan", event)
    return float("nan")  # json.dumps writes NaN, which strict JSON refuses
"""

MANIFEST = """
service: asyncs
provider:
  environment: {{OUT: {out}}}
functions:
  work:
    handler: app.work
    reservedConcurrency: {reserved}
    destinations: {{onSuccess: sink}}
  flaky:
    handler: app.flaky
    destinations: {{onFailure: sink}}
  once:
    handler: app.once
    maximumRetryAttempts: 0
    destinations: {{onFailure: sink}}
  sink:
    handler: app.sink
  big:
    handler: app.big
    reservedConcurrency: {reserved}
  nan:
    handler: app.nan
    destinations: {{onSuccess: sink}}
"""


def notes(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[PlatformProcess, Path, Path]]:
    out = tmp_path / "out.jsonl"
    app = write_app(tmp_path / "app", MANIFEST.format(out=out, reserved=1), {"app.py": APP})
    platform = PlatformProcess(
        tmp_path / "data", app_dir=app, extra_args=("--async-retry-base-s", "0.05")
    )
    platform.start()
    try:
        yield platform, app, out
    finally:
        platform.stop()


def deploy_reserved(platform: PlatformProcess, app: Path, out: Path, reserved: int) -> None:
    """Deploy the app with `reserved` concurrency on `work` and `big` (0 throttles them)."""
    (app / "unkai.yml").write_text(MANIFEST.format(out=out, reserved=reserved))
    platform.cli("deploy", str(app), check=True)


def send_big(platform: PlatformProcess, numbers: range) -> None:
    """Event invokes of `big`, each with a 200 KB blob of its number's last digit."""
    for n in numbers:
        invoke_async(platform, "big", {"n": n, "blob": str(n % 10) * 200_000})


def invoke_async(platform: PlatformProcess, function: str, event: dict[str, Any]) -> str:
    with httpx.Client(base_url=platform.url) as http:
        response = http.post(
            f"/2015-03-31/functions/{function}/invocations",
            content=json.dumps(event).encode(),
            headers={"x-amz-invocation-type": "Event"},
        )
    assert response.status_code == 202, response.text
    return response.headers["x-amzn-requestid"]


def test_event_runs_and_success_reaches_the_destination(
    node: tuple[PlatformProcess, Path, Path],
) -> None:
    platform, _, out = node
    request_id = invoke_async(platform, "work", {"n": 7})
    assert wait_until(lambda: any(n["kind"] == "sink" for n in notes(out)))
    record = next(n["event"] for n in notes(out) if n["kind"] == "sink")
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestContext"]["functionArn"].endswith(":function:work")
    assert record["requestPayload"] == {"n": 7}
    assert record["responsePayload"] == {"done": 7}
    assert record["responseContext"]["executedVersion"] == "$LATEST"
    # The function ran with the request id the 202 gave
    assert [n["id"] for n in notes(out) if n["kind"] == "work"] == [request_id]


def test_a_result_strict_json_refuses_still_reaches_the_destination_once(
    node: tuple[PlatformProcess, Path, Path],
) -> None:
    platform, _, out = node
    # When a function's result is not strict JSON (NaN)
    invoke_async(platform, "nan", {"n": 1})
    # Then its success record reaches the destination, the result given as its text
    assert wait_until(lambda: any(n["kind"] == "sink" for n in notes(out)))
    record = next(n["event"] for n in notes(out) if n["kind"] == "sink")
    assert record["requestContext"]["condition"] == "Success"
    assert record["responsePayload"] == "NaN"
    # And the event ran once: making the record did not count as a failed store
    assert [n["kind"] for n in notes(out)].count("nan") == 1


def test_failures_are_retried_then_reported_with_lambdas_record(
    node: tuple[PlatformProcess, Path, Path],
) -> None:
    platform, _, out = node
    flaky_id = invoke_async(platform, "flaky", {"k": 1})
    once_id = invoke_async(platform, "once", {"k": 2})
    assert wait_until(lambda: sum(n["kind"] == "sink" for n in notes(out)) == 2)
    seen = notes(out)
    # maximumRetryAttempts 2 (the default): 3 runs; 0: one run
    assert sum(n["kind"] == "flaky" for n in seen) == 3
    assert sum(n["kind"] == "once" for n in seen) == 1
    records = {
        n["event"]["requestContext"]["requestId"]: n["event"] for n in seen if n["kind"] == "sink"
    }
    flaky = records[flaky_id]
    assert flaky["requestContext"]["condition"] == "RetriesExhausted"
    assert flaky["requestContext"]["approximateInvokeCount"] == 3
    assert flaky["responseContext"]["functionError"] == "Unhandled"
    assert flaky["responsePayload"]["errorType"] == "ValueError"
    assert records[once_id]["requestContext"]["approximateInvokeCount"] == 1


def test_throttled_events_wait_without_using_attempts(
    node: tuple[PlatformProcess, Path, Path], tmp_path: Path
) -> None:
    platform, app, out = node
    deploy_reserved(platform, app, out, 0)
    request_id = invoke_async(platform, "work", {"n": 1})
    time.sleep(1.0)  # throttled meanwhile: every try is refused, none runs
    assert not any(n["kind"] == "work" for n in notes(out))
    deploy_reserved(platform, app, out, 1)
    assert wait_until(lambda: any(n["kind"] == "sink" for n in notes(out)))
    record = next(n["event"] for n in notes(out) if n["kind"] == "sink")
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["approximateInvokeCount"] == 1


def test_bad_async_requests(node: tuple[PlatformProcess, Path, Path]) -> None:
    platform, _, _ = node
    with httpx.Client(base_url=platform.url) as http:
        missing = http.post(
            "/2015-03-31/functions/nope/invocations",
            content=b"{}",
            headers={"x-amz-invocation-type": "Event"},
        )
        big = http.post(
            "/2015-03-31/functions/work/invocations",
            content=json.dumps({"x": "a" * 300_000}).encode(),
            headers={"x-amz-invocation-type": "Event"},
        )
    assert missing.status_code == 404
    assert missing.headers["x-amzn-errortype"] == "ResourceNotFoundException"
    assert big.status_code == 413
    assert big.headers["x-amzn-errortype"] == "RequestTooLargeException"


def test_accepted_events_survive_kill_9(node: tuple[PlatformProcess, Path, Path]) -> None:
    platform, app, out = node
    # Given events accepted while the function is throttled, so none has run yet
    deploy_reserved(platform, app, out, 0)
    accepted = [invoke_async(platform, "work", {"n": i}) for i in range(20)]
    assert not any(n["kind"] == "work" for n in notes(out))
    # When the platform is killed and started again, and the throttle lifted
    platform.kill9()
    platform.app_dir = None
    platform.start()
    deploy_reserved(platform, app, out, 1)

    def done() -> set[str]:
        return {
            n["event"]["requestContext"]["requestId"] for n in notes(out) if n["kind"] == "sink"
        }

    # Then every accepted event runs
    assert wait_until(lambda: set(accepted) <= done(), timeout_s=60)
    # And the CLI queues events too
    result = platform.cli("invoke", "-f", "work", "-d", '{"n": 99}', "--async", check=True)
    assert "accepted" in result.stdout


def test_waiting_events_do_not_hold_their_payloads_in_memory(
    node: tuple[PlatformProcess, Path, Path],
) -> None:
    platform, app, out = node
    # Given events of 200 KB accepted while their function is throttled: a first 80 warm up
    # the platform's caches and buffers, then 80 more (16 MB of payloads) are measured
    deploy_reserved(platform, app, out, 0)
    send_big(platform, range(80))
    before_kb = platform.rss_kb()
    send_big(platform, range(80, 160))
    grown_mb = (platform.rss_kb() - before_kb) / 1024
    # Then the waiting backlog costs the platform far less memory than its payloads
    assert grown_mb < 6, f"the platform grew by {grown_mb:.1f} MB for 16 MB of waiting payloads"
    # And once the throttle is lifted every event runs with its whole payload
    deploy_reserved(platform, app, out, 1)
    assert wait_until(lambda: len([n for n in notes(out) if n["kind"] == "big"]) >= 160, 60)
    ran = [n["event"] for n in notes(out) if n["kind"] == "big"]
    assert sorted(r["n"] for r in ran) == list(range(160))
    assert all(r["size"] == 200_000 and r["ok"] for r in ran)


def test_a_stored_backlog_is_read_back_at_start_a_page_at_a_time(
    node: tuple[PlatformProcess, Path, Path],
) -> None:
    platform, app, out = node
    deploy_reserved(platform, app, out, 0)
    started_mb = platform.rss_kb(peak=True) / 1024
    # Given 300 events of 200 KB (60 MB) stored while their function is throttled
    send_big(platform, range(300))
    # When the platform is killed and started again on them
    platform.kill9()
    platform.app_dir = None
    platform.start()
    # Then its start never held the whole backlog (read at once, it would cost twice its size)
    grown_mb = platform.rss_kb(peak=True) / 1024 - started_mb
    assert grown_mb < 80, f"started {grown_mb:.0f} MB above the first start's peak"
    # And every event was read back: all 300 are pending
    with platform.client() as http:
        metrics = http.get("/_unkai/metrics").text
    assert "unkai_async_events_pending 300.0" in metrics.splitlines()
