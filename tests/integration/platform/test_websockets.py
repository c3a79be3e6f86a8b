"""WebSocket APIs through the real platform with a real client (websockets) and boto3's
apigatewaymanagementapi: $connect (accept and refuse), route selection, two-way routes,
$default, posting from inside a function, @connections GET/POST/DELETE, $disconnect."""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.integration.platform_process import PlatformProcess, write_app

APP = """
import json, os, urllib.request

def _post(event, text):
    ctx = event["requestContext"]
    url = f"http://{ctx['domainName']}/{ctx['stage']}/@connections/{ctx['connectionId']}"
    urllib.request.urlopen(urllib.request.Request(url, data=text.encode(), method="POST"))

def connect(event, context):
    token = (event.get("queryStringParameters") or {}).get("token")
    if token == "bad":
        return {"statusCode": 403}
    if token == "nonsense":
        return {"statusCode": True}
    if token == "proto":
        return {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "chat.v1"}}
    return {"statusCode": 200}

def disconnect(event, context):
    with open(os.environ["DISCONNECTS"], "a") as out:
        out.write(event["requestContext"]["connectionId"] + "\\n")

def echo(event, context):
    body = json.loads(event["body"])
    return {"statusCode": 200, "body": "echo:" + body["text"]}

def push(event, context):
    _post(event, "pushed:" + event["requestContext"]["connectionId"])

def fallback(event, context):
    _post(event, "fallback:" + event["body"] + ":" + event["requestContext"]["routeKey"])
"""

MANIFEST = """
service: chat
provider:
  environment: {{DISCONNECTS: {disconnects}}}
functions:
  connect: {{handler: app.connect, events: [{{websocket: $connect}}]}}
  disconnect: {{handler: app.disconnect, events: [{{websocket: $disconnect}}]}}
  echo:
    handler: app.echo
    events: [{{websocket: {{route: echo, routeResponseSelectionExpression: $default}}}}]
  push: {{handler: app.push, events: [{{websocket: push}}]}}
  fallback: {{handler: app.fallback, events: [{{websocket: $default}}]}}
"""


def deploy(platform: PlatformProcess, apps: Path, stage: str, disconnects: Path) -> str:
    root = write_app(apps / "chat", MANIFEST.format(disconnects=disconnects), {"app.py": APP})
    out = platform.cli("deploy", str(root), "--stage", stage, check=True).stdout
    assert "WEBSOCKET ws://" in out, out
    return platform.url.replace("http://", "ws://") + f"/{stage}"


def management(platform: PlatformProcess, stage: str) -> object:
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=f"{platform.url}/{stage}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}),
    )


def test_routes_two_way_replies_default_and_posting_from_a_function(
    platform: PlatformProcess, apps: Path, stage: str, tmp_path: Path
) -> None:
    url = deploy(platform, apps, stage, tmp_path / "disconnects.txt")
    with connect(url, open_timeout=20) as ws:
        ws.send(json.dumps({"action": "echo", "text": "hi"}))
        assert ws.recv(timeout=20) == "echo:hi"
        ws.send(json.dumps({"action": "push"}))
        pushed = ws.recv(timeout=20)
        assert isinstance(pushed, str) and pushed.startswith("pushed:")
        ws.send("not json")
        assert ws.recv(timeout=20) == "fallback:not json:$default"
        ws.send(json.dumps({"action": "unknown-route"}))
        assert ws.recv(timeout=20) == 'fallback:{"action": "unknown-route"}:$default'
    connection_id = pushed.removeprefix("pushed:")
    # $disconnect ran for it, once the client closed
    deadline = time.monotonic() + 20
    seen = ""
    while time.monotonic() < deadline and connection_id not in seen:
        seen = (
            (tmp_path / "disconnects.txt").read_text()
            if (tmp_path / "disconnects.txt").exists()
            else ""
        )
        time.sleep(0.05)
    assert connection_id in seen


