"""Event building and response mapping for Lambda proxy payload format 1.0."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from unkai.gateway import mapping, payload_v1
from unkai.gateway.http1 import Request, split_lines
from unkai.gateway.mapping import BadResponse, request_parts
from unkai.gateway.payload_v1 import response_from_payload_v1
from unkai.gateway.routes import Match, RouteTarget

HEADERS = [
    (b"host", b"api.example.com"),
    (b"user-agent", b"curl/8"),
    (b"x-multi", b"1"),
    (b"x-multi", b"2"),
    (b"cookie", b"a=1; b=2"),
]
MATCH = Match(RouteTarget("dev", "hello", "GET /items/{id}"), {"id": "42"})


def event_of(
    *,
    query: bytes = b"name=ada&tag=a&tag=b",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    match: Match = MATCH,
    **options: Any,
) -> dict[str, Any]:
    request = Request(
        "GET",
        b"/items/42",
        query,
        HEADERS if headers is None else headers,
        body,
        "1.1",
        True,
        ("10.0.0.7", 5555),
    )
    parts = request_parts(
        request,
        match,
        "rid",
        "dev",
        "/items/42",
        "unkai",
        "000000000000",
        options.get("stage_variables"),
        options.get("authorizer"),
    )
    result: dict[str, Any] = orjson.loads(orjson.dumps(payload_v1.event_of(parts)))
    return result


def respond(result: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return response_from_payload_v1(orjson.dumps(result))


def test_event_has_the_1_0_shape() -> None:
    # Given a request with repeated headers and query parameters, a cookie and a path parameter
    # When it becomes a 1.0 event
    event = event_of()

    # Then single-value maps keep the last value and multi-value maps keep all, in order
    assert event["version"] == "1.0"
    assert event["resource"] == "/items/{id}"
    assert event["path"] == "/items/42"
    assert event["httpMethod"] == "GET"
    assert event["headers"]["x-multi"] == "2"
    assert event["multiValueHeaders"]["x-multi"] == ["1", "2"]
    assert event["queryStringParameters"] == {"name": "ada", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"name": ["ada"], "tag": ["a", "b"]}
    # And the cookie stays a header, as 1.0 has no cookies field
    assert event["headers"]["cookie"] == "a=1; b=2"
    assert "cookies" not in event
    assert event["pathParameters"] == {"id": "42"}
    assert event["stageVariables"] is None
    assert event["body"] is None and event["isBase64Encoded"] is False
    # And the request context is the 1.0 one, without an authorizer when none was given
    ctx = event["requestContext"]
    assert ctx["accountId"] == "000000000000" and ctx["apiId"] == "unkai"
    assert ctx["domainName"] == "api.example.com" and ctx["domainPrefix"] == "api"
    assert ctx["requestId"] == ctx["extendedRequestId"] == "rid"
    assert ctx["httpMethod"] == "GET" and ctx["path"] == "/items/42"
    assert ctx["protocol"] == "HTTP/1.1" and ctx["stage"] == "dev"
    assert ctx["resourceId"] == "GET /items/{id}" and ctx["resourcePath"] == "/items/{id}"
    assert isinstance(ctx["requestTimeEpoch"], int) and ctx["requestTime"].endswith(" +0000")
    identity = ctx["identity"]
    assert identity["sourceIp"] == "10.0.0.7" and identity["userAgent"] == "curl/8"
    assert identity["accessKey"] is None and identity["userArn"] is None
    assert "authorizer" not in ctx


def test_stage_variables_and_authorizer_are_passed_through() -> None:
    # Given stage variables and an authorizer context
    # When the event is built with them
    event = event_of(stage_variables={"env": "dev"}, authorizer={"principalId": "u1"})

    # Then both appear where API Gateway puts them
    assert event["stageVariables"] == {"env": "dev"}
    assert event["requestContext"]["authorizer"] == {"principalId": "u1"}


def test_no_query_and_no_path_parameters_are_nulls() -> None:
    # Given a request without a query string on a route without parameters
    match = Match(RouteTarget("dev", "hello", "GET /items"), {})

    # When it becomes a 1.0 event
    event = event_of(query=b"", match=match)

    # Then the absent parts are null rather than missing or empty
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None


def test_default_route_resource_is_default() -> None:
    # Given the $default route
    match = Match(RouteTarget("dev", "hello", "$default"), {})

    # When a request hits it
    ctx_event = event_of(match=match)

    # Then resource, resourcePath and resourceId all say $default
    assert ctx_event["resource"] == "$default"
    assert ctx_event["requestContext"]["resourcePath"] == "$default"
    assert ctx_event["requestContext"]["resourceId"] == "$default"


def test_binary_body_is_base64() -> None:
    # Given a PNG body
    headers = [(b"content-type", b"image/png")]

    # When it becomes a 1.0 event
    event = event_of(headers=headers, body=b"\x89PNG\x00")

    # Then it is base64 and flagged so
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x89PNG\x00"


def test_a_body_without_content_type_is_base64() -> None:
    # Given a form post, and a body with no content type, on an HTTP API
    for headers in ([(b"content-type", b"application/x-www-form-urlencoded")], []):
        # When it becomes a 1.0 event
        event = event_of(headers=headers, body=b"a=1&b=\xff")

        # Then it arrives base64-encoded, byte for byte
        assert event["isBase64Encoded"] is True
        assert base64.b64decode(event["body"]) == b"a=1&b=\xff"


def test_text_body_is_a_string() -> None:
    # Given a JSON body
    headers = [(b"content-type", b"application/json")]

    # When it becomes a 1.0 event
    event = event_of(headers=headers, body=b'{"a":1}')

    # Then it is passed as it is
    assert event["body"] == '{"a":1}' and event["isBase64Encoded"] is False


def test_headers_and_multi_value_headers_are_merged() -> None:
    # Given a response with single-value and multi-value headers, one name in both
    result = {
        "statusCode": 201,
        "headers": {"X-A": "1", "Set-Cookie": "s=1", "Content-Length": "99"},
        "multiValueHeaders": {"Set-Cookie": ["s=1", "t=2"], "X-B": ["x", "y"]},
        "body": "made",
    }

    # When it is mapped
    status, headers, body = respond(result)

    # Then every value is sent once, names lower-cased, and framing headers are dropped
    assert status == 201 and body == b"made"
    assert [v for n, v in headers if n == b"set-cookie"] == [b"s=1", b"t=2"]
    assert [v for n, v in headers if n == b"x-b"] == [b"x", b"y"]
    assert (b"x-a", b"1") in headers
    assert all(n != b"content-length" for n, _ in headers)


def test_base64_response_body_is_decoded() -> None:
    # Given a response whose body is base64
    result = {
        "statusCode": 200,
        "isBase64Encoded": True,
        "headers": {"Content-Type": "image/png"},
        "body": base64.b64encode(b"\x00\x01").decode(),
    }

    # When it is mapped
    _, headers, body = respond(result)

    # Then the client gets the bytes, with the function's content type
    assert body == b"\x00\x01"
    assert headers == [(b"content-type", b"image/png")]


def test_missing_body_is_empty() -> None:
    # Given a response with a status only
    # When it is mapped
    status, headers, body = respond({"statusCode": 204})

    # Then there is no body and no content type
    assert (status, headers, body) == (204, [], b"")


@pytest.mark.parametrize("result", [{"a": 1}, "hello", 3, [1, 2], None])
def test_a_result_that_is_not_a_response_document_is_a_bad_response(result: Any) -> None:
    # Given a result without statusCode, which 2.0 would wrap but 1.0 does not
    # When it is mapped
    # Then it is refused (the caller answers 502)
    with pytest.raises(BadResponse, match="statusCode"):
        respond(result)


def test_a_result_that_is_not_json_is_a_bad_response() -> None:
    # Given bytes that are not JSON
    # When they are mapped
    # Then they are refused
    with pytest.raises(BadResponse, match="not JSON"):
        response_from_payload_v1(b"{nope")


@pytest.mark.parametrize("status", [99, 600, "200", True, None, 200.5])
def test_invalid_status_code_is_a_bad_response(status: Any) -> None:
    # Given a status code that is not an integer from 100 to 599
    # When it is mapped
    # Then it is refused
    with pytest.raises(BadResponse, match="statusCode"):
        respond({"statusCode": status})


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": 200, "headers": {"X-A": "1\r\nX-Evil: 1"}},
        {"statusCode": 200, "multiValueHeaders": {"X-A": ["ok", "bad\n"]}},
        {"statusCode": 200, "headers": {"X-A\r\nX-Evil": "1"}},
    ],
)
def test_crlf_in_a_header_is_a_bad_response(result: dict[str, Any]) -> None:
    # Given a header that would split the response
    # When it is mapped
    # Then it is refused
    with pytest.raises(BadResponse, match="header"):
        respond(result)


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"statusCode": 200, "body": {"a": 1}}, "body must be a string"),
        ({"statusCode": 200, "headers": ["X-A"]}, "headers must be an object"),
        ({"statusCode": 200, "multiValueHeaders": {"X-A": "1"}}, "must be a list"),
        ({"statusCode": 200, "isBase64Encoded": True, "body": "abc"}, "base64"),
    ],
)
def test_malformed_parts_are_a_bad_response(result: dict[str, Any], message: str) -> None:
    # Given a response document with one malformed part
    # When it is mapped
    # Then it is refused, naming the part
    with pytest.raises(BadResponse, match=message):
        respond(result)


def test_the_adapter_builds_the_1_0_event_and_maps_its_answer() -> None:
    """Through the adapter the instance runs (unkai.runtime.adapters): the same event, and
    the same answer or refusal, as the functions above."""
    request = Request("POST", b"/items/42", b"a=1&a=2", HEADERS, b"hi", "1.1", True, None)
    parts = request_parts(request, MATCH, "rid", "dev", "/items/42", "unkai", "0", None, None)
    data = mapping.wire(parts)
    expected = orjson.loads(orjson.dumps(payload_v1.event_of(parts)))
    assert payload_v1.event(data) == expected
    assert orjson.loads(payload_v1.event_json(data)) == expected
    assert expected["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    document = {"statusCode": 201, "multiValueHeaders": {"x-a": ["1", "2"]}, "body": "ok"}
    status, lines, body = mapping.read_adapted(payload_v1.response(orjson.dumps(document)))
    assert (status, split_lines(lines), body) == respond(document)
    with pytest.raises(BadResponse, match="needs a response object with statusCode"):
        mapping.read_adapted(payload_v1.response(b'"just a string"'))
