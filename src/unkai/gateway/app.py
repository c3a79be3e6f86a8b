"""The HTTP front door: function routes, the Lambda invoke API and control/, on one port.

`GatewayApp.handle` is the `RequestHandler` of the HTTP server (`http1.py`). Hot path for a
route, all plain callbacks: match (compiled trie) -> build the 2.0 event -> `Invoker.start` ->
map the result -> one write. Paths under `/_unkai/` go to the control API (ASGI), and
the Lambda API's paths (`/2015-03-31/functions`, ...) to `aws/lambda_.py`. The default stage is
served at `/`; another stage `S` at `/S/...` (documented in docs/routing.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable
from typing import Any, Protocol

from unkai.access.keys import KeyRecord, KeyService
from unkai.aws.endpoint import AwsEndpoint
from unkai.aws.lambda_ import PREFIXES as LAMBDA_PREFIXES
from unkai.config.http_api import UsagePlanConfig
from unkai.deploy.registry import Registry
from unkai.deploy.versions import EVENT_METHODS, WEBSOCKET_METHOD
from unkai.errors import Throttled, UnkaiError
from unkai.gateway import errors as gw_errors
from unkai.gateway import mapping, payload_v1
from unkai.gateway.access_log import AccessRecorder, access_log_name
from unkai.gateway.asgi_bridge import ASGIApp, start_asgi
from unkai.gateway.authorize import Authorizers
from unkai.gateway.cors import add_cors_headers, is_preflight, preflight_response
from unkai.gateway.http1 import HttpConnection, Request, Responder, split_lines
from unkai.gateway.mapping import JSON_HEADERS, BadResponse, Headers, read_adapted, request_parts
from unkai.gateway.routes import Match, RouteTable, RouteTarget
from unkai.gateway.throttle import Throttles
from unkai.gateway.websocket import WebSocketApi, WsRoute
from unkai.invoke.invoker import Invoker
from unkai.invoke.models import InvocationResult
from unkai.invoke.request_ids import new_gateway_request_id
from unkai.observe.logs import LogService

log = logging.getLogger("unkai.gateway")

CONTROL_PREFIX = "/_unkai/"
#: The adapters of payload format 2.0 and 1.0 routes (unkai.runtime.adapters).
ADAPTER = mapping.__name__
ADAPTER_V1 = payload_v1.__name__


CONNECTIONS_SEGMENT = "/@connections/"


class LambdaHandler(Protocol):
    def handle(self, request: Request, connection: HttpConnection) -> None: ...


def _authorizer_v1(context: dict[str, Any] | None) -> dict[str, Any] | None:
    """Payload 1.0 puts what 2.0 nests under `jwt` or `lambda` directly in
    requestContext.authorizer (`claims` and `scopes`, or the authorizer's context)."""
    if context is None:
        return None
    if "jwt" in context:
        return dict(context["jwt"])
    return dict(context.get("lambda") or {})


def _is_loopback(client: tuple[str, int] | None) -> bool:
    if client is None:
        return True  # a unix socket
    address = client[0]
    return address.startswith(("127.", "::ffff:127.")) or address == "::1"


#: A custom domain's host with a path under none of its base paths.
_UNMAPPED = ("", "")


def _direct(connection: Responder, route: RouteTarget, adapter: str) -> HttpConnection | None:
    """The connection, when an answer its instance rendered can go out as it is."""
    if adapter and route.cors is None and isinstance(connection, HttpConnection):
        return connection
    return None


def _answered_as_rendered(
    connection: HttpConnection, outcome: InvocationResult | UnkaiError, request_id: bytes
) -> bool:
    """Answer a function's result with the header lines its instance rendered; False when it
    is not a result, or not a valid response (`GatewayApp._response` then says why)."""
    if type(outcome) is not InvocationResult or outcome.error is not None or not outcome.payload:
        return False
    try:
        status, lines, data = read_adapted(outcome.payload)
    except BadResponse:
        return False
    connection.respond_rendered(status, lines + b"apigw-requestid: %s\r\n" % request_id, data)
    return True


class GatewayApp:
    def __init__(
        self,
        invoker: Invoker,
        registry: Registry,
        keys: KeyService,
        logs: LogService,
        *,
        control: ASGIApp,
        lambda_api: LambdaHandler,
        aws_api: AwsEndpoint | None = None,
        default_stage: str,
        account_id: str,
        region: str,
        integration_timeout_s: float = 30.0,
        domains: dict[str, list[tuple[str, str]]] | None = None,
        remote_control: bool = False,
    ) -> None:
        self._invoker = invoker
        self._registry = registry
        self._keys = keys
        self._logs = logs
        self._websockets = WebSocketApi(invoker, account_id=account_id)
        self._authorizers = Authorizers(
            invoker, region=region, account_id=account_id, api_id="unkai"
        )
        self._control = control
        self._lambda_api = lambda_api
        self._aws_api = aws_api
        self._default_stage = default_stage
        self._account_id = account_id
        self._tables: dict[str, RouteTable] = {}
        self._throttles = Throttles()
        self._integration_timeout_s = integration_timeout_s
        #: Custom domains: host -> [(base path, stage)], longest base first.
        self._domains = domains or {}
        self._remote_control = remote_control
        self._compiling: set[asyncio.Task[None]] = set()
        self._event_loop: asyncio.AbstractEventLoop | None = None
        registry.subscribe(self._on_stage_changed)

    async def load(self) -> None:
        """Compile the route tables of every stage (at start and after each deploy)."""
        for stage in await self._registry.stages():
            await self._compile(stage)

    async def _compile(self, stage: str) -> None:
        every = await self._registry.routes(stage)
        self._websockets.set_routes(
            stage,
            {
                r.path: WsRoute(
                    r.function, r.route_response, r.selection_expression or "", r.ip_rules
                )
                for r in every
                if r.method == WEBSOCKET_METHOD
            },
        )
        routes = [r for r in every if r.method not in EVENT_METHODS]
        self._tables[stage] = RouteTable.compile(
            (
                r.method,
                r.path,
                RouteTarget(
                    stage,
                    r.function,
                    r.path if r.path == "$default" else f"{r.method} {r.path}",
                    r.payload,
                    r.cors,
                    r.throttle,
                    r.api_key_required,
                    r.usage_plans,
                    dict(r.stage_variables) or None,
                    r.ip_rules,
                    r.authorizer,
                    r.access_log,
                    r.service,
                    r.stage_throttle,
                ),
            )
            for r in routes
        )
        in_use: set[Hashable] = set()
        authorizers: set[tuple[str, str, str]] = set()
        for table in self._tables.values():
            for t in table.targets():
                in_use.add(("route", t.stage, t.route_key))
                in_use.add(("stage", t.stage, t.service))
                if t.authorizer is not None:
                    authorizers.add((t.stage, t.authorizer.name, t.authorizer.settings_json))
        self._throttles.forget(in_use, kinds=("route", "stage"))
        self._authorizers.forget(authorizers)

    def _on_stage_changed(self, stage: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._compile(stage))
        self._compiling.add(task)
        task.add_done_callback(self._compiling.discard)
        return task

    def upgrade(self, request: Request, connection: HttpConnection, rest: bytes) -> bool:
        """WebSocket handshakes for `/` (the default stage) or `/{stage}`."""
        if (request.header(b"upgrade") or b"").lower() != b"websocket":
            return False
        mapped = self._domain_stage(request, request.path) if self._domains else None
        if mapped is not None:
            stage, rest_path = mapped
            if mapped is _UNMAPPED or rest_path.strip("/"):
                stage = "/"  # a path under a custom domain's mapping that is not its root
        else:
            stage = request.path.strip("/") or self._default_stage
        if "/" in stage or not self._websockets.has_stage(stage):
            connection.respond(404, JSON_HEADERS, b'{"message":"no WebSocket API here"}')
            connection.close()
            return True
        if not self._websockets.permits(stage, request.client):
            connection.respond(403, JSON_HEADERS, gw_errors.FORBIDDEN_BODY)
            connection.close()
            return True
        self._websockets.upgrade(stage, request, connection, rest)
        return True

    def handle(self, request: Request, connection: HttpConnection) -> None:
        path = request.path
        if CONNECTIONS_SEGMENT in path:
            target = self._management_target(path)
            if target is not None:
                if self._admin_allowed(request, connection):
                    stage, connection_id = target
                    connection.respond(
                        *self._websockets.manage(request.method, stage, connection_id, request.body)
                    )
                return
        if path.startswith(CONTROL_PREFIX):
            if self._admin_allowed(request, connection):
                start_asgi(self._control, request, connection)
        elif self._aws_api is not None and AwsEndpoint.claims(request):
            # Signed calls (Lambda's paths included) go through the endpoint's verification.
            if self._aws_api.checks_signatures or self._admin_allowed(request, connection):
                self._aws_api.handle(request, connection)
        elif path.startswith(LAMBDA_PREFIXES):
            # Unsigned: the CLI and tools on this machine.
            if self._admin_allowed(request, connection):
                self._lambda_api.handle(request, connection)
        else:
            self._route(request, connection, path)

    def _admin_allowed(self, request: Request, connection: HttpConnection) -> bool:
        """The control, Lambda and @connections APIs have no authentication yet, so only
        loopback clients (the CLI, this node's functions) reach them, unless
        --remote-control says otherwise. Others get 403."""
        if request.header(b"x-amz-sns-message-type") is not None:
            # A topic's HTTP delivery comes from this node, so it is loopback; it must not
            # become a way to reach the admin APIs (an SNS subscription to /_unkai/...).
            connection.respond(403, JSON_HEADERS, gw_errors.FORBIDDEN_BODY)
            return False
        if self._remote_control or _is_loopback(request.client):
            return True
        connection.respond(403, JSON_HEADERS, gw_errors.FORBIDDEN_BODY)
        return False

    def _management_target(self, path: str) -> tuple[str, str] | None:
        """(stage, connection id) of `/{stage}/@connections/{id}`, or of `/@connections/{id}`
        for the default stage; None unless that stage has a WebSocket API."""
        head, _, connection_id = path.partition(CONNECTIONS_SEGMENT)
        if not connection_id or "/" in connection_id or head.count("/") > 1:
            return None
        stage = head.strip("/") or self._default_stage
        return (stage, connection_id) if self._websockets.has_stage(stage) else None

    def _domain_stage(self, request: Request, path: str) -> tuple[str, str] | None:
        """(stage, path within it) by the custom domain the request names; `_UNMAPPED` when
        the host is a custom domain but no base path of it matches; None when it is not one."""
        host = (request.header(b"host") or b"").partition(b":")[0].decode("latin-1").lower()
        mappings = self._domains.get(host)
        if mappings is None:
            return None
        for base, stage in mappings:
            if not base:
                return stage, path
            if path == base or path.startswith(base + "/"):
                return stage, path[len(base) :] or "/"
        return _UNMAPPED

    def _stage_of(self, path: str) -> tuple[str, str]:
        """(stage, path within the stage): `/S/...` selects stage S when S is deployed."""
        if path.count("/") > 1:
            first, rest = path[1:].split("/", 1)
            if first in self._tables and first != self._default_stage:
                return first, "/" + rest
        elif path[1:] in self._tables and path[1:] != self._default_stage:
            return path[1:], "/"
        return self._default_stage, path

    def _route(self, request: Request, connection: Responder, path: str) -> None:
        mapped = self._domain_stage(request, path) if self._domains else None
        if mapped is _UNMAPPED:
            connection.respond(404, JSON_HEADERS, gw_errors.NOT_FOUND_BODY)
            return
        stage, stage_path = mapped or self._stage_of(path)
        table = self._tables.get(stage)
        if (
            request.method == "OPTIONS"
            and table is not None
            and is_preflight(request)
            and self._preflight(table, request, stage_path, connection)
        ):
            return
        match = table.match(request.method, stage_path) if table is not None else None
        if match is None:
            allowed = table is not None and table.allows_path(stage_path)
            if allowed:
                connection.respond(405, JSON_HEADERS, gw_errors.METHOD_NOT_ALLOWED_BODY)
            else:
                connection.respond(404, JSON_HEADERS, gw_errors.NOT_FOUND_BODY)
            return
        route = match.target
        if route.access_log is not None:
            connection = self._access_recorder(connection, route, request, stage)
        if route.ip_rules is not None and not route.ip_rules.permits(
            request.client[0] if request.client else ""
        ):
            connection.respond(*self._forbidden(route, request))
            return
        if route.authorizer is None:
            self._proceed(stage, stage_path, request, connection, match, None)
            return

        def allow(context: dict[str, Any] | None) -> None:
            self._proceed(stage, stage_path, request, connection, match, context)

        def refuse(status: int, body: bytes, headers: Headers) -> None:
            answer = (status, [*JSON_HEADERS, *headers], body)
            connection.respond(*self._with_cors(route, request, answer))

        self._authorizers.authorize(stage, stage_path, request, match, allow, refuse)

    @staticmethod
    def _preflight(
        table: RouteTable, request: Request, stage_path: str, connection: Responder
    ) -> bool:
        """API Gateway answers CORS preflights itself, for the method asked about; True when
        this one was answered."""
        asked = (request.header(b"access-control-request-method") or b"").decode("latin-1")
        wanted = table.match(asked.upper(), stage_path)
        if wanted is None or wanted.target.cors is None:
            return False
        connection.respond(*preflight_response(wanted.target.cors, request))
        return True

    def _proceed(
        self,
        stage: str,
        stage_path: str,
        request: Request,
        connection: Responder,
        match: Match,
        authorizer: dict[str, Any] | None,
    ) -> None:
        """After the authorizer: keys, plans and throttles, then the invocation."""
        route = match.target
        if route.needs_admission and self._refused(stage, route, request, connection):
            return
        request_id = new_gateway_request_id()
        event, adapter = self._event(stage, request, match, request_id, authorizer)
        header = (b"apigw-requestid", request_id.encode())
        target = route.invoke_target
        timer: asyncio.TimerHandle | None = None
        # An answer the instance rendered goes out as its lines when nothing here adds to
        # them but the request id (no CORS, no access log wrapping the connection).
        direct = _direct(connection, route, adapter)

        def answer(outcome: InvocationResult | UnkaiError) -> None:
            nonlocal timer
            if timer is not None:
                if timer.cancelled():
                    return  # the gateway already answered 504
                timer.cancel()
            if direct is None or not _answered_as_rendered(direct, outcome, header[1]):
                self._answer(route, request, connection, header, outcome)

        def give_up() -> None:
            nonlocal timer
            assert timer is not None
            timer.cancel()  # marks the request answered for `answer`
            log.warning(
                "route %s: no answer from %s in %.0f s: 504",
                route.route_key,
                route.function,
                self._integration_timeout_s,
            )
            body = (504, list(JSON_HEADERS), gw_errors.GATEWAY_TIMEOUT_BODY)
            connection.respond(*self._with_cors(route, request, body))

        if isinstance(connection, AccessRecorder):
            connection.integration_started = time.monotonic()
        timeout_s = self._invoker.known_timeout_s(target)
        if timeout_s is None or timeout_s >= self._integration_timeout_s:
            # Only a function that may run longer than the integration timeout needs a timer.
            timer = self._loop().call_later(self._integration_timeout_s, give_up)
        self._invoker.start(target, event, answer, adapter=adapter)

    def _answer(
        self,
        route: RouteTarget,
        request: Request,
        connection: Responder,
        header: tuple[bytes, bytes],
        outcome: InvocationResult | UnkaiError,
    ) -> None:
        try:
            status, headers, data = self._response(route, outcome)
        except Exception:  # boundary: a mapping bug is a 502, never a request left hanging
            log.exception("route %s: mapping the result failed", route.route_key)
            status, headers, data = 502, list(JSON_HEADERS), gw_errors.BAD_GATEWAY_BODY
        headers.append(header)
        if route.cors is not None:
            headers = add_cors_headers(route.cors, request, headers)
        connection.respond(status, headers, data)

    def _event(
        self,
        stage: str,
        request: Request,
        match: Match,
        request_id: str,
        authorizer: dict[str, Any] | None,
    ) -> tuple[bytes, str]:
        """The invocation's payload and adapter: the request's parts, from which the route's
        payload format adapter (`mapping` for 2.0, `payload_v1` for 1.0) builds the event in
        the instance."""
        route = match.target
        v2 = route.payload == "2.0"
        parts = request_parts(  # positional: keyword arguments cost ~50 ns each
            request,
            match,
            request_id,
            stage,
            request.path,
            "unkai",
            self._account_id,
            route.stage_variables,
            authorizer if v2 else _authorizer_v1(authorizer),
        )
        return mapping.wire(parts), ADAPTER if v2 else ADAPTER_V1

    def _access_recorder(
        self, connection: Responder, route: RouteTarget, request: Request, stage: str
    ) -> AccessRecorder:
        assert route.access_log is not None
        function = access_log_name(route.service)

        def record(line: str, request_id: str | None) -> None:
            self._logs.record_text(
                stage=stage, function=function, stream=stage, message=line, request_id=request_id
            )

        return AccessRecorder(
            connection,
            record,
            format=route.access_log,
            request=request,
            route_key=route.route_key,
            stage=stage,
        )

    def _loop(self) -> asyncio.AbstractEventLoop:
        """Kept: asyncio.get_running_loop() costs a getpid() syscall on every call."""
        if self._event_loop is None:
            self._event_loop = asyncio.get_running_loop()
        return self._event_loop

    def _forbidden(self, route: RouteTarget, request: Request) -> tuple[int, Headers, bytes]:
        return self._with_cors(route, request, (403, list(JSON_HEADERS), gw_errors.FORBIDDEN_BODY))

    def _refused(
        self, stage: str, route: RouteTarget, request: Request, connection: Responder
    ) -> bool:
        """Answer a request `_admit` refuses; True when it did."""
        refusal = self._admit(stage, route, request)
        if refusal is None:
            return False
        connection.respond(*self._with_cors(route, request, refusal))
        return True

    def _admit(
        self, stage: str, route: RouteTarget, request: Request
    ) -> tuple[int, Headers, bytes] | None:
        """API key, usage plan and throttles, in API Gateway's order; None lets the request
        through. The quota is charged last, so a request refused by a throttle costs none."""
        record: KeyRecord | None = None
        plan: UsagePlanConfig | None = None
        if route.api_key_required:
            value = request.header(b"x-api-key")
            record = self._keys.lookup(stage, value) if value else None
            plan = route.usage_plan(record.plan) if record is not None else None
            if record is None or plan is None:
                return 403, list(JSON_HEADERS), gw_errors.FORBIDDEN_BODY
            if plan.throttle is not None and not self._throttles.allow(
                ("key", stage, route.service, record.id), plan.throttle
            ):
                return self._throttled()
        if route.throttle is not None and not self._throttles.allow(
            ("route", stage, route.route_key), route.throttle
        ):
            return self._throttled()
        if route.stage_throttle is not None and not self._throttles.allow(
            ("stage", stage, route.service), route.stage_throttle
        ):
            return self._throttled()
        if (
            record is not None
            and plan is not None
            and plan.quota_limit is not None
            and not self._keys.consume(record, record.plan, plan.quota_limit, plan.quota_period)
        ):
            return 429, list(JSON_HEADERS), gw_errors.QUOTA_BODY
        return None

    @staticmethod
    def _throttled() -> tuple[int, Headers, bytes]:
        return 429, list(JSON_HEADERS), gw_errors.THROTTLED_BODY

    @staticmethod
    def _with_cors(
        route: RouteTarget, request: Request, answer: tuple[int, Headers, bytes]
    ) -> tuple[int, Headers, bytes]:
        if route.cors is None:
            return answer
        status, headers, data = answer
        return status, add_cors_headers(route.cors, request, headers), data

    def _response(
        self, route: RouteTarget, outcome: InvocationResult | UnkaiError
    ) -> tuple[int, Headers, bytes]:
        """API Gateway's answer for one invocation outcome (502 for any function error)."""
        if isinstance(outcome, Throttled):
            return self._throttled()
        if isinstance(outcome, UnkaiError):
            log.warning("route %s -> %s failed: %s", route.route_key, route.function, outcome)
            return gw_errors.status_for(outcome), list(JSON_HEADERS), gw_errors.BAD_GATEWAY_BODY
        if outcome.error is not None or outcome.payload is None:
            return 502, list(JSON_HEADERS), gw_errors.BAD_GATEWAY_BODY
        try:
            status, lines, data = read_adapted(outcome.payload)  # mapped in the instance
        except BadResponse as exc:
            log.warning("function %s returned a malformed response: %s", route.function, exc)
            return 502, list(JSON_HEADERS), gw_errors.BAD_GATEWAY_BODY
        return status, split_lines(lines), data