def test_connect_route_can_refuse_the_handshake(
    platform: PlatformProcess, apps: Path, stage: str, tmp_path: Path
) -> None:
    url = deploy(platform, apps, stage, tmp_path / "d.txt")
    with pytest.raises(InvalidStatus) as refused:
        connect(url + "?token=bad", open_timeout=20)
    assert refused.value.response.status_code == 403


def test_management_api_with_boto3(
    platform: PlatformProcess, apps: Path, stage: str, tmp_path: Path
) -> None:
    url = deploy(platform, apps, stage, tmp_path / "d.txt")
    api = management(platform, stage)
    with connect(url, open_timeout=20) as ws:
        ws.send(json.dumps({"action": "push"}))
        connection_id = str(ws.recv(timeout=20)).removeprefix("pushed:")
        info = api.get_connection(ConnectionId=connection_id)  # type: ignore[attr-defined]
        assert info["Identity"]["SourceIp"] == "127.0.0.1"
        assert "ConnectedAt" in info
        api.post_to_connection(ConnectionId=connection_id, Data=b"from boto3")  # type: ignore[attr-defined]
        assert ws.recv(timeout=20) == "from boto3"
        api.delete_connection(ConnectionId=connection_id)  # type: ignore[attr-defined]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=20)
    with pytest.raises(ClientError) as gone:
        api.post_to_connection(ConnectionId=connection_id, Data=b"late")  # type: ignore[attr-defined]
    assert gone.value.response["Error"]["Code"] == "GoneException"


def test_a_stage_without_websocket_routes_refuses_upgrades(platform: PlatformProcess) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(platform.url.replace("http://", "ws://") + "/no-such-stage", open_timeout=20)
    assert refused.value.response.status_code == 404


def test_a_message_over_128_kb_closes_the_connection_with_1009(
    platform: PlatformProcess, apps: Path, stage: str, tmp_path: Path
) -> None:
    url = deploy(platform, apps, stage, tmp_path / "d.txt")
    with connect(url, open_timeout=20, max_size=None) as ws:
        ws.send("x" * (128 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=20)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_connect_answers_a_subprotocol_and_a_nonsense_status_refuses(
    platform: PlatformProcess, apps: Path, stage: str, tmp_path: Path
) -> None:
    url = deploy(platform, apps, stage, tmp_path / "d.txt")
    with connect(url + "?token=proto", open_timeout=20, subprotocols=["chat.v1"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "chat.v1"
    with pytest.raises(InvalidStatus) as refused:
        connect(url + "?token=nonsense", open_timeout=20)
    assert refused.value.response.status_code == 500


def test_a_message_cannot_select_the_connect_or_disconnect_route(
    platform: PlatformProcess, apps: Path, stage: str, tmp_path: Path
) -> None:
    disconnects = tmp_path / "disconnects.txt"
    url = deploy(platform, apps, stage, disconnects)
    with connect(url, open_timeout=20) as ws:
        for route in ("$disconnect", "$connect"):
            message = json.dumps({"action": route})
            ws.send(message)
            assert ws.recv(timeout=20) == f"fallback:{message}:$default"
        assert not disconnects.exists()


def test_the_128_kb_limit_counts_bytes_before_base64(
    platform: PlatformProcess, apps: Path, stage: str, tmp_path: Path
) -> None:
    url = deploy(platform, apps, stage, tmp_path / "d.txt")
    with connect(url, open_timeout=20, max_size=None) as ws:
        # 100 KB of binary is 133 KB once base64-encoded for the event: still within the limit
        ws.send(b"\x00" * (100 * 1024))
        ws.send(json.dumps({"action": "echo", "text": "still open"}))
        assert ws.recv(timeout=20) == "echo:still open"
    with connect(url, open_timeout=20, max_size=None) as ws:
        # 70,000 characters of "é" are 140,000 bytes of UTF-8: over it
        ws.send("é" * 70_000)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=20)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
