"""HTTP mapping of the control plane under `/_unkai/`: parse, call ControlService, answer JSON.

Errors are mapped once, here, from `unkai.gateway.errors.status_for`; the body is
`{"error": code, "code": code, "message": ..., "hint": ...}` so the CLI can print what to do
next. `code` is the service's own name where it has one (SQS's `QueueDoesNotExist`); `error`
carries the same value for the clients written before `code` existed.

Queues live under `/_unkai/api/queues` (SQS's names for fields; a body with `Entries` is the
batch form of the same call):

    GET    /queues                          every queue with its counts
    POST   /queues                          {"name", "attributes"?}           -> 201
    GET    /queues/{name}                   attributes (?attribute=Name, repeatable)
    PATCH  /queues/{name}                   {"attributes"}
    DELETE /queues/{name}
    POST   /queues/{name}/messages          {"MessageBody", ...} | {"Entries": [...]}
    POST   /queues/{name}/messages/receive  {"MaxNumberOfMessages"?, "WaitTimeSeconds"?,
                                             "VisibilityTimeout"?}
    POST   /queues/{name}/messages/delete   {"ReceiptHandle"} | {"Entries": [...]}
    POST   /queues/{name}/messages/visibility  {"ReceiptHandle", "VisibilityTimeout"} | Entries
    POST   /queues/{name}/purge
    POST   /queues/{name}/redrive           {"destination"?, "max_messages"?}
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from unkai.control.request_body import attribute_text, check_fields, json_body, json_object
from unkai.control.service import ControlService
from unkai.control.topic_http import topic_routes
from unkai.errors import ConfigError, InvalidRequest, UnkaiError
from unkai.events.queue_requests import SendEntry
from unkai.gateway.errors import status_for
from unkai.observe.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE


def _error_response(exc: UnkaiError) -> JSONResponse:
    body = {"error": exc.code, "code": exc.code, "message": exc.message, "hint": exc.hint}
    return JSONResponse(body, status_code=status_for(exc))


#: The last millisecond `datetime` can represent (9999-12-31T23:59:59.999Z): a log time bound
#: past it cannot be printed, and one past SQLite's 64-bit INTEGER made the query fail with 500.
MAX_EPOCH_MS = 253_402_300_799_999
#: SQLite's INTEGER (and so a log record id) is a signed 64-bit number.
MAX_RECORD_ID = 2**63 - 1
#: A page of the logs endpoint holds 1 to 10,000 records, as CloudWatch's FilterLogEvents `limit`:
#: https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html
MAX_LOG_PAGE_RECORDS = 10_000


def _int_param(
    request: Request,
    name: str,
    low: int,
    high: int,
    default: int | None = None,
    hint: str | None = None,
) -> int | None:
    """Query parameter `name` as an int in [low, high], or `default` when it is absent.

    Raises ConfigError (400) naming the parameter and the range, so an out-of-range value is
    the caller's mistake and never reaches the store (where it would be a 500).
    """
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:  # also a number of more than 4300 digits
        raise ConfigError(f"must be an integer, got {raw[:40]!r}", field=name, hint=hint) from None
    if not low <= value <= high:
        raise ConfigError(
            f"must be between {low} and {high}, got {raw[:40]}", field=name, hint=hint
        )
    return value


def _time_param(request: Request, name: str) -> int | None:
    """A log time bound in epoch milliseconds, from 1970 to the end of year 9999."""
    hint = f"send epoch milliseconds, or leave {name} out for no bound"
    return _int_param(request, name, 0, MAX_EPOCH_MS, hint=hint)


_SEND_FIELDS = frozenset(
    {
        "Id",
        "MessageBody",
        "DelaySeconds",
        "MessageAttributes",
        "MessageGroupId",
        "MessageDeduplicationId",
    }
)
_RECEIVE_FIELDS = frozenset({"MaxNumberOfMessages", "WaitTimeSeconds", "VisibilityTimeout"})


def _entries(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The `Entries` of a batch body, each checked to be an object (the core checks the rest)."""
    entries = body["Entries"]
    if not isinstance(entries, list):
        raise InvalidRequest("Entries must be a JSON array", code="InvalidParameterValue")
    return [json_object(e, f"Entries[{i}]") for i, e in enumerate(entries)]


