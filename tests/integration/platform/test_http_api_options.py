"""`provider.httpApi` and per-route options through the real platform: payload format 1.0,
CORS (preflight answered by the gateway, headers on responses), token-bucket throttling."""

from __future__ import annotations

import time
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


VARIABLES_APP = """
def show(event, context):
    return {"vars": event.get("stageVariables")}

def show_v1(event, context):
    return {"statusCode": 200, "body": str(event["stageVariables"])}
"""


def test_stage_variables_reach_both_payload_formats(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    manifest = (
        "service: vars\nprovider:\n  httpApi:\n    stageVariables: {TABLE: items, LIMIT: 5}\n"
        "functions:\n  show:\n    handler: app.show\n    events:\n      - http: GET /vars\n"
        "  show_v1:\n    handler: app.show_v1\n    events:\n"
        "      - http: {method: GET, path: /vars1, payload: '1.0'}\n"
    )
    write_app(apps / "v", manifest, {"app.py": VARIABLES_APP})
    platform.cli("deploy", str(apps / "v"), "--stage", stage, check=True)
    with platform.client() as http:
        assert http.get(f"/{stage}/vars").json() == {"vars": {"TABLE": "items", "LIMIT": "5"}}
        assert http.get(f"/{stage}/vars1").text == "{'LIMIT': '5', 'TABLE': 'items'}"


def test_ip_deny_and_allow_lists_answer_403(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    def manifest(rules: str) -> str:
        return (
            f"service: ips\nprovider:\n  httpApi:\n{rules}functions:\n  show:\n"
            "    handler: app.show\n    events:\n      - http: GET /ip\n"
        )

    cases = {
        "deny-loopback": ("    ipDeny: [127.0.0.0/8]\n", 403),
        "allow-elsewhere": ("    ipAllow: [10.0.0.0/8]\n", 403),
        "allow-loopback": ("    ipAllow: [127.0.0.1/32, '::1/128']\n", 200),
    }
    for name, (rules, status) in cases.items():
        write_app(apps / name, manifest(rules), {"app.py": VARIABLES_APP})
        platform.cli("deploy", str(apps / name), "--stage", stage, check=True)
        with platform.client() as http:
            response = http.get(f"/{stage}/ip")
        assert response.status_code == status, name
        if status == 403:
            assert response.json() == {"message": "Forbidden"}
    bad = apps / "bad-cidr"
    write_app(bad, manifest("    ipDeny: [300.1.2.3/8]\n"), {"app.py": VARIABLES_APP})
    result = platform.cli("deploy", str(bad), "--dry-run")
    assert result.returncode == 1
    assert "unkai.yml:3: provider.httpApi" in result.stderr and "300.1.2.3/8" in result.stderr


def test_default_route_catches_every_unmatched_request(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    app = "def key(event, context):\n    return {'routeKey': event['routeKey']}\n"
    manifest = (
        "service: fallback\nfunctions:\n  key:\n    handler: app.key\n    events:\n"
        "      - http: GET /known\n      - http: $default\n"
    )
    write_app(apps / "d", manifest, {"app.py": app})
    platform.cli("deploy", str(apps / "d"), "--stage", stage, check=True)
    with platform.client() as http:
        assert http.get(f"/{stage}/known").json() == {"routeKey": "GET /known"}
        assert http.post(f"/{stage}/known").json() == {"routeKey": "$default"}
        assert http.delete(f"/{stage}/a/b/c").json() == {"routeKey": "$default"}


def test_integration_timeout_answers_504_and_the_connection_stays_usable(
    tmp_path: Path,
) -> None:
    app = (
        "import time\ndef slow(event, context):\n    time.sleep(float(event['rawQueryString']"
        " or 0))\n    return {'statusCode': 200, 'body': 'done'}\n"
    )
    manifest = (
        "service: slow\nprovider:\n  timeout: 5\nfunctions:\n  slow:\n    handler: app.slow\n"
        "    events:\n      - http: GET /slow\n"
    )
    node = PlatformProcess(
        tmp_path / "data",
        app_dir=write_app(tmp_path / "app", manifest, {"app.py": app}),
        extra_args=("--integration-timeout-s", "0.5"),
    )
    node.start()
    try:
        with node.client() as http:
            started = time.monotonic()
            late = http.get("/slow?2")
            waited = time.monotonic() - started
            # The same kept-alive connection then gets its own answer, not the late one
            quick = http.get("/slow?0")
        assert (late.status_code, late.json()) == (504, {"message": "Endpoint request timed out"})
        assert waited < 1.9
        assert (quick.status_code, quick.text) == (200, "done")
    finally:
        node.stop()


def test_access_logs_record_one_line_per_request_in_the_given_format(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    manifest = (
        "service: logged\nprovider:\n  httpApi:\n    accessLogs:\n      format: "
        "'$context.requestId $context.httpMethod $context.routeKey $context.status "
        "$context.responseLength $context.integrationLatency $context.identity.sourceIp'\n"
        "    ipDeny: [10.9.9.9/32]\n"
        "functions:\n  show:\n    handler: app.show\n    events:\n      - http: GET /logged\n"
    )
    write_app(apps / "l", manifest, {"app.py": VARIABLES_APP})
    platform.cli("deploy", str(apps / "l"), "--stage", stage, check=True)
    with platform.client() as http:
        ok = http.get(f"/{stage}/logged")
        missing = http.post(f"/{stage}/logged")
    request_id = ok.headers["apigw-requestid"]
    lines: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not lines:
        out = platform.cli("logs", "--access", "logged", "--stage", stage, check=True).stdout
        lines = [line for line in out.splitlines() if request_id in line]
        time.sleep(0.1)
    assert lines, out
    line = lines[0][lines[0].index(request_id) :]
    assert line.startswith(f"{request_id} GET GET /logged 200 {len(ok.content)} ")
    latency, ip = line.split()[-2:]
    assert latency.isdigit() and ip == "127.0.0.1"
    # A request no route matched belongs to no service's log
    assert missing.status_code == 405
    bad = apps / "bad-log"
    write_app(
        bad, manifest.replace("$context.status", "$context.statuz"), {"app.py": VARIABLES_APP}
    )
    result = platform.cli("deploy", str(bad), "--dry-run")
    assert result.returncode == 1 and "$context.statuz" in result.stderr
    usage = platform.cli("logs")
    assert usage.returncode == 1 and "either -f/--function NAME or --access SERVICE" in usage.stderr


def test_stage_throttle_is_one_bucket_for_all_the_services_routes(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    manifest = (
        "service: staged\nprovider:\n  httpApi:\n    stageThrottle: {rate: 0.01, burst: 3}\n"
        "functions:\n  show:\n    handler: app.show\n    events:\n      - http: GET /one\n"
        "      - http: GET /two\n"
    )
    write_app(apps / "s", manifest, {"app.py": VARIABLES_APP})
    platform.cli("deploy", str(apps / "s"), "--stage", stage, check=True)
    with platform.client() as http:
        statuses = [http.get(f"/{stage}/{path}").status_code for path in ("one", "two") * 3]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429, 429]


BINARY_APP = """
def mirror(event, context):
    assert event["isBase64Encoded"] is True
    return {"statusCode": 200, "headers": {"content-type": "image/png"},
            "body": event["body"], "isBase64Encoded": True}
"""


def test_binary_bodies_are_base64_in_and_out_in_both_formats(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    manifest = (
        "service: bin\nfunctions:\n  mirror:\n    handler: app.mirror\n    events:\n"
        "      - http: POST /v2\n      - http: {method: POST, path: /v1, payload: '1.0'}\n"
    )
    write_app(apps / "b", manifest, {"app.py": BINARY_APP})
    platform.cli("deploy", str(apps / "b"), "--stage", stage, check=True)
    data = bytes(range(256)) * 4
    with platform.client() as http:
        for path in ("v2", "v1"):
            response = http.post(
                f"/{stage}/{path}", content=data, headers={"content-type": "image/png"}
            )
            assert response.status_code == 200, path
            assert response.headers["content-type"] == "image/png"
            assert response.content == data, path
