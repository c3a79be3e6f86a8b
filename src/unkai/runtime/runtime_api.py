"""The Lambda Runtime API (version 2018-06-01), served to one custom-runtime instance.

https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html. A custom runtime (a
`bootstrap` executable, or awslambdaric) finds the API at `AWS_LAMBDA_RUNTIME_API` and loops:

  GET  /2018-06-01/runtime/invocation/next          blocks until there is an event; 200 with
                                                      the event and the Lambda-Runtime-* headers
  POST /2018-06-01/runtime/invocation/{id}/response   the result; 202 {"status":"OK"}
  POST /2018-06-01/runtime/invocation/{id}/error      the error document; 202
  POST /2018-06-01/runtime/init/error                 init failed (before the first /next); 202

A request id that is not the invocation in flight answers 400 `InvalidRequestID`, an unknown
path 404, as Lambda's runtime interface emulator does. Each instance gets its own listener on
127.0.0.1 (one port, one runtime), so the API needs no authentication beyond the loopback
address, like Lambda's link-local endpoint.

This module only parses and routes; `RuntimeApiTarget` (the instance) owns the semantics.
The HTTP/1.1 protocol is the gateway's `HttpServer`: a generic httptools server with no
gateway logic in it, reused rather than written a second time.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from unkai.gateway.http1 import Headers, HttpConnection, Limits, Request

PREFIX = "/2018-06-01/runtime/"
NEXT_PATH = PREFIX + "invocation/next"
INIT_ERROR_PATH = PREFIX + "init/error"
INVOCATION_PREFIX = PREFIX + "invocation/"

#: Lambda's header naming the error type of /error and /init/error posts.
ERROR_TYPE_HEADER = b"lambda-runtime-function-error-type"

#: Lambda's payload quota is 6 MB each way; a long-polling /next must not be swept as idle.
LIMITS = Limits(max_body_bytes=6 * 1024 * 1024 + 1024, keep_alive_timeout_s=24 * 3600.0)

JSON_HEADERS: Headers = [(b"content-type", b"application/json")]
ACCEPTED = b'{"status":"OK"}'


class RuntimeApiTarget(Protocol):
    """What the API calls on its instance. Each returns True when the call was accepted."""

    def next_invocation(self, connection: HttpConnection) -> str | None:
        """Park `connection` until an event comes (or answer it now); a refusal's message
        when the runtime may not ask now."""
        ...

    def invocation_response(self, request_id: str, body: bytes) -> bool: ...

    def invocation_error(self, request_id: str, error: dict[str, Any]) -> bool: ...

    def init_error(self, error: dict[str, Any]) -> bool: ...


def error_document(body: bytes, error_type: bytes | None) -> dict[str, Any]:
    """Lambda's `{errorMessage, errorType, stackTrace}` from what a runtime posted.

    The body's own fields win; the Lambda-Runtime-Function-Error-Type header fills a missing
    type, and a body that is not a JSON object becomes the message, so nothing is lost.
    """
    try:
        posted: Any = json.loads(body) if body else {}
    except ValueError:
        posted = body.decode("utf-8", "replace")
    if not isinstance(posted, dict):
        posted = {"errorMessage": posted if isinstance(posted, str) else json.dumps(posted)}
    header_type = error_type.decode("latin-1") if error_type else ""
    stack = posted.get("stackTrace")
    return {
        "errorMessage": str(posted.get("errorMessage", "")),
        "errorType": str(posted.get("errorType") or header_type or "Runtime.Unknown"),
        "stackTrace": [str(line) for line in stack] if isinstance(stack, list) else [],
    }


def _refusal(status: int, error_type: str, message: str) -> tuple[int, bytes]:
    body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    return status, body


class RuntimeApi:
    """The `RequestHandler` of one instance's Runtime API listener."""

    def __init__(self, target: RuntimeApiTarget) -> None:
        self._target = target

    def handle(self, request: Request, connection: HttpConnection) -> None:
        path = request.path
        if request.method == "GET" and path == NEXT_PATH:
            refused = self._target.next_invocation(connection)  # answered when an event comes
            if refused is not None:
                status, body = _refusal(403, "InvalidStateTransition", refused)
                connection.respond(status, JSON_HEADERS, body)
            return
        status, body = self._post(request) if request.method == "POST" else (0, b"")
        if not status:
            status, body = _refusal(404, "NotFound", f"no {request.method} {path} here")
        connection.respond(status, JSON_HEADERS, body)

    def _post(self, request: Request) -> tuple[int, bytes]:
        path = request.path
        error_type = request.header(ERROR_TYPE_HEADER)
        if path == INIT_ERROR_PATH:
            if self._target.init_error(error_document(request.body, error_type)):
                return 202, ACCEPTED
            return _refusal(403, "InvalidStateTransition", "init already completed")
        if not path.startswith(INVOCATION_PREFIX):
            return 0, b""
        request_id, _, action = path[len(INVOCATION_PREFIX) :].partition("/")
        if action == "response":
            accepted = self._target.invocation_response(request_id, request.body)
        elif action == "error":
            doc = error_document(request.body, error_type)
            accepted = self._target.invocation_error(request_id, doc)
        else:
            return 0, b""
        if accepted:
            return 202, ACCEPTED
        return _refusal(400, "InvalidRequestID", f"{request_id} is not the invocation in flight")

    def upgrade(self, request: Request, connection: HttpConnection, rest: bytes) -> bool:
        return False
