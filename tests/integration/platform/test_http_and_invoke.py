"""Routes, the Lambda invoke path, warm reuse, context, environment: the real platform."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx

from tests.integration.platform_process import PlatformProcess, write_app

ECHO = """
import json, os
count = 0
def echo(event, context):
    global count
    count += 1
    return {"statusCode": 200, "headers": {"content-type": "application/json", "x-fn": "echo"},
            "cookies": ["c=1; Path=/"],
            "body": json.dumps({"event": event, "pid": os.getpid(), "count": count})}

def plain(event, context):
    return {"got": event}

def info(event, context):
    return {
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "arn": context.invoked_function_arn,
        "memory": context.memory_limit_in_mb,
        "log_group": context.log_group_name,
        "log_stream": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "env": dict(os.environ),
        "cwd": os.getcwd(),
    }
"""

MANIFEST = """
service: {service}
provider:
  memorySize: 256
  timeout: 5
  environment: {{SHARED: from-provider, OVERRIDE: provider}}
functions:
  echo:
    handler: app.echo
    events:
      - http: "ANY /echo/{{proxy+}}"
      - http: "GET /items/{{id}}"
  plain:
    handler: app.plain
    events:
      - http: POST /plain
  info:
    handler: app.info
    environment: {{OVERRIDE: function, NUMBER: 42}}
