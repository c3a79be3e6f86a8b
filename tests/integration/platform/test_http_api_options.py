"""`provider.httpApi` and per-route options through the real platform: payload format 1.0,
CORS (preflight answered by the gateway, headers on responses), token-bucket throttling."""

from __future__ import annotations

from pathlib import Path

from tests.integration.platform_process import PlatformProcess, write_app

APP = """
import json
calls = 0
def echo(event, context):
    global calls
    calls += 1
    return {"statusCode": 200, "headers": {"access-control-allow-origin": "https://evil.test"},
            "multiValueHeaders": {"x-multi": ["a", "b"]},
            "body": json.dumps({"event": event, "calls": calls})}

def v2(event, context):
    return {"version": event["version"], "calls": calls}
"""

MANIFEST = """
service: opts
provider:
  httpApi:
    cors:
      allowOrigins: [https://app.example]
      allowMethods: [GET, POST]
      allowHeaders: [content-type, x-token]
      exposeHeaders: [x-multi]
      maxAge: 600
    throttle: {rate: 1, burst: 3}
functions:
  echo:
    handler: app.echo
    events:
      - http: {method: POST, path: "/v1/{id}", payload: '1.0', throttle: {rate: 1000, burst: 1000}}
  v2:
    handler: app.v2
    events:
      - http: GET /limited
"""


def deploy(platform: PlatformProcess, root: Path, stage: str) -> None:
    write_app(root, MANIFEST, {"app.py": APP})
    platform.cli("deploy", str(root), "--stage", stage, check=True)


def test_payload_1_0_route_gets_the_rest_proxy_event_and_mapping(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    deploy(platform, apps / "o", stage)
    with platform.client() as http:
        response = http.post(
            f"/{stage}/v1/42?tag=a&tag=b",
            content=b"hi",
            headers={"content-type": "text/plain", "origin": "https://app.example"},
        )
    assert response.status_code == 200
    event = response.json()["event"]
    assert event["resource"] == "/v1/{id}"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"id": "42"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"]}
    assert event["queryStringParameters"] == {"tag": "b"}
    assert event["body"] == "hi" and event["isBase64Encoded"] is False
    assert event["requestContext"]["stage"] == stage
    # multiValueHeaders reach the client; the gateway's CORS headers replace the function's
    assert response.headers.get_list("x-multi") == ["a", "b"]
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert response.headers["access-control-expose-headers"].lower() == "x-multi"


def test_cors_preflight_is_answered_without_invoking_the_function(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    deploy(platform, apps / "o", stage)
    with platform.client() as http:
        preflight = http.options(
            f"/{stage}/v1/7",
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "Content-Type, X-Token",
            },
        )
        after = http.post(f"/{stage}/v1/7", content=b"x")
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in preflight.headers["access-control-allow-methods"].upper()
    assert preflight.headers["access-control-max-age"] == "600"
    # The function ran once: for the POST, not for the preflight
    assert after.json()["calls"] == 1
    with platform.client() as http:
        stranger = http.post(
            f"/{stage}/v1/7", content=b"x", headers={"origin": "https://other.example"}
        )
    assert "access-control-allow-origin" not in stranger.headers


def test_token_bucket_throttles_a_route_with_429_and_refills(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    deploy(platform, apps / "o", stage)
    with platform.client() as http:
        # Given burst 3 at 1 request/s: a quick run of 6 requests
        statuses = [http.get(f"/{stage}/limited").status_code for _ in range(6)]
        throttled = http.get(f"/{stage}/limited")
    assert statuses[:3] == [200, 200, 200]
    assert 429 in statuses[3:]
    assert throttled.status_code in (200, 429)
    if throttled.status_code == 429:
        assert throttled.json() == {"message": "Too Many Requests"}
    # The 1.0 route has its own, larger bucket
    with platform.client() as http:
        assert all(http.post(f"/{stage}/v1/1", content=b"").status_code == 200 for _ in range(5))


def test_bad_http_api_options_name_file_line_and_field(
    platform: PlatformProcess, apps: Path
) -> None:
    cases = {
        "payload": (
            "service: bad\nfunctions:\n  f:\n    handler: app.echo\n    events:\n"
            "      - http: {method: GET, path: /x, payload: '3.0'}\n",
            "unkai.yml:6: functions.f.events[0].http.payload",
        ),
        "cors": (
            "service: bad\nprovider:\n  httpApi:\n    cors:\n      allowOrigins: ['*']\n"
            "      allowCredentials: true\nfunctions:\n  f:\n    handler: app.echo\n",
            "provider.httpApi.cors",
        ),
        "throttle": (
            "service: bad\nprovider:\n  httpApi:\n    throttle: {rate: 0, burst: 1}\n"
            "functions:\n  f:\n    handler: app.echo\n",
            "provider.httpApi.throttle.rate",
        ),
    }
    for name, (manifest, expected) in cases.items():
        write_app(apps / name, manifest, {"app.py": APP})
        result = platform.cli("deploy", str(apps / name), "--dry-run")
        assert result.returncode != 0, name
        assert expected in result.stderr + result.stdout, (name, result.stderr, result.stdout)
