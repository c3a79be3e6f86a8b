"""Lambda's Invoke REST path: `POST /2015-03-31/functions/{name}/invocations`.

Thin: parse, call `Invoker.invoke`, translate back. Shaped as the rest-json protocol expects
(https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html): 200 with the payload, or with
`X-Amz-Function-Error: Unhandled` and the error document; `X-Amz-Executed-Version`; errors in
`x-amzn-ErrorType`. The stage is the `X-Unkai-Stage` header (default stage otherwise).
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote

import orjson

from unkai.aws.errors import AwsError
from unkai.errors import UnkaiError
from unkai.gateway.app import Receive, Scope, Send, read_body, respond
from unkai.invoke.invoker import Invoker, Target
from unkai.invoke.request_ids import new_request_id

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


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class LambdaApi:
    def __init__(self, invoker: Invoker, *, default_stage: str) -> None:
        self._invoker = invoker
        self._default_stage = default_stage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        try:
            status, headers, body = await self._handle(scope, receive, request_id)
        except UnkaiError as exc:
            status, headers, body = AwsError.from_unkai(exc).rest_json(request_id)
        await respond(send, status, headers, body)

    async def _handle(
        self, scope: Scope, receive: Receive, request_id: str
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        name = _function_name(scope["path"])
        if scope["method"] != "POST" or name is None:
            return AwsError(
                "UnknownOperationException",
                f"{scope['method']} {scope['path']} is not a Lambda operation unkai supports",
                501,
            ).rest_json(request_id)
        function, _, qualifier_in_name = name.partition(":")
        query = parse_qs(scope["query_string"].decode("latin-1"))
        qualifier = query.get("Qualifier", [qualifier_in_name or None])[0]
        stage = _header(scope, b"x-unkai-stage") or self._default_stage
        invocation_type = _header(scope, b"x-amz-invocation-type") or "RequestResponse"
        payload = await read_body(receive, MAX_PAYLOAD_BYTES)
        if payload is None:
            return AwsError(
                "RequestTooLargeException",
                f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the "
                "InvokeFunction operation",
                413,
            ).rest_json(request_id)
        return await self._invoke(stage, function, qualifier, invocation_type, payload, request_id)

    async def _invoke(
        self,
        stage: str,
        function: str,
        qualifier: str | None,
        invocation_type: str,
        payload: bytes,
        request_id: str,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if not payload:
            payload = b"{}"
        try:
            orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            return AwsError(
                "InvalidRequestContentException",
                f"Could not parse request body into json: {exc}",
                400,
            ).rest_json(request_id)
        if invocation_type == "DryRun":
            await self._invoker.resolve(Target(stage, function, qualifier))
            return 204, [(b"x-amzn-requestid", request_id.encode())], b""
        if invocation_type != "RequestResponse":
            return AwsError(
                "UnsupportedInvocationTypeException",
                f"InvocationType {invocation_type} is not supported yet; use "
                "RequestResponse or DryRun",
                501,
            ).rest_json(request_id)
        result = await self._invoker.invoke(Target(stage, function, qualifier), payload)
        headers = [
            (b"content-type", b"application/json"),
            (b"x-amzn-requestid", result.request_id.encode()),
            (b"x-amz-executed-version", result.executed_version.encode()),
        ]
        if result.error is not None:
            headers.append((b"x-amz-function-error", result.error.kind.encode()))
            return 200, headers, orjson.dumps(result.error.to_document())
        return 200, headers, result.payload or b"null"
