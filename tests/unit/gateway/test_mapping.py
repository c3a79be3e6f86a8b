"""Event building (payload 2.0) and response mapping, as API Gateway does them."""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson
import pytest

from unkai.gateway import mapping
from unkai.gateway.http1 import Request, split_lines
from unkai.gateway.mapping import BadResponse, request_parts, response_from_payload
from unkai.gateway.routes import Match, RouteTarget


def scope(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "method": "GET",
        "query_string": b"name=ada&tag=a&tag=b",
        "headers": [
            (b"host", b"127.0.0.1:8080"),
            (b"user-agent", b"curl/8"),
            (b"x-multi", b"1"),
            (b"x-multi", b"2"),
            (b"cookie", b"a=1; b=2"),
        ],
        "client": ("127.0.0.1", 5555),
        "http_version": "1.1",
    }
    base.update(overrides)
    return base


MATCH = Match(RouteTarget("dev", "hello", "GET /items/{id}"), {"id": "42"})


def event_of(s: dict[str, Any], body: bytes = b"") -> dict[str, Any]:
    request = Request(
        s["method"],
        b"/items/42",
        s["query_string"],
        s["headers"],
        body,
        s["http_version"],
        True,
        s["client"],
    )
    parts = request_parts(request, MATCH, "rid", "dev", "/items/42", "unkai", "000000000000")
    result: dict[str, Any] = orjson.loads(orjson.dumps(mapping.event_of(parts)))
    return result


def test_event_has_the_2_0_shape() -> None:
    event = event_of(scope())
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /items/{id}"
    assert event["rawPath"] == "/items/42"
    assert event["rawQueryString"] == "name=ada&tag=a&tag=b"
    assert event["queryStringParameters"] == {"name": "ada", "tag": "a,b"}
    assert event["headers"]["x-multi"] == "1,2"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["pathParameters"] == {"id": "42"}
    ctx = event["requestContext"]
    assert ctx["http"] == {
        "method": "GET",
        "path": "/items/42",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "curl/8",
    }
    assert ctx["requestId"] == "rid" and ctx["stage"] == "dev"
    assert isinstance(ctx["timeEpoch"], int)
    assert event["isBase64Encoded"] is False
    assert "body" not in event


def test_text_body_is_a_string_and_binary_is_base64() -> None:
    json_scope = scope(headers=[(b"content-type", b"application/json")])
    assert event_of(json_scope, b'{"a":1}')["body"] == '{"a":1}'
    binary_scope = scope(headers=[(b"content-type", b"image/png")])
    event = event_of(binary_scope, b"\x89PNG\x00")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x89PNG\x00"


@pytest.mark.parametrize(
    ("content_type", "body", "as_text"),
    [
        (b"text/plain; charset=utf-8", "héllo".encode(), True),
        (b"application/xml", b"<a/>", True),
        (b"application/javascript", b"f()", True),
        (b"application/vnd.api+json", b"{}", True),
        # HTTP APIs base64 everything else, these two included
        (None, b"a=1", False),
        (b"application/x-www-form-urlencoded", b"a=1&b=%20", False),
        (b"application/octet-stream", bytes(range(256)), False),
        # A text type whose bytes are not UTF-8 is base64 rather than altered
        (b"text/plain", b"caf\xe9", False),
    ],
)
def test_which_bodies_are_text_and_which_base64(
    content_type: bytes | None, body: bytes, as_text: bool
) -> None:
    headers = [(b"content-type", content_type)] if content_type else []
    event = event_of(scope(headers=headers), body)
    assert event["isBase64Encoded"] is (not as_text)
    received = event["body"].encode() if as_text else base64.b64decode(event["body"])
    assert received == body


def test_no_query_string_means_no_parameters_key() -> None:
    assert "queryStringParameters" not in event_of(scope(query_string=b""))


def test_response_document_is_mapped() -> None:
    payload = orjson.dumps(
        {"statusCode": 201, "headers": {"X-A": "1"}, "body": "made", "cookies": ["s=1; Path=/"]}
    )
    status, headers, body = response_from_payload(payload)
    assert status == 201 and body == b"made"
    assert (b"x-a", b"1") in headers and (b"set-cookie", b"s=1; Path=/") in headers


def test_base64_response_body_is_decoded() -> None:
    payload = orjson.dumps(
        {"statusCode": 200, "isBase64Encoded": True, "body": base64.b64encode(b"\x00\x01").decode()}
    )
    assert response_from_payload(payload)[2] == b"\x00\x01"


@pytest.mark.parametrize("result", [{"a": 1}, "hello", 3, [1, 2], None])
def test_any_other_json_becomes_a_200_json_body(result: Any) -> None:
    payload = orjson.dumps(result)
    status, headers, body = response_from_payload(payload)
    assert status == 200 and body == payload
    assert headers == [(b"content-type", b"application/json")]


