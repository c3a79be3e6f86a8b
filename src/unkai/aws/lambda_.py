"""Lambda's REST API (rest-json): Invoke here, the function management operations in
lambda_functions.py, the event source mappings in lambda_mappings.py, the aliases in
lambda_aliases.py; `LambdaApi` routes them.

Paths are `/{api version}/functions[/{name}[/{sub-resource}]]` (botocore's model,
`botocore/data/lambda/2015-03-31/service-2.json`); `OPERATIONS` maps method, version and
sub-resource to the operation; `/2015-03-31/event-source-mappings[/{UUID}]` are
`MAPPING_OPERATIONS`. `{name}` may be an ARN, or `name:qualifier` (a version or an alias);
`aliases/{Name}` is the sub-resource `ALIAS_RESOURCE`, with the alias in `Call.alias`. The
stage is the `X-Unkai-Stage` header (the default stage otherwise). A Lambda operation unkai
does not serve answers 501 naming it.

Invoke (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html): 200 with the payload,
or with `X-Amz-Function-Error: Unhandled` and the error document; `X-Amz-Executed-Version`;
`LogType: Tail` adds `X-Amz-Log-Result`, the base64 of the last 4 KB of the invocation's log
as stored (START .. REPORT); `Event` answers 202 once the event is stored
(`AsyncEvents.accept`), `DryRun` 204 when the function exists. Errors in `x-amzn-ErrorType`.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
from collections.abc import Coroutine
from typing import Any
from urllib.parse import parse_qs

import orjson

from unkai.aws.endpoint import AwsCall
from unkai.aws.errors import AwsError
from unkai.aws.lambda_functions import LambdaFunctionsApi
from unkai.aws.lambda_requests import Call, parse_body
from unkai.background import Background
from unkai.errors import LimitExceeded, UnkaiError
from unkai.gateway.http1 import Headers, HttpConnection, Request
from unkai.invoke.async_events import AsyncEvents
from unkai.invoke.invoker import Invoker
from unkai.invoke.models import InvocationResult, Target
from unkai.invoke.request_ids import new_request_id
from unkai.observe.logs import LogService

log = logging.getLogger("unkai.aws.lambda")

Answer = tuple[int, Headers, bytes]
#: Lambda's synchronous request payload limit.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
#: `LogType: Tail` returns this much of the end of the log.
TAIL_BYTES = 4 * 1024
#: The collection of event source mappings; `/{UUID}` below it is one mapping.
MAPPINGS_PATH = "/2015-03-31/event-source-mappings"
#: Path prefixes the gateway hands to `LambdaApi` (one per API version that has paths here).
PREFIXES = (
    "/2015-03-31/functions",
    MAPPINGS_PATH,
    "/2017-10-31/functions/",
    "/2019-09-25/functions/",
    "/2019-09-30/functions/",
)
#: The sub-resource key of `/functions/{name}/aliases/{Name}` (the alias goes in `Call.alias`).
ALIAS_RESOURCE = "aliases/{Name}"
#: (method, API version, sub-resource) -> operation; sub-resource None is `/functions` itself,
#: "" is `/functions/{name}`.
OPERATIONS: dict[tuple[str, str, str | None], str] = {
    ("POST", "2015-03-31", None): "CreateFunction",
    ("GET", "2015-03-31", None): "ListFunctions",
    ("GET", "2015-03-31", ""): "GetFunction",
    ("DELETE", "2015-03-31", ""): "DeleteFunction",
    ("GET", "2015-03-31", "configuration"): "GetFunctionConfiguration",
    ("PUT", "2015-03-31", "configuration"): "UpdateFunctionConfiguration",
    ("PUT", "2015-03-31", "code"): "UpdateFunctionCode",
    ("POST", "2015-03-31", "versions"): "PublishVersion",
    ("POST", "2015-03-31", "invocations"): "Invoke",
    ("POST", "2015-03-31", "aliases"): "CreateAlias",
    ("GET", "2015-03-31", "aliases"): "ListAliases",
    ("GET", "2015-03-31", ALIAS_RESOURCE): "GetAlias",
    ("PUT", "2015-03-31", ALIAS_RESOURCE): "UpdateAlias",
    ("DELETE", "2015-03-31", ALIAS_RESOURCE): "DeleteAlias",
    ("PUT", "2017-10-31", "concurrency"): "PutFunctionConcurrency",
    ("DELETE", "2017-10-31", "concurrency"): "DeleteFunctionConcurrency",
    ("GET", "2019-09-30", "concurrency"): "GetFunctionConcurrency",
    ("PUT", "2019-09-25", "event-invoke-config"): "PutFunctionEventInvokeConfig",
    ("POST", "2019-09-25", "event-invoke-config"): "UpdateFunctionEventInvokeConfig",
    ("GET", "2019-09-25", "event-invoke-config"): "GetFunctionEventInvokeConfig",
    ("DELETE", "2019-09-25", "event-invoke-config"): "DeleteFunctionEventInvokeConfig",
}
#: (method, whether a UUID follows) -> operation, on `MAPPINGS_PATH`.
MAPPING_OPERATIONS: dict[tuple[str, bool], str] = {
    ("POST", False): "CreateEventSourceMapping",
    ("GET", False): "ListEventSourceMappings",
    ("GET", True): "GetEventSourceMapping",
    ("PUT", True): "UpdateEventSourceMapping",
    ("DELETE", True): "DeleteEventSourceMapping",
}
#: Operations on these paths that unkai does not serve, named in the 501.
UNSERVED: dict[tuple[str, str, str | None], str] = {
    ("GET", "2015-03-31", "versions"): "ListVersionsByFunction",
    ("GET", "2015-03-31", "policy"): "GetPolicy",
    ("POST", "2015-03-31", "policy"): "AddPermission",
    ("GET", "2019-09-25", "event-invoke-config/list"): "ListFunctionEventInvokeConfigs",
}
#: The operations served, as docs/aws-compatibility.md lists them (a test checks they agree).
SERVED_OPERATIONS = frozenset(OPERATIONS.values()) | frozenset(MAPPING_OPERATIONS.values())


def parse_path(path: str) -> tuple[str, str | None, str | None] | None:
    """(API version, function or None, sub-resource or None) of a Lambda path."""
    parts = path.strip("/").split("/")
    if len(parts) < 2 or parts[1] != "functions":
        return None
    if len(parts) == 2:
        return parts[0], None, None
    return parts[0], parts[2], "/".join(parts[3:])


def split_resource(resource: str | None) -> tuple[str | None, str | None]:
    """(the sub-resource's key in OPERATIONS, the alias it names): `aliases/live` ->
    (ALIAS_RESOURCE, "live"); anything else is its own key, naming no alias."""
    if resource is not None and resource.startswith("aliases/"):
        name = resource.removeprefix("aliases/")
        if name and "/" not in name:
            return ALIAS_RESOURCE, name
    return resource, None


def split_name(name: str) -> tuple[str, str | None]:
    """(function, qualifier) of `name`, `name:qualifier` or a (partial) ARN."""
    if ":function:" in name:
        name = name.split(":function:", 1)[1]
    function, _, qualifier = name.partition(":")
    return function, qualifier or None


class LambdaApi:
    """A `RequestHandler` for the Lambda paths; the gateway hands it those requests. It is
    also an `AwsService` (`handle_call`) for an endpoint that routes signed calls."""

    def __init__(
        self,
        invoker: Invoker,
        async_events: AsyncEvents,
        logs: LogService,
        functions: LambdaFunctionsApi,
        *,
        default_stage: str,
    ) -> None:
        self._invoker = invoker
        self._async = async_events
        self._logs = logs
        self._functions = functions
        self._default_stage = default_stage
        self._tasks = Background()

    def handle(self, request: Request, connection: HttpConnection) -> None:
        self._dispatch(request, connection, new_request_id())

    def handle_call(self, request: Request, connection: HttpConnection, call: AwsCall) -> None:
        self._dispatch(request, connection, call.request_id)

    def _dispatch(self, request: Request, connection: HttpConnection, request_id: str) -> None:
        if request.path == MAPPINGS_PATH or request.path.startswith(MAPPINGS_PATH + "/"):
            self._dispatch_mapping(request, connection, request_id)
            return
        parsed = parse_path(request.path)
        resource, alias = split_resource(parsed[2]) if parsed is not None else (None, None)
        key = (request.method, parsed[0], resource) if parsed is not None else None
        operation = OPERATIONS.get(key) if key is not None else None
        if parsed is None or key is None or operation is None:
            connection.respond(*_unserved(request, key, request_id))
            return
        function, qualifier = split_name(parsed[1]) if parsed[1] is not None else (None, None)
        query = _query(request)
        qualifier = query.get("Qualifier", qualifier)
        stage = self._stage(request)
        if operation == "Invoke" and function is not None:
            answer = self._invoke(
                request, connection, request_id, Target(stage, function, qualifier)
            )
            if answer is not None:
                connection.respond(*answer)
            return
        self._spawn(
            self._manage(
                operation,
                request.body,
                connection,
                request_id,
                Call(stage, function, qualifier, query, {}, alias=alias),
            )
        )

    def _dispatch_mapping(
        self, request: Request, connection: HttpConnection, request_id: str
    ) -> None:
        rest = request.path[len(MAPPINGS_PATH) :].strip("/")
        operation = MAPPING_OPERATIONS.get((request.method, bool(rest)))
        if operation is None or "/" in rest:
            connection.respond(*_unserved(request, None, request_id))
            return
        call = Call(self._stage(request), None, None, _query(request), {}, mapping=rest or None)
        self._spawn(self._manage(operation, request.body, connection, request_id, call))

    def _stage(self, request: Request) -> str:
        return _header(request, b"x-unkai-stage") or self._default_stage

    async def _manage(
        self,
        operation: str,
        body: bytes,
        connection: HttpConnection,
        request_id: str,
        call: Call,
    ) -> None:
        try:
            parsed = dataclasses.replace(call, body=parse_body(body))
            status, answer = await self._functions.call(operation, parsed)
        except UnkaiError as exc:
            connection.respond(*_management_error(exc).rest_json(request_id))
            return
        except Exception:  # boundary: a bug answers 500 and is logged, never a hung request
            log.exception(
                "Lambda %s of %r in stage %s failed", operation, call.function, call.stage
            )
            error = AwsError("ServiceException", f"{operation} failed; see the platform log", 500)
            connection.respond(*error.rest_json(request_id))
            return
        headers = [(b"x-amzn-requestid", request_id.encode())]
        if answer is None:
            connection.respond(status, headers, b"")
            return
        headers.append((b"content-type", b"application/json"))
        connection.respond(status, headers, orjson.dumps(answer))

    def _invoke(
        self, request: Request, connection: HttpConnection, request_id: str, target: Target
    ) -> Answer | None:
        """An answer now, or None when the invocation will answer `connection` itself."""
        invocation_type = _header(request, b"x-amz-invocation-type") or "RequestResponse"
        payload = request.body or b"{}"
        refusal = _check_payload(payload, request_id)
        if refusal is not None:
            return refusal
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
        tail = _header(request, b"x-amz-log-type") == "Tail"

        def answer(outcome: InvocationResult | UnkaiError) -> None:
            if tail and isinstance(outcome, InvocationResult):
                self._spawn(self._answer_with_tail(target, outcome, connection, request_id))
                return
            connection.respond(*_invoke_answer(outcome, request_id))

        self._invoker.start(target, payload, answer)
        return None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.spawn(coro)

    async def _answer_with_tail(
        self,
        target: Target,
        result: InvocationResult,
        connection: HttpConnection,
        request_id: str,
    ) -> None:
        """The invocation's stored log (the invoker records it before answering), so the
        tail is what `unkai logs` and CloudWatch Logs show for that request."""
        status, headers, body = _invoke_answer(result, request_id)
        try:
            records = await self._logs.query(
                stage=target.stage, function=target.function, request_id=result.request_id
            )
        except Exception:  # boundary: the answer goes out without its log rather than never
            log.exception("reading the log of %s for LogType Tail failed", result.request_id)
            connection.respond(status, headers, body)
            return
        text = "".join(record.message + "\n" for record in records)
        tail = text.encode()[-TAIL_BYTES:].decode("utf-8", "ignore").encode()
        headers.append((b"x-amz-log-result", base64.b64encode(tail)))
        connection.respond(status, headers, body)

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


def _unserved(request: Request, key: tuple[str, str, str | None] | None, request_id: str) -> Answer:
    named = UNSERVED.get(key) if key is not None else None
    what = (
        f"{named} ({request.method} {request.path})"
        if named
        else (f"{request.method} {request.path}")
    )
    return AwsError(
        "UnknownOperationException",
        f"{what} is not a Lambda operation unkai supports",
        501,
    ).rest_json(request_id)


def _management_error(error: UnkaiError) -> AwsError:
    """The error's AWS shape; Lambda's PreconditionFailedException (a stale RevisionId) is
    412, where the Conflict it is raised as would be 409."""
    shaped = AwsError.from_unkai(error)
    if error.code == "PreconditionFailedException":
        return dataclasses.replace(shaped, status=412)
    return shaped


def _check_payload(payload: bytes, request_id: str) -> Answer | None:
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
    return None


def _query(request: Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.query_string.decode("latin-1")).items()}


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
