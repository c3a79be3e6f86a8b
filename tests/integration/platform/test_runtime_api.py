"""`provided` functions through the real platform: deploy a bundle with a `bootstrap`, invoke
it through the Lambda API, and get Lambda's answers (result, X-Amz-Function-Error)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import httpx

from tests.integration.platform_process import PlatformProcess, write_app
from tests.integration.runtime.custom_bootstraps import (
    RIC_HANDLER,
    SHELL_BOOTSTRAP,
    have_curl,
    ric_bootstrap,
    write_bootstrap,
)

MANIFEST = """
service: {service}
functions:
  custom:
    handler: {handler}
    runtime: {runtime}
    timeout: 5
"""


def deploy(platform: PlatformProcess, root: Path, stage: str, runtime: str, handler: str) -> None:
    manifest = MANIFEST.format(service=root.name, runtime=runtime, handler=handler)
    write_app(root, manifest, {})
    platform.cli("deploy", str(root), "--stage", stage, check=True)


def invoke(platform: PlatformProcess, stage: str, event: str) -> httpx.Response:
    with platform.client() as http:
        return http.post(
            "/2015-03-31/functions/custom/invocations",
            content=event.encode(),
            headers={"x-unkai-stage": stage},
        )


def test_shell_bootstrap_through_the_lambda_api(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    assert have_curl(), "the shell bootstrap needs curl on PATH (.ci/run installs it)"
    # Given a provided.al2023 function whose bundle has a bash bootstrap
    root = write_bootstrap(apps / "shell-runtime", SHELL_BOOTSTRAP)
    deploy(platform, root, stage, "provided.al2023", "function.handler")
    # When it is invoked, then the answer is what the script built from the event
    answer = invoke(platform, stage, '{"hello":"world"}')
    assert answer.status_code == 200
    assert "x-amz-function-error" not in answer.headers
    seen = answer.json()
    assert seen["event"] == {"hello": "world"}
    assert seen["request_id"] == answer.headers["x-amzn-requestid"]
    assert seen["arn"].endswith(":function:custom")
    assert seen["handler"] == "function.handler"
    # And an /error post is Lambda's function error
    failed = invoke(platform, stage, '{"action":"fail"}')
    assert failed.headers["x-amz-function-error"] == "Unhandled"
    assert failed.json()["errorType"] == "Custom.Failure"


def test_awslambdaric_through_the_lambda_api(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    assert importlib.util.find_spec("awslambdaric") is not None, "a dev dependency"
    root = write_bootstrap(apps / "ric-runtime", ric_bootstrap())
    (root / "app.py").write_text(RIC_HANDLER)
    deploy(platform, root, stage, "provided", "app.handler")
    answer = invoke(platform, stage, '{"x":1}')
    assert answer.status_code == 200, answer.text
    assert answer.json()["got"] == {"x": 1}
    failed = invoke(platform, stage, json.dumps({"fail": "y"}))
    assert failed.headers["x-amz-function-error"] == "Unhandled"
    error = failed.json()
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "bad input: y")


def test_deploy_refuses_a_provided_function_without_bootstrap(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    root = write_app(
        apps / "no-bootstrap",
        MANIFEST.format(service="no-bootstrap", runtime="provided", handler="x.y"),
        {},
    )
    result = platform.cli("deploy", str(root), "--stage", stage)
    assert result.returncode != 0
    assert "'bootstrap'" in result.stdout + result.stderr


ROUTED_MANIFEST = """
service: {service}
functions:
  custom:
    handler: app.handler
    runtime: provided
    timeout: 5
    events:
      - http:
          method: GET
          path: "/custom/{{name}}"
"""

ROUTED_HANDLER = """
def handler(event, context):
    if event["pathParameters"]["name"] == "broken":
        return {"statusCode": 99}
    return {
        "statusCode": 201,
        "headers": {"x-route": event["routeKey"], "content-type": "text/plain"},
        "cookies": ["seen=" + event["queryStringParameters"]["q"]],
        "body": event["requestContext"]["http"]["path"],
    }
"""


def test_a_custom_runtime_behind_an_http_route(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    """The route's event is built and its result mapped in the platform for a runtime that
    is not unkai's (a Python instance does both itself): the answer is the same."""
    assert importlib.util.find_spec("awslambdaric") is not None, "a dev dependency"
    root = write_bootstrap(apps / "routed-ric", ric_bootstrap())
    (root / "app.py").write_text(ROUTED_HANDLER)
    write_app(root, ROUTED_MANIFEST.format(service="routed-ric"), {})
    platform.cli("deploy", str(root), "--stage", stage, check=True)
    with platform.client() as http:
        answer = http.get(f"/{stage}/custom/ada?q=1")
        broken = http.get(f"/{stage}/custom/broken")
    assert answer.status_code == 201, answer.text
    assert answer.text == f"/{stage}/custom/ada"
    assert answer.headers["x-route"] == "GET /custom/{name}"
    assert answer.headers["content-type"] == "text/plain"
    assert answer.headers["set-cookie"] == "seen=1"
    assert broken.status_code == 502
