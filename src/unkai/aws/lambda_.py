"""Lambda's Invoke REST path: `POST /2015-03-31/functions/{name}/invocations`.

Thin: parse, call `Invoker.start` (or `AsyncEvents.accept` for `Event`: 202), translate back.
Shaped as the rest-json protocol expects
(https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html): 200 with the payload, or with
`X-Amz-Function-Error: Unhandled` and the error document; `X-Amz-Executed-Version`; errors in
`x-amzn-ErrorType`. The stage is the `X-Unkai-Stage` header (default stage otherwise).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from unkai.aws.errors import AwsError
from unkai.errors import LimitExceeded, UnkaiError
from unkai.gateway.http1 import Headers, HttpConnection, Request
from unkai.invoke.async_events import AsyncEvents
from unkai.invoke.invoker import Invoker, Target
from unkai.invoke.models import InvocationResult
from unkai.invoke.request_ids import new_request_id

Answer = tuple[int, Headers, bytes]
#: Lambda's synchronous request payload limit.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
PREFIX = "/2015-03-31/functions/"
SUFFIX = "/invocations"


def _function_name(path: str) -> str | None:
    if not path.endswith(SUFFIX):
        return None
    name = unquote(path[len(PREFIX) : -len(SUFFIX)])
    # An ARN or partial ARN names the function in its last parts (name or name:qualifier).
    if name.startswith("arn:"):
        parts = name.split(":")
        return ":".join(parts[6:]) if len(parts) >= 7 else None
    return name or None


class LambdaApi:
    """A `RequestHandler` for the Lambda paths; the gateway hands it those requests."""

    def __init__(self, invoker: Invoker, async_events: AsyncEvents, *, default_stage: str) -> None:
        self._invoker = invoker
        self._async = async_events
        self._default_stage = default_stage
        self._tasks: set[asyncio.Task[None]] = set()

    def handle(self, request: Request, connection: HttpConnection) -> None:
        request_id = new_request_id()
        answer = self._handle(request, connection, request_id)
        if answer is not None:
            connection.respond(*answer)

    def _handle(
        self, request: Request, connection: HttpConnection, request_id: str
    ) -> Answer | None:
        """An answer now, or None when the invocation will answer `connection` itself."""
        name = _function_name(request.path)
        if request.method != "POST" or name is None:
            return AwsError(
                "UnknownOperationException",
                f"{request.method} {request.path} is not a Lambda operation unkai supports",
                501,
            ).rest_json(request_id)
        function, _, qualifier_in_name = name.partition(":")
        query = parse_qs(request.query_string.decode("latin-1"))
        qualifier = query.get("Qualifier", [qualifier_in_name or None])[0]
        stage = _header(request, b"x-unkai-stage") or self._default_stage
        invocation_type = _header(request, b"x-amz-invocation-type") or "RequestResponse"
        payload = request.body or b"{}"
        if len(payload) > MAX_PAYLOAD_BYTES:
            return AwsError(
                "RequestTooLargeException",
                f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the "
                "InvokeFunction operation",
                413,
            ).rest_json(request_id)
        try:
            orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            return AwsError(
                "InvalidRequestContentException",
                f"Could not parse request body into json: {exc}",
                400,
            ).rest_json(request_id)
        target = Target(stage, function, qualifier)
        if invocation_type == "DryRun":
            self._spawn(self._dry_run(target, connection, request_id))
            return None
        if invocation_type == "Event":
            self._spawn(self._accept(target, payload, connection, request_id))
            return None
        if invocation_type != "RequestResponse":
            return AwsError(
                "InvalidParameterValueException",
                f"InvocationType must be RequestResponse, Event or DryRun, got {invocation_type}",
                400,
            ).rest_json(request_id)

        def answer(outcome: InvocationResult | UnkaiError) -> None:
            connection.respond(*_invoke_answer(outcome, request_id))

        self._invoker.start(target, payload, answer)
        return None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(
        self, target: Target, payload: bytes, connection: HttpConnection, request_id: str
    ) -> None:
        """Event: 202 once the event is stored; its request id is the one it runs with."""
        try:
            event_id = await self._async.accept(target, payload)
        except LimitExceeded as exc:
            answer = AwsError(
                "RequestTooLargeException",
                f"Request must be smaller than {exc.limit} bytes for an asynchronous invocation",
                413,
            ).rest_json(request_id)
            connection.respond(*answer)
            return
        except UnkaiError as exc:
            connection.respond(*AwsError.from_unkai(exc).rest_json(request_id))
            return
        connection.respond(202, [(b"x-amzn-requestid", event_id.encode())], b"")

    async def _dry_run(self, target: Target, connection: HttpConnection, request_id: str) -> None:
        try:
            await self._invoker.resolve(target)
        except UnkaiError as exc:
            connection.respond(*AwsError.from_unkai(exc).rest_json(request_id))
            return
        connection.respond(204, [(b"x-amzn-requestid", request_id.encode())], b"")


def _header(request: Request, name: bytes) -> str | None:
    value = request.header(name)
    return value.decode("latin-1") if value is not None else None


def _invoke_answer(outcome: InvocationResult | UnkaiError, request_id: str) -> Answer:
    """Invoke's response: the payload, or 200 with X-Amz-Function-Error and the error
    document, or the refusal in the rest-json error shape."""
    if isinstance(outcome, UnkaiError):
        return AwsError.from_unkai(outcome).rest_json(request_id)
    headers = [
        (b"content-type", b"application/json"),
        (b"x-amzn-requestid", outcome.request_id.encode()),
        (b"x-amz-executed-version", outcome.executed_version.encode()),
    ]
    if outcome.error is not None:
        headers.append((b"x-amz-function-error", outcome.error.kind.encode()))
        return 200, headers, orjson.dumps(outcome.error.to_document())
    return 200, headers, outcome.payload or b"null"
