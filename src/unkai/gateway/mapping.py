"""Request -> event and result -> response, as API Gateway HTTP APIs do (payload format 2.0).

Event shape and response rules:
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
- Repeated headers and query parameters are joined with commas; cookies move to `cookies`.
- Bodies of text types are passed as strings; anything else is base64 with isBase64Encoded.
- A result with `statusCode` is a response document; any other valid JSON result becomes a
  200 `application/json` response whose body is the result itself (a returned string keeps its
  JSON quotes, as API Gateway does).
"""

from __future__ import annotations

import base64
import binascii
import marshal
import re
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

if TYPE_CHECKING:  # only types: instances import this module (see `event` below)
    from unkai.gateway.http1 import Request
    from unkai.gateway.routes import Match

Headers = list[tuple[bytes, bytes]]

#: The content types whose bodies an HTTP API hands over as text. Everything else, a missing
#: content type and `application/x-www-form-urlencoded` included, arrives base64-encoded
#: with `isBase64Encoded: true` (the docs do not list them; this split was measured against
#: AWS, and is what other emulators follow).
TEXT_TYPES = (
    b"text/",
    b"application/json",
    b"application/xml",
    b"application/javascript",
    b"+json",
    b"+xml",
)
JSON_HEADERS: Headers = [(b"content-type", b"application/json")]
#: Framing headers are the gateway's to set, as API Gateway does; a function's are dropped.
HOP_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"connection"})

_time_cache: list[Any] = [0, ""]


def request_time(epoch_s: int) -> str:
    """API Gateway's `12/Mar/2020:19:03:58 +0000`, formatted once per second."""
    if _time_cache[0] != epoch_s:
        _time_cache[0] = epoch_s
        _time_cache[1] = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_s))
    return str(_time_cache[1])


def is_text(content_type: bytes | None) -> bool:
    if not content_type:
        return False
    lowered = content_type.lower()
    # `find`, not `in`: bytes.__contains__ makes a TypeError inside first (~0.4 µs each).
    return any(lowered.find(marker) >= 0 for marker in TEXT_TYPES)