"""


def deploy(platform: PlatformProcess, root: Path, stage: str, service: str) -> None:
    write_app(root, MANIFEST.format(service=service), {"app.py": ECHO})
    platform.cli("deploy", str(root), "--stage", stage, check=True)


def test_route_builds_the_event_and_maps_the_response(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    # Given an app deployed to its own stage
    deploy(platform, apps / "a", stage, "svc-a")
    with platform.client() as http:
        # When a request hits a greedy route with a query string, a cookie and a JSON body
        response = http.post(
            f"/{stage}/echo/a/b?x=1&x=2",
            json={"k": "v"},
            headers={"cookie": "s=abc", "x-custom": "yes"},
        )
    # Then the response document is mapped and the event has the 2.0 shape
    assert response.status_code == 200
    assert response.headers["x-fn"] == "echo"
    assert response.headers["set-cookie"] == "c=1; Path=/"
    event = response.json()["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /echo/{proxy+}"
    assert event["rawPath"] == f"/{stage}/echo/a/b"  # as API Gateway: the stage stays in it
    assert event["pathParameters"] == {"proxy": "a/b"}
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["cookies"] == ["s=abc"]
    assert event["headers"]["x-custom"] == "yes"
    assert json.loads(event["body"]) == {"k": "v"}
    assert event["requestContext"]["stage"] == stage
    assert event["requestContext"]["http"]["method"] == "POST"


def test_warm_instance_is_reused_with_its_module_state(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    deploy(platform, apps / "a", stage, "svc-warm")
    with platform.client() as http:
        first = http.get(f"/{stage}/items/1").json()
        second = http.get(f"/{stage}/items/2").json()
    assert first["pid"] == second["pid"]
    assert second["count"] == first["count"] + 1
    assert second["event"]["pathParameters"] == {"id": "2"}


def test_plain_return_becomes_json_200_and_unknown_paths_404_405(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    deploy(platform, apps / "a", stage, "svc-plain")
    with platform.client() as http:
        ok = http.post(f"/{stage}/plain", content=b"hi", headers={"content-type": "text/plain"})
        missing = http.get(f"/{stage}/nothing")
        wrong_method = http.get(f"/{stage}/plain")
    assert ok.status_code == 200
    assert ok.headers["content-type"] == "application/json"
    assert ok.json()["got"]["body"] == "hi"
    assert missing.status_code == 404 and missing.json() == {"message": "Not Found"}
    assert wrong_method.status_code == 405


def test_invoke_api_context_and_environment(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    deploy(platform, apps / "a", stage, "svc-info")
    with platform.client() as http:
        response = http.post(
            "/2015-03-31/functions/info/invocations",
            content=b"{}",
            headers={"x-unkai-stage": stage},
        )
    assert response.status_code == 200
    assert response.headers["x-amz-executed-version"] == "$LATEST"
    body = response.json()
    assert body["function_name"] == "info"
    assert body["function_version"] == "$LATEST"
    assert body["arn"].startswith("arn:aws:lambda:us-east-1:") and body["arn"].endswith(
        ":function:info"
    )
    assert body["memory"] == "256"
    assert body["log_group"] == "/aws/lambda/info"
    assert 0 < body["remaining_ms"] <= 5000
    assert response.headers["x-amzn-requestid"] == body["request_id"]
    env = body["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "info"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["_HANDLER"] == "app.info"
    assert env["LAMBDA_TASK_ROOT"] == body["cwd"]
    assert env["AWS_REGION"] == "us-east-1"
    assert env["SHARED"] == "from-provider"
    assert env["OVERRIDE"] == "function"
    assert env["NUMBER"] == "42"
    # Nothing of the platform's own environment leaks into the function
    leaked = {k for k in os.environ if k in env and k not in ("PATH", "LANG", "TZ", "HOME")}
    assert not leaked, leaked
    assert not any(k.startswith("UNKAI_") or k.startswith("PYTEST") for k in env)


def test_invoke_api_errors_have_lambda_shapes(platform: PlatformProcess, stage: str) -> None:
    with platform.client() as http:
        missing = http.post(
            "/2015-03-31/functions/nope/invocations",
            content=b"{}",
            headers={"x-unkai-stage": stage},
        )
        bad_json = http.post(
            "/2015-03-31/functions/nope/invocations",
            content=b"{nope",
            headers={"x-unkai-stage": stage},
        )
    assert missing.status_code == 404
    assert missing.headers["x-amzn-errortype"] == "ResourceNotFoundException"
    assert "nope" in missing.json()["message"]
    assert bad_json.status_code == 400
    assert bad_json.headers["x-amzn-errortype"] == "InvalidRequestContentException"


def test_cli_invoke_prints_the_result(platform: PlatformProcess, apps: Path, stage: str) -> None:
    deploy(platform, apps / "a", stage, "svc-cli")
    done = platform.cli("invoke", "-f", "plain", "-d", '{"name": "ada"}', "--stage", stage)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"got": {"name": "ada"}}
    # A payload wider than a terminal still comes out as JSON (no line breaks inside strings).
    long = json.dumps({"name": "ada " * 60})
    wide = platform.cli("invoke", "-f", "plain", "-d", long, "--stage", stage)
    assert wide.returncode == 0, wide.stderr
    assert json.loads(wide.stdout) == {"got": json.loads(long)}
    bad = platform.cli("invoke", "-f", "plain", "-d", "{nope", "--stage", stage)
    assert bad.returncode == 1
    assert "--data is not valid JSON" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_cli_without_platform_says_how_to_start_one(tmp_path: Path) -> None:
    done = PlatformProcess(tmp_path, url="http://127.0.0.1:9").cli("ls")
    assert done.returncode == 1
    assert "no unkai platform answers at http://127.0.0.1:9" in done.stderr
    assert "unkai up" in done.stderr


def test_concurrent_requests_scale_out_to_several_instances(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    write_app(
        apps / "s",
        """
service: svc-scale
functions:
  slow:
    handler: app.slow
    timeout: 10
""",
        {
            "app.py": "import os, time\n"
            "def slow(e, c):\n    time.sleep(0.4)\n    return os.getpid()\n"
        },
    )
    platform.cli("deploy", str(apps / "s"), "--stage", stage, check=True)

    async def burst() -> set[int]:
        import asyncio

        async with httpx.AsyncClient(base_url=platform.url, timeout=30) as http:
            responses = await asyncio.gather(
                *(
                    http.post(
                        "/2015-03-31/functions/slow/invocations",
                        content=b"{}",
                        headers={"x-unkai-stage": stage},
                    )
                    for _ in range(4)
                )
            )
        return {int(r.text) for r in responses}

    import asyncio

    pids = asyncio.run(burst())
    assert len(pids) == 4
