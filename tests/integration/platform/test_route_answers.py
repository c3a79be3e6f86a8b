"""What a route answers for a handler's result, now that the instance maps it (the adapter,
docs/architecture.md): Lambda's rules first, then API Gateway's, then the framing stays the
gateway's."""

from __future__ import annotations

from pathlib import Path

from tests.integration.platform_process import PlatformProcess, write_app

HANDLERS = """
import datetime

def answer(event, context):
    kind = event["pathParameters"]["kind"]
    if kind == "unencodable":
        return {"statusCode": 200, "body": "x", "when": datetime.datetime(2026, 12, 2)}
    if kind == "bad-status":
        return {"statusCode": 99}
    if kind == "framing":
        return {
            "statusCode": 200,
            "headers": {"Content-Length": "1", "Connection": "close", "X-Kept": "yes"},
            "body": "hello world",
        }
    return {"statusCode": 200, "body": kind}
"""

MANIFEST = """
service: {service}
functions:
  answer:
    handler: app.answer
    events:
      - http:
          method: GET
          path: "/answer/{{kind}}"
"""


def test_results_that_are_no_answer_are_502_and_framing_stays_the_gateways(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    root = write_app(apps / "answers", MANIFEST.format(service="answers"), {"app.py": HANDLERS})
    platform.cli("deploy", str(root), "--stage", stage, check=True)
    with platform.client() as http:
        unencodable = http.get(f"/{stage}/answer/unencodable")
        bad_status = http.get(f"/{stage}/answer/bad-status")
        framing = http.get(f"/{stage}/answer/framing")
        after = http.get(f"/{stage}/answer/next")  # the same keep-alive connection
        invoked = http.post(
            "/2015-03-31/functions/answer/invocations",
            content=b'{"pathParameters": {"kind": "unencodable"}}',
            headers={"x-unkai-stage": stage},
        )
    # A result json.dumps cannot encode is Lambda's MarshalError, before any mapping.
    assert invoked.headers["x-amz-function-error"] == "Unhandled"
    assert invoked.json()["errorType"] == "Runtime.MarshalError"
    assert unencodable.status_code == 502
    assert bad_status.status_code == 502
    assert bad_status.json() == {"message": "Internal Server Error"}
    # The function's framing headers are dropped: the body and the connection are the
    # gateway's to frame, so the next request on the connection is read right.
    assert framing.status_code == 200
    assert framing.text == "hello world"
    assert framing.headers["content-length"] == "11"
    assert framing.headers["x-kept"] == "yes"
    assert "close" not in framing.headers.get("connection", "")
    assert after.status_code == 200 and after.text == "next"
