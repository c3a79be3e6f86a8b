"""The HTTP/1.1 server itself, over raw sockets: keep-alive, pipelining, limits, bad input.

Every refusal must leave the platform serving other connections.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.platform_process import PlatformProcess, write_app

APP = """
def hello(event, context):
    return {"statusCode": 200, "body": "hi " + (event.get("body") or "")}
"""
MANIFEST = """
service: raw
functions:
  hello:
    handler: app.hello
    events:
      - http: ANY /hello
"""


@pytest.fixture
def raw_stage(platform: PlatformProcess, apps: Path, stage: str) -> str:
    write_app(apps / "raw", MANIFEST, {"app.py": APP})
    platform.cli("deploy", str(apps / "raw"), "--stage", stage, check=True)
    return stage


def connect(platform: PlatformProcess) -> socket.socket:
    parts = urlsplit(platform.url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10)
    return sock


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One response off `sock` (content-length framed); leftovers stay in `buffer`."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a full head; got {bytes(buffer)!r}")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        rest += chunk
    buffer[:] = rest[length:]
    return status, headers, rest[:length]


def roundtrip(platform: PlatformProcess, data: bytes) -> tuple[int, dict[str, str], bytes]:
    with connect(platform) as sock:
        sock.sendall(data)
        return read_response(sock, bytearray())


def still_serves(platform: PlatformProcess, stage: str) -> bool:
    request = f"GET /{stage}/hello HTTP/1.1\r\nhost: x\r\n\r\n".encode()
    status, _, body = roundtrip(platform, request)
    return status == 200 and body == b"hi "


def test_keep_alive_and_pipelined_requests_are_answered_in_order(
    platform: PlatformProcess, raw_stage: str
) -> None:
    # Given one connection carrying three pipelined requests with different bodies
    requests = b"".join(
        f"POST /{raw_stage}/hello HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\n"
        f"content-length: {len(str(i))}\r\n\r\n{i}".encode()
        for i in range(3)
    )
    with connect(platform) as sock:
        sock.sendall(requests)
        buffer = bytearray()
        # Then the three answers come back on it, in request order
        bodies = [read_response(sock, buffer)[2] for _ in range(3)]
        # And the connection is still open for a fourth
        sock.sendall(f"GET /{raw_stage}/hello HTTP/1.1\r\nhost: x\r\n\r\n".encode())
        status, headers, _ = read_response(sock, buffer)
    assert bodies == [b"hi 0", b"hi 1", b"hi 2"]
    assert status == 200 and "date" in headers and "apigw-requestid" in headers


def test_head_gets_headers_only_and_connection_close_is_honoured(
    platform: PlatformProcess, raw_stage: str
) -> None:
    with connect(platform) as sock:
        sock.sendall(
            f"HEAD /{raw_stage}/hello HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" in head.lower()
    assert body == b""  # and the server closed the connection (recv returned b"")


def test_expect_100_continue_gets_an_interim_response(
    platform: PlatformProcess, raw_stage: str
) -> None:
    with connect(platform) as sock:
        sock.sendall(
            f"POST /{raw_stage}/hello HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\n"
            "content-length: 2\r\nexpect: 100-continue\r\n\r\n".encode()
        )
        interim = sock.recv(65536)
        sock.sendall(b"ok")
        status, _, body = read_response(sock, bytearray())
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    assert (status, body) == (200, b"hi ok")


@pytest.mark.parametrize(
    ("request_bytes", "status", "error"),
    [
        (b"GET /%s/hello HTTP/1.1\r\nhost: x\r\ncontent-length: 10485761\r\n\r\n", 413, "body"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nhost: x\r\n\r\n", 414, "URL"),
        (b"GET /%s/hello HTTP/1.1\r\nx-big: " + b"b" * 17000 + b"\r\n\r\n", 431, "headers"),
        (b"GARBAGE\r\n\r\n", 400, "malformed"),
        (
            b"GET /%s/hello HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n",
            501,
            "upgrade",
        ),
    ],
    ids=["body-413", "url-414", "headers-431", "garbage-400", "upgrade-501"],
)
def test_limits_and_bad_requests_get_a_clear_status_and_others_keep_being_served(
    platform: PlatformProcess, raw_stage: str, request_bytes: bytes, status: int, error: str
) -> None:
    data = (
        request_bytes.replace(b"%s", raw_stage.encode())
        if b"%s" in request_bytes
        else (request_bytes)
    )
    got, headers, body = roundtrip(platform, data)
    assert got == status
    assert error in json.loads(body)["message"]
    assert headers.get("connection") == "close"
    assert still_serves(platform, raw_stage)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(junk=st.binary(min_size=1, max_size=300))
def test_arbitrary_bytes_never_get_a_5xx_or_stop_the_server(
    platform: PlatformProcess, raw_stage: str, junk: bytes
) -> None:
    with connect(platform) as sock:
        sock.sendall(junk + b"\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    if data:
        status = int(data.split(b" ", 2)[1])
        assert status < 500, data[:200]
    assert still_serves(platform, raw_stage)


def test_a_bad_pipelined_request_is_refused_after_the_good_one_before_it_is_answered(
    platform: PlatformProcess, raw_stage: str
) -> None:
    good = f"POST /{raw_stage}/hello HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\n"
    good += "content-length: 1\r\n\r\nA"
    with connect(platform) as sock:
        sock.sendall(good.encode() + b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n")
        buffer = bytearray()
        first = read_response(sock, buffer)
        second = read_response(sock, buffer)
    assert (first[0], first[2]) == (200, b"hi A")
    assert second[0] == 414 and second[1].get("connection") == "close"
