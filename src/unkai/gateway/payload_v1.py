"""Request -> event and result -> response for Lambda proxy payload format version 1.0.

Format 1.0 is the REST API proxy shape, which HTTP APIs also offer per integration; functions
written for REST APIs (and the many adapters that only read 1.0) need it. Sources:
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html

Event rules (differences from 2.0 in `mapping.py`):
- `headers` and `queryStringParameters` keep one value per name, the last one;
  `multiValueHeaders` and `multiValueQueryStringParameters` keep every value in order.
- Cookies stay in the `cookie` header; there is no `cookies` field.
- Absent parts are `null`, not missing: query maps, `pathParameters`, `stageVariables`, `body`.
- `resource` and `requestContext.resourcePath` are the route's path template, `resourceId` its
  route key; the `$default` route gives `$default` for all three (as API Gateway sends).

Response rules:
- Only a response document (an object with `statusCode`) is accepted; anything else is a
  malformed response, which API Gateway answers with 502. 1.0 has no 2.0-style inference.
- `headers` and `multiValueHeaders` are merged; a name in both sends the values of both, and a
  value present in both is sent once.
- `body` must be a string (or absent); `isBase64Encoded: true` means it is base64.
"""

from __future__ import annotations

import marshal
from typing import Any
from urllib.parse import parse_qsl

import orjson

from unkai.gateway.mapping import (
    HOP_HEADERS,
    BadResponse,
    Headers,
    Parts,
    RequestParts,
    checked_header_name,
    checked_header_value,
    checked_status,
    decoded_body,
    event_body,
    rendered_answer,
    request_time,
)

#: Identity keys API Gateway sends as null when no authorizer fills them (HTTP API, 1.0).
_NULL_IDENTITY_KEYS = (
    "accessKey",
    "accountId",
    "caller",
    "cognitoAmr",
    "cognitoAuthenticationProvider",
    "cognitoAuthenticationType",
    "cognitoIdentityId",
    "cognitoIdentityPoolId",
    "principalOrgId",
    "user",
    "userArn",
)
#: Bytes that would let a function split the response or forge a header line.
_FORBIDDEN_IN_HEADERS = ("\r", "\n", "\0")


def _multi_query(raw: str) -> dict[str, list[str]] | None:
    """Every value of every query parameter, in order; None when there are none."""
    if not raw:
        return None
    params: dict[str, list[str]] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        params.setdefault(key, []).append(value)
    return params or None


def _resource(route_key: str) -> str:
    """`GET /items/{id}` -> `/items/{id}`; a key without a method (`$default`) stays as is."""
    _, space, path = route_key.partition(" ")
    return path if space else route_key


def event_of(parts: RequestParts) -> dict[str, Any]:
    """The payload format 1.0 event of one HTTP request, from `mapping.request_parts`.

    `raw_path` is the path as the function should see it in `path` and `requestContext.path`
    (API Gateway includes the stage segment there for a named stage); the authorizer (in
    1.0's shape) is added to `requestContext` only when given, as API Gateway omits it
    without an authorizer.
    """
    p = Parts._make(parts)
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    content_type: bytes | None = None
    for name_b, value_b in p.headers:
        if content_type is None and name_b == b"content-type":
            content_type = value_b
        name = name_b.decode("latin-1")
        value = value_b.decode("latin-1")
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    multi_query = _multi_query(p.query_string.decode("latin-1"))
    query = {key: values[-1] for key, values in multi_query.items()} if multi_query else None
    host = headers.get("host", "localhost")
    resource = _resource(p.route_key)
    identity: dict[str, Any] = dict.fromkeys(_NULL_IDENTITY_KEYS)
    identity["sourceIp"] = p.source_ip
    identity["userAgent"] = headers.get("user-agent", "")
    context: dict[str, Any] = {
        "accountId": p.account_id,
        "apiId": p.api_id,
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0],
        "extendedRequestId": p.request_id,
        "httpMethod": p.method,
        "identity": identity,
        "path": p.raw_path,
        "protocol": "HTTP/" + p.http_version,
        "requestId": p.request_id,
        "requestTime": request_time(int(p.time)),
        "requestTimeEpoch": int(p.time * 1000),
        "resourceId": p.route_key,
        "resourcePath": resource,
        "stage": p.stage,
    }
    if p.authorizer is not None:
        context["authorizer"] = p.authorizer
    body: str | None = None
    is_base64 = False
    if p.body:
        body, is_base64 = event_body(p.body, content_type)
    event: dict[str, Any] = {
        "version": "1.0",
        "resource": resource,
        "path": p.raw_path,
        "httpMethod": p.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "requestContext": context,
        "pathParameters": p.path_parameters or None,
        "stageVariables": p.stage_variables or None,
        "body": body,
        "isBase64Encoded": is_base64,
    }
    return event


def response_from_payload_v1(payload: bytes) -> tuple[int, Headers, bytes]:
    """Map a successful function result to (status, headers, body); raises BadResponse.

    The caller answers BadResponse with 502, as API Gateway does for a malformed response.
    """
    try:
        result = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BadResponse(f"function result is not JSON: {exc}") from None
    if not isinstance(result, dict) or "statusCode" not in result:
        raise BadResponse("payload format 1.0 needs a response object with statusCode")
    status = checked_status(result["statusCode"])
    headers = _merged_headers(result.get("headers"), result.get("multiValueHeaders"))
    data = _body(result.get("body"), result.get("isBase64Encoded") is True)
    if data and not any(name == b"content-type" for name, _ in headers):
        headers.append((b"content-type", b"application/json"))
    return status, headers, data


def _merged_headers(single: Any, multi: Any) -> Headers:
    """`multiValueHeaders` values first, then each `headers` value not already among them."""
    if single is not None and not isinstance(single, dict):
        raise BadResponse("headers must be an object")
    if multi is not None and not isinstance(multi, dict):
        raise BadResponse("multiValueHeaders must be an object")
    merged: dict[bytes, list[bytes]] = {}
    for name, values in (multi or {}).items():
        if not isinstance(values, list):
            raise BadResponse(f"multiValueHeaders[{name!r}] must be a list")
        key = checked_header_name(name)
        merged.setdefault(key, []).extend(
            checked_header_value(name, value) for value in values if value is not None
        )
    for name, value in (single or {}).items():
        if value is None:
            continue
        key = checked_header_name(name)
        checked = checked_header_value(name, value)
        values = merged.setdefault(key, [])
        if checked not in values:
            values.append(checked)
    return [
        (key, value) for key, values in merged.items() if key not in HOP_HEADERS for value in values
    ]


def _body(body: Any, is_base64: bool) -> bytes:
    if body is None:
        return b""
    if not isinstance(body, str):
        raise BadResponse(f"body must be a string, got {type(body).__name__}")
    return decoded_body(body, is_base64)


# The adapter (unkai.runtime.adapters), as for 2.0 in `mapping`: the gateway sends
# `mapping.wire(parts)` and reads the answer with `mapping.read_adapted`.


def event(data: bytes) -> dict[str, Any]:
    """The handler's event, in the instance (from what only the platform wrote)."""
    return event_of(marshal.loads(data))


def event_json(data: bytes) -> bytes:
    """The event as JSON, for a custom runtime."""
    return orjson.dumps(event(data))


def response(payload: bytes) -> bytes:
    """The HTTP answer to the handler's JSON result, in the instance; never raises."""
    return rendered_answer(response_from_payload_v1, payload)