@pytest.mark.parametrize("status", [99, 600, "200", True, None])
def test_invalid_status_code_is_a_bad_response(status: Any) -> None:
    with pytest.raises(BadResponse, match="statusCode"):
        response_from_payload(orjson.dumps({"statusCode": status}))


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"statusCode": 200, "headers": {"x\r\nset-cookie: a=b\r\nx": "1"}}, "invalid header name"),
        ({"statusCode": 200, "headers": {"x-€": "1"}}, "invalid header name"),
        ({"statusCode": 200, "headers": {"x-ok": "a\r\nb"}}, "CR, LF or NUL"),
        ({"statusCode": 200, "headers": {"x-foo\n": "1"}}, "invalid header name"),
        ({"statusCode": 200, "headers": {"x-list": ["a", "b"]}}, "must be a string, got list"),
        ({"statusCode": 200, "headers": {"x-map": {}}}, "must be a string, got dict"),
        ({"statusCode": 101}, "from 200 to 599"),
        ({"statusCode": 200, "body": "abc", "isBase64Encoded": True}, "not valid base64"),
    ],
)
def test_responses_that_could_split_or_confuse_http_are_malformed(
    document: dict[str, Any], problem: str
) -> None:
    with pytest.raises(BadResponse, match=problem):
        response_from_payload(orjson.dumps(document))


def test_a_null_header_is_no_header() -> None:
    document = {"statusCode": 200, "headers": {"x-gone": None, "x-n": 5, "x-b": True}}
    _, headers, _ = response_from_payload(orjson.dumps(document))
    assert (b"x-n", b"5") in headers and (b"x-b", b"true") in headers
    assert all(name != b"x-gone" for name, _ in headers)


# The adapter: the event is built and the result mapped in the instance (runtime/adapters.py).


def _parts(body: bytes = b"", authorizer: dict[str, Any] | None = None) -> tuple[Any, ...]:
    s = scope(headers=[*scope()["headers"], (b"content-type", b"application/octet-stream")])
    request = Request(
        "POST", b"/items/42", s["query_string"], s["headers"], body, "1.1", True, s["client"]
    )
    return request_parts(
        request,
        MATCH,
        request_id="rid",
        stage="dev",
        raw_path="/items/42",
        api_id="unkai",
        account_id="000000000000",
        stage_variables={"color": "blue"},
        authorizer=authorizer,
    )


def test_the_adapter_builds_the_event_the_gateway_would() -> None:
    parts = _parts(b"\x00\xffbinary", {"jwt": {"claims": {"sub": "u1", "n": 3}, "scopes": None}})
    data = mapping.wire(parts)
    expected = orjson.loads(orjson.dumps(mapping.event_of(parts)))
    assert mapping.event(data) == expected
    assert orjson.loads(mapping.event_json(data)) == expected
    assert expected["body"] == base64.b64encode(b"\x00\xffbinary").decode()
    assert expected["isBase64Encoded"] is True
    assert expected["stageVariables"] == {"color": "blue"}
    assert expected["requestContext"]["authorizer"]["jwt"]["claims"] == {"sub": "u1", "n": 3}
    assert expected["requestContext"]["http"]["method"] == "POST"


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": 201, "headers": {"X-A": "1", "Content-Type": "text/plain"}, "body": "hi"},
        {"statusCode": 200, "cookies": ["a=1", "b=2"], "body": "x"},
        {"statusCode": 204},
        {
            "statusCode": 200,
            "body": base64.b64encode(b"\x00\r\n").decode(),
            "isBase64Encoded": True,
        },
        {"plain": "json"},
        "a string",
    ],
)
def test_an_adapted_answer_is_what_the_gateway_would_map(result: Any) -> None:
    payload = orjson.dumps(result)
    status, lines, body = mapping.read_adapted(mapping.response(payload))
    assert (status, split_lines(lines), body) == response_from_payload(payload)


def test_framing_headers_an_instance_sends_are_left_out() -> None:
    """The mapping in the instance drops them; a handler writing on the socket itself must
    not get them through either (they would desynchronize a proxy's connection)."""
    lines = b"x-a: 1\r\ncontent-length: 0\r\ntransfer-encoding: chunked\r\nx-connection: 1\r\n"
    data = b"\x00\xc8" + len(lines).to_bytes(4, "big") + lines + b"body"
    assert mapping.read_adapted(data) == (200, b"x-a: 1\r\nx-connection: 1\r\n", b"body")


@pytest.mark.parametrize(
    "payload",
    [b'{"statusCode": 99}', b"not json", b'{"statusCode": 200, "headers": {"a\\nb": "1"}}'],
)
def test_a_refused_result_reads_as_the_same_bad_response(payload: bytes) -> None:
    with pytest.raises(BadResponse) as expected:
        response_from_payload(payload)
    with pytest.raises(BadResponse, match="^" + re.escape(str(expected.value)) + "$"):
        mapping.read_adapted(mapping.response(payload))


@pytest.mark.parametrize(
    "data",
    [
        b"\x00",  # cut short
        b"\x00\x64\x00\x00\x00\x00",  # status 100
        b"\x00\xc8\x00\x00\x00\x10a: b\r\n",  # header lines longer than the answer
        b"\x00\xc8\x00\x00\x00\x04a: b",  # a header line without its CRLF
        b"\x00\xc8\x00\x00\x00\x06abcd\r\nbody",  # a header line without ": "
        b"\x00\xc8\x00\x00\x00\x09a: b\nc\r\n",  # a bare LF would split the response
        b"\x00\xc8\x00\x00\x00\x09a: b\rc\r\n",  # and so would a bare CR
        b"\x00\xc8\x00\x00\x00\x08\r\na: b\r\n",  # an empty line ends the head
        b"\x00\xc8\x00\x00\x00\x06A: b\r\n",  # not a name the mapping renders
    ],
)
def test_a_malformed_answer_from_an_instance_is_a_bad_response(data: bytes) -> None:
    with pytest.raises(BadResponse, match=r"malformed|cut short"):
        mapping.read_adapted(data)