def _send_entry(raw: dict[str, Any], where: str) -> SendEntry:
    """One SendMessage(Batch) entry. The body, delay and ids are checked by the core, which
    names the entry; only the shape JSON can get wrong is checked here."""
    check_fields(raw, _SEND_FIELDS, where)
    attributes = raw.get("MessageAttributes")
    if attributes is not None:
        json_object(attributes, f"{where}: MessageAttributes")
    return SendEntry(
        # A missing or non-string body is the core's MissingParameter, naming the entry.
        body=raw.get("MessageBody"),  # type: ignore[arg-type]
        attributes=attributes,
        delay_s=raw.get("DelaySeconds"),
        group_id=raw.get("MessageGroupId"),
        dedup_id=raw.get("MessageDeduplicationId"),
        id=raw.get("Id", "0"),
    )


def _queue_attributes(body: dict[str, Any], required: bool) -> dict[str, str]:
    """SQS attribute values are strings; numbers and booleans are taken as their text, and
    an object (a RedrivePolicy) as its JSON."""
    raw = body.get("attributes")
    if raw is None and not required:
        return {}
    attributes = json_object(raw, "attributes")
    return {name: attribute_text(value, name) for name, value in attributes.items()}


def _fields(raw: dict[str, Any], fields: tuple[str, ...], where: str) -> tuple[Any, ...]:
    """The values of `fields`, all required and no others; the core checks the values."""
    check_fields(raw, fields, where)
    missing = [f for f in fields if f not in raw]
    if missing:
        raise InvalidRequest(f"{where}: {missing[0]} is required", code="MissingParameter")
    return tuple(raw[f] for f in fields)