def event_body(body: bytes, content_type: bytes | None) -> tuple[str, bool]:
    """(body, isBase64Encoded) of an event. A text type's body is a string unless it is not
    valid UTF-8: then it is base64 too, rather than a string with bytes replaced."""
    if is_text(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def _query_parameters(raw: str) -> dict[str, str] | None:
    if not raw:
        return None
    from urllib.parse import unquote_plus

    params: dict[str, str] = {}
    for pair in raw.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        key, value = unquote_plus(key), unquote_plus(value)
        params[key] = f"{params[key]},{value}" if key in params else value
    return params


def _joined_headers(
    pairs: list[tuple[bytes, bytes]],
) -> tuple[dict[str, str], list[str], bytes | None]:
    """2.0's headers (repeats joined with commas), its cookies, and the content type."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    content_type: bytes | None = None
    for name_b, value_b in pairs:
        name = name_b.decode("latin-1")
        value = value_b.decode("latin-1")
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        if name == "content-type":
            content_type = value_b
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers, cookies, content_type


#: What the event builders need of one request, as `request_parts` puts it together: a plain
#: tuple of str, bytes, float, None, and lists and dicts of those, so that `marshal` carries
#: it (a NamedTuple it would refuse, and in the gateway it would cost ~0.3 µs more to make).
RequestParts = tuple[Any, ...]


class Parts(NamedTuple):
    """The fields of a `RequestParts` tuple, in `request_parts`' order: the event builders
    (`event_of` here and in `payload_v1`) read them by name."""

    route_key: str
    raw_path: str
    method: str
    http_version: str
    query_string: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    source_ip: str
    request_id: str
    stage: str
    api_id: str
    account_id: str
    #: When the request arrived (Unix seconds).
    time: float
    path_parameters: dict[str, str] | None
    stage_variables: dict[str, str] | None
    authorizer: dict[str, Any] | None


def request_parts(
    request: Request,
    match: Match,
    request_id: str,
    stage: str,
    raw_path: str,
    api_id: str,
    account_id: str,
    stage_variables: dict[str, str] | None = None,
    authorizer: dict[str, Any] | None = None,
) -> RequestParts:
    """The request as the event builders take it (in `Parts`' order), when it arrives."""
    client = request.client
    return (
        match.target.route_key,
        raw_path,
        request.method,
        request.http_version,
        request.query_string,
        request.headers,
        request.body,
        client[0] if client else "",
        request_id,
        stage,
        api_id,
        account_id,
        time.time(),
        match.path_parameters or None,
        stage_variables or None,
        authorizer,
    )


def event_of(parts: RequestParts) -> dict[str, Any]:
    """The payload format 2.0 event of one HTTP request."""
    p = Parts._make(parts)
    headers, cookies, content_type = _joined_headers(p.headers)
    raw_query = p.query_string.decode("latin-1")
    host = headers.get("host", "localhost")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": p.route_key,
        "rawPath": p.raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": p.account_id,
            "apiId": p.api_id,
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "http": {
                "method": p.method,
                "path": p.raw_path,
                "protocol": "HTTP/" + p.http_version,
                "sourceIp": p.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": p.request_id,
            "routeKey": p.route_key,
            "stage": p.stage,
            "time": request_time(int(p.time)),
            "timeEpoch": int(p.time * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    query = _query_parameters(raw_query)
    if query is not None:
        event["queryStringParameters"] = query
    if p.path_parameters:
        event["pathParameters"] = p.path_parameters
    if p.stage_variables:
        event["stageVariables"] = p.stage_variables
    if p.authorizer is not None:
        event["requestContext"]["authorizer"] = p.authorizer
    if p.body:
        event["body"], event["isBase64Encoded"] = event_body(p.body, content_type)
    return event


class BadResponse(Exception):
    """The function returned something API Gateway would refuse (it answers 502 then)."""


def header_value(value: Any) -> bytes:
    if isinstance(value, bool):
        return b"true" if value else b"false"
    return str(value).encode("latin-1", "replace")


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 field name


def checked_header_name(name: Any) -> bytes:
    """A response header name a function gave, lower-cased; anything that is not an HTTP token
    (a CR or LF would split the response) is a malformed response."""
    text = str(name)
    if not _TOKEN.fullmatch(text):
        raise BadResponse(f"invalid header name {text!r}")
    return text.lower().encode("ascii")


def checked_header_value(name: Any, value: Any) -> bytes:
    if isinstance(value, list | dict):
        raise BadResponse(f"header {name!r} must be a string, got {type(value).__name__}")
    encoded = header_value(value)
    if b"\r" in encoded or b"\n" in encoded or b"\0" in encoded:
        raise BadResponse(f"header {name!r} has a CR, LF or NUL in its value")
    return encoded


def checked_status(status: Any) -> int:
    """A final status: an integer from 200 to 599 (a 1xx is not an answer)."""
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
        raise BadResponse(f"statusCode must be an integer from 200 to 599, got {status!r}")
    return status


def decoded_body(body: str, is_base64: bool) -> bytes:
    if not is_base64:
        return body.encode()
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise BadResponse("isBase64Encoded is true but body is not valid base64") from None


def response_from_payload(payload: bytes) -> tuple[int, Headers, bytes]:
    """Map a successful function result to (status, headers, body); raises BadResponse."""
    try:
        result = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BadResponse(f"function result is not JSON: {exc}") from None
    if not isinstance(result, dict) or "statusCode" not in result:
        return 200, JSON_HEADERS, payload
    return _response_document(result)


def _response_document(result: dict[str, Any]) -> tuple[int, Headers, bytes]:
    status = result.get("statusCode")
    if type(status) is not int or not 200 <= status <= 599:
        status = checked_status(status)  # raises BadResponse, naming the value
    headers: Headers = []
    raw_headers = result.get("headers")
    typed = _add_headers(headers, raw_headers) if raw_headers else False
    cookies = result.get("cookies")
    if cookies:
        # A parsed JSON value: only a list is one (an ABC isinstance check costs every call).
        if type(cookies) is not list:
            raise BadResponse("cookies must be a list of strings")
        headers.extend((b"set-cookie", checked_header_value("cookies", c)) for c in cookies)
    body = result.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        data = decoded_body(body, result.get("isBase64Encoded") is True)
    else:
        data = orjson.dumps(body)
    if data and not typed:
        headers.append((b"content-type", b"application/json"))
    return status, headers, data


def _add_headers(headers: Headers, raw_headers: Any) -> bool:
    """Append a response document's `headers` (checked); True when one is content-type."""
    if not isinstance(raw_headers, dict):
        raise BadResponse("headers must be an object")
    typed = False
    for name, value in raw_headers.items():
        if value is None:
            continue  # as the 1.0 mapping does: a null header is no header
        key = checked_header_name(name)
        if key not in HOP_HEADERS:
            headers.append((key, checked_header_value(name, value)))
            typed = typed or key == b"content-type"
    return typed


# The adapter (unkai.runtime.adapters): the event is built and the result mapped in the
# instance. The gateway sends `wire(parts)` and reads the answer with `read_adapted`.

#: An adapted answer: status (0: the result was not a valid response, and the rest is why),
#: the length of the header lines ("name: value\r\n" each), then those lines and the body.
_ADAPTED_HEAD = struct.Struct("!HI")


def wire(parts: RequestParts) -> bytes:
    """What the gateway sends of one request (the instance's `event` reads it)."""
    return marshal.dumps(parts)


def event(data: bytes) -> dict[str, Any]:
    """The handler's event, in the instance. marshal, not JSON: it reads only what the
    platform wrote (`wire`); the other way, `read_adapted` parses what the instance sent."""
    return event_of(marshal.loads(data))


def event_json(data: bytes) -> bytes:
    """The event as JSON, for a custom runtime (its Runtime API hands out JSON)."""
    return orjson.dumps(event(data))


def response(payload: bytes) -> bytes:
    """The HTTP answer to the handler's JSON result, in the instance; never raises."""
    return rendered_answer(response_from_payload, payload)


def rendered_answer(
    to_response: Callable[[bytes], tuple[int, Headers, bytes]], payload: bytes
) -> bytes:
    """What an adapter's `response` sends back: `to_response(payload)` rendered, or why it
    is no answer (a result API Gateway refuses is an answer too: a 502, said by
    `read_adapted`)."""
    try:
        status, headers, body = to_response(payload)
    except BadResponse as exc:
        reason = str(exc).encode("utf-8", "replace")
        return _ADAPTED_HEAD.pack(0, 0) + reason
    except Exception as exc:  # boundary: a mapping bug must not take the instance down
        reason = f"mapping the result failed: {exc!r}".encode("utf-8", "replace")
        return _ADAPTED_HEAD.pack(0, 0) + reason
    lines = b"".join([b"%s: %s\r\n" % pair for pair in headers])
    return _ADAPTED_HEAD.pack(status, len(lines)) + lines + body


#: Header lines as `response` renders them: a lower-case token, ": ", a value without CR or
#: LF, CRLF; and none of them a framing header (`HOP_HEADERS`). Anything else did not come
#: from the mapping (a handler can write on its socket). One regex pass: a check per line in
#: Python, or even `b"..." in lines` (which costs a TypeError inside, as it tries the
#: argument as an int first), was a visible share of the loop's time per request.
_RENDERED_LINES = re.compile(
    rb"(?:(?!content-length:|transfer-encoding:|connection:)"
    rb"[!#$%&'*+.^_`|~0-9a-z-]+: [^\r\n]*\r\n)*"
)


def read_adapted(data: bytes) -> tuple[int, bytes, bytes]:
    """(status, header lines, body) of an adapted answer, in the gateway; raises BadResponse.

    The bytes come from the instance's socket, where a handler can write too: anything
    malformed is a bad response (a 502). The lines returned are whole header lines, none of
    them a framing header (those are left out, as the mapping leaves them out), so that they
    go out as they are (`respond_rendered`)."""
    if len(data) < _ADAPTED_HEAD.size:
        raise BadResponse("the instance's answer is cut short")
    status, size = _ADAPTED_HEAD.unpack_from(data)
    start = _ADAPTED_HEAD.size
    if status == 0:
        raise BadResponse(data[start:].decode("utf-8", "replace"))
    end = start + size
    lines = data[start:end]
    if not 200 <= status <= 599 or len(lines) != size:
        raise BadResponse("the instance's answer is malformed")
    if not _RENDERED_LINES.fullmatch(lines):
        lines = b"".join(
            [line + b"\r\n" for line in lines.split(b"\r\n")[:-1] if not _framing(line)]
        )
        if not data.endswith(b"\r\n", start, end) or not _RENDERED_LINES.fullmatch(lines):
            raise BadResponse("the instance's answer is malformed")
    return status, lines, data[end:]


def _framing(line: bytes) -> bool:
    return line.partition(b":")[0] in HOP_HEADERS