def _batch(body: dict[str, Any], fields: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Each entry's (Id, *fields) of a batch body."""
    check_fields(body, ("Entries",), "batch")
    return [_fields(e, ("Id", *fields), f"Entries[{i}]") for i, e in enumerate(_entries(body))]


class ControlHttp:
    """Starlette endpoints; each one parses, calls ControlService and answers JSON."""

    def __init__(self, control: ControlService) -> None:
        self.control = control

    async def health(self, request: Request) -> Response:
        """503 until the node has started and applied its start-up deploy, then 200."""
        if not self.control.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def metrics(self, request: Request) -> Response:
        return Response(await self.control.metrics(), media_type=METRICS_CONTENT_TYPE)

    async def deploy(self, request: Request) -> Response:
        body = await json_body(request)
        if not isinstance(body.get("app_dir"), str):
            raise ConfigError("app_dir (a directory path) is required", field="app_dir")
        result = await self.control.deploy(
            body["app_dir"], body.get("stage"), bool(body.get("dry_run"))
        )
        return JSONResponse(result)

    async def remove(self, request: Request) -> Response:
        body = await json_body(request)
        if not isinstance(body.get("service"), str):
            raise ConfigError("service (a service name) is required", field="service")
        result = await self.control.remove(
            body["service"], body.get("stage"), bool(body.get("dry_run"))
        )
        return JSONResponse(result)

    async def functions(self, request: Request) -> Response:
        stage = request.query_params.get("stage")
        return JSONResponse({"functions": await self.control.functions(stage)})

    async def function_info(self, request: Request) -> Response:
        name = request.path_params["name"]
        stage = request.query_params.get("stage")
        return JSONResponse(await self.control.function_info(name, stage))

    async def drain(self, request: Request) -> Response:
        name = request.path_params["name"]
        return JSONResponse(await self.control.drain(name, request.query_params.get("stage")))

    async def instances(self, request: Request) -> Response:
        return JSONResponse(self.control.instances())

    async def logs(self, request: Request) -> Response:
        q = request.query_params
        result = await self.control.logs(
            request.path_params["name"],
            q.get("stage"),
            since_ms=_time_param(request, "since_ms"),
            until_ms=_time_param(request, "until_ms"),
            request_id=q.get("request_id") or None,
            contains=q.get("filter") or None,
            after_id=_int_param(request, "after_id", 0, MAX_RECORD_ID, 0) or 0,
            limit=_int_param(request, "limit", 1, MAX_LOG_PAGE_RECORDS, 1000) or 1000,
        )
        return JSONResponse(result)

    async def create_key(self, request: Request) -> Response:
        body = await json_body(request)
        for field in ("name", "plan"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise ConfigError(f"{field} is required", field=field)
        value = body.get("value")
        if value is not None and not isinstance(value, str):
            raise ConfigError("value must be a string", field="value")
        result = await self.control.create_key(body["name"], body["plan"], body.get("stage"), value)
        return JSONResponse(result, status_code=201)

    async def keys(self, request: Request) -> Response:
        return JSONResponse({"keys": self.control.keys(request.query_params.get("stage"))})

    async def revoke_key(self, request: Request) -> Response:
        name = request.path_params["name"]
        return JSONResponse(await self.control.revoke_key(name, request.query_params.get("stage")))

    async def schedules(self, request: Request) -> Response:
        return JSONResponse(
            {"schedules": self.control.schedules(request.query_params.get("stage"))}
        )

    async def enable_schedule(self, request: Request) -> Response:
        return await self._set_schedule(request, True)

    async def disable_schedule(self, request: Request) -> Response:
        return await self._set_schedule(request, False)

    async def _set_schedule(self, request: Request, enabled: bool) -> Response:
        name = request.path_params["name"]
        stage = request.query_params.get("stage")
        return JSONResponse(await self.control.set_schedule_enabled(name, stage, enabled))

    # -- queues ---------------------------------------------------------------------------

    async def queues(self, request: Request) -> Response:
        return JSONResponse({"queues": await self.control.queues()})

    async def create_queue(self, request: Request) -> Response:
        body = await json_body(request)
        check_fields(body, ("name", "attributes"), "create queue")
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest("name (the queue's name) is required", code="MissingParameter")
        result = await self.control.create_queue(name, _queue_attributes(body, required=False))
        return JSONResponse(result, status_code=201)

    async def queue_attributes(self, request: Request) -> Response:
        wanted = request.query_params.getlist("attribute") or ["All"]
        name = request.path_params["name"]
        return JSONResponse(await self.control.queue_attributes(name, wanted))

    async def set_queue_attributes(self, request: Request) -> Response:
        body = await json_body(request)
        check_fields(body, ("attributes",), "set queue attributes")
        attributes = _queue_attributes(body, required=True)
        name = request.path_params["name"]
        return JSONResponse(await self.control.set_queue_attributes(name, attributes))

    async def delete_queue(self, request: Request) -> Response:
        return JSONResponse(await self.control.delete_queue(request.path_params["name"]))

    async def send(self, request: Request) -> Response:
        body = await json_body(request)
        name = request.path_params["name"]
        if "Entries" not in body:
            entry = _send_entry(body, "message")
            return JSONResponse(await self.control.send_message(name, entry))
        check_fields(body, ("Entries",), "batch")
        entries = [_send_entry(e, f"Entries[{i}]") for i, e in enumerate(_entries(body))]
        return JSONResponse(await self.control.send_message_batch(name, entries))

    async def receive(self, request: Request) -> Response:
        body = await json_body(request)
        check_fields(body, _RECEIVE_FIELDS, "receive")
        result = await self.control.receive_messages(
            request.path_params["name"],
            max_messages=body.get("MaxNumberOfMessages", 1),
            wait_s=body.get("WaitTimeSeconds"),
            visibility_s=body.get("VisibilityTimeout"),
        )
        return JSONResponse(result)

    async def delete_messages(self, request: Request) -> Response:
        body = await json_body(request)
        name = request.path_params["name"]
        if "Entries" not in body:
            (receipt,) = _fields(body, ("ReceiptHandle",), "delete message")
            return JSONResponse(await self.control.delete_message(name, receipt))
        pairs = [(i, r) for i, r in _batch(body, ("ReceiptHandle",))]
        return JSONResponse(await self.control.delete_message_batch(name, pairs))

    async def change_visibility(self, request: Request) -> Response:
        body = await json_body(request)
        name = request.path_params["name"]
        fields = ("ReceiptHandle", "VisibilityTimeout")
        if "Entries" not in body:
            receipt, timeout_s = _fields(body, fields, "change visibility")
            result = await self.control.change_message_visibility(name, receipt, timeout_s)
            return JSONResponse(result)
        changes = [(i, r, t) for i, r, t in _batch(body, fields)]
        return JSONResponse(await self.control.change_message_visibility_batch(name, changes))

    async def purge_queue(self, request: Request) -> Response:
        return JSONResponse(await self.control.purge_queue(request.path_params["name"]))

    async def redrive(self, request: Request) -> Response:
        body = await json_body(request) if await request.body() else {}
        check_fields(body, ("destination", "max_messages"), "redrive")
        destination, limit = body.get("destination"), body.get("max_messages")
        if destination is not None and not isinstance(destination, str):
            raise InvalidRequest("destination must be a queue name", code="InvalidParameterValue")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
            raise InvalidRequest("max_messages must be an integer", code="InvalidParameterValue")
        name = request.path_params["name"]
        return JSONResponse(await self.control.redrive(name, destination, limit))


async def _on_unkai_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, UnkaiError):  # registered for UnkaiError only
        raise exc
    return _error_response(exc)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return JSONResponse({"error": "HttpError", "message": detail}, status_code=status)


def _queue_routes(h: ControlHttp) -> list[Route]:
    base = "/_unkai/api/queues"
    one = base + "/{name}"
    return [
        Route(base, h.queues, methods=["GET"]),
        Route(base, h.create_queue, methods=["POST"]),
        Route(one, h.queue_attributes, methods=["GET"]),
        Route(one, h.set_queue_attributes, methods=["PATCH"]),
        Route(one, h.delete_queue, methods=["DELETE"]),
        Route(one + "/messages", h.send, methods=["POST"]),
        Route(one + "/messages/receive", h.receive, methods=["POST"]),
        Route(one + "/messages/delete", h.delete_messages, methods=["POST"]),
        Route(one + "/messages/visibility", h.change_visibility, methods=["POST"]),
        Route(one + "/purge", h.purge_queue, methods=["POST"]),
        Route(one + "/redrive", h.redrive, methods=["POST"]),
    ]


def build_control_app(control: ControlService) -> Starlette:
    h = ControlHttp(control)
    routes = [
        Route("/_unkai/health", h.health),
        Route("/_unkai/metrics", h.metrics),
        Route("/_unkai/api/deploy", h.deploy, methods=["POST"]),
        Route("/_unkai/api/remove", h.remove, methods=["POST"]),
        Route("/_unkai/api/functions", h.functions),
        Route("/_unkai/api/functions/{name}", h.function_info),
        Route("/_unkai/api/functions/{name}/drain", h.drain, methods=["POST"]),
        Route("/_unkai/api/functions/{name}/logs", h.logs),
        Route("/_unkai/api/instances", h.instances),
        Route("/_unkai/api/keys", h.keys, methods=["GET"]),
        Route("/_unkai/api/keys", h.create_key, methods=["POST"]),
        Route("/_unkai/api/keys/{name}", h.revoke_key, methods=["DELETE"]),
        Route("/_unkai/api/schedules", h.schedules, methods=["GET"]),
        Route("/_unkai/api/schedules/{name}/enable", h.enable_schedule, methods=["POST"]),
        Route("/_unkai/api/schedules/{name}/disable", h.disable_schedule, methods=["POST"]),
        *_queue_routes(h),
        *topic_routes(control),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={UnkaiError: _on_unkai_error, HTTPException: _on_http_error},
    )
