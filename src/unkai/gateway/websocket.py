"""WebSocket APIs, as API Gateway's
(https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api.html).

A stage's WebSocket API is at `ws://host/` (the default stage) or `ws://host/{stage}`. Its
routes come from `- websocket: ROUTE` events:
- `$connect` runs during the handshake: an error or a non-2xx `statusCode` refuses the
  connection with that status (no `$connect` route: every connection is accepted);
- a message is routed by the service's route selection expression (`$request.body.action`:
  the `action` field of a JSON message) to the route of that key, else to `$default`, else
  the client gets API Gateway's `{"message": "Forbidden", ...}` frame;
- `$disconnect` runs, best effort, when either side closes.
A route with `routeResponseSelectionExpression: $default` sends the function's answer back
(its `body` when it returns a response document).

The management API (`@connections`) is served beside the routes: `POST|GET|DELETE
/{stage}/@connections/{id}` (or `/@connections/{id}` for the default stage) posts to, describes
or closes a connection, as `apigatewaymanagementapi` does; an unknown id is 410 GoneException.
Connections live in this node's memory (wsproto does the framing).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import orjson
from wsproto.connection import Connection, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from unkai.config.http_api import IpRules
from unkai.errors import UnkaiError
from unkai.gateway.http1 import Headers, HttpConnection, Request
from unkai.gateway.mapping import BadResponse, checked_header_value, checked_status, request_time
from unkai.invoke.invoker import Invoker
from unkai.invoke.models import InvocationResult, Target
from unkai.invoke.request_ids import new_request_id

log = logging.getLogger("unkai.gateway")

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: API Gateway's limit on a WebSocket frame (and a management API post).
MAX_MESSAGE_BYTES = 128 * 1024
#: Routes API Gateway runs on the connection's own events, never for a message.
LIFECYCLE_ROUTES = frozenset({"$connect", "$disconnect"})
JSON = [(b"content-type", b"application/json")]


@dataclass(frozen=True, slots=True)
class WsRoute:
    function: str
    route_response: bool
    selection_expression: str
    ip_rules: IpRules | None = None


def accept_key(key: bytes) -> bytes:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.strip() + _GUID).digest())


def _iso(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).isoformat(timespec="milliseconds")


def select_route(expression: str, body: str) -> str | None:
    """The route key `$request.body.a.b` picks from a JSON message; None when it picks none."""
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    for part in expression.removeprefix("$request.body.").split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc if isinstance(doc, str) else None


class Session:
    """One accepted WebSocket connection: its frames in and out, and its identity."""

    def __init__(
        self,
        api: WebSocketApi,
        stage: str,
        connection_id: str,
        http: HttpConnection,
        request: Request,
    ) -> None:
        self.api = api
        self.stage = stage
        self.id = connection_id
        self.http = http
        self.request = request
        self.ws = Connection(ConnectionType.SERVER)
        self.connected_at = time.time()
        self.last_active = self.connected_at
        self.closed = False
        self._parts: list[str | bytes] = []
        self._size = 0

    # -- Tunnel ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.last_active = time.time()
        try:
            self.ws.receive_data(data)
            for event in self.ws.events():
                self._on_event(event)
        except (RemoteProtocolError, LocalProtocolError) as exc:
            log.info("websocket %s: protocol error: %s", self.id, exc)
            self.close(1002, "protocol error")

    def connection_lost(self) -> None:
        if not self.closed:
            self.closed = True
            self.api.disconnected(self, 1006, "connection lost")

    # -- frames ---------------------------------------------------------------------------

    def _on_event(self, event: object) -> None:
        if isinstance(event, Ping):
            self.http.write(self.ws.send(event.response()))
        elif isinstance(event, CloseConnection):
            if not self.closed:
                self.closed = True
                self.http.write(self.ws.send(event.response()))
                self.http.close()
                self.api.disconnected(self, event.code, event.reason or "")
        elif isinstance(event, TextMessage | BytesMessage):
            data = event.data
            # The limit is on the message's bytes: UTF-8 for text, before any base64.
            self._size += len(data.encode()) if isinstance(data, str) else len(data)
            if self._size > MAX_MESSAGE_BYTES:
                # Counted as the fragments arrive: a huge or endless message is cut off here,
                # not buffered first.
                self._parts, self._size = [], 0
                self.close(1009, "message too big")
                return
            self._parts.append(
                bytes(event.data) if isinstance(event.data, bytearray) else event.data
            )
            if event.message_finished:
                parts, self._parts, self._size = self._parts, [], 0
                if isinstance(event, TextMessage):
                    self.api.message(self, "".join(p for p in parts if isinstance(p, str)), False)
                else:
                    data = b"".join(p for p in parts if isinstance(p, bytes))
                    self.api.message(self, base64.b64encode(data).decode(), True)

    def send(self, data: str | bytes) -> None:
        if not self.closed:
            message: Message[Any] = (
                TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)
            )
            self.http.write(self.ws.send(message))

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(LocalProtocolError):
            self.http.write(self.ws.send(CloseConnection(code=code, reason=reason)))
        self.http.close()
        self.api.disconnected(self, code, reason)


class WebSocketApi:
    """The WebSocket APIs of every stage, their live connections and the management API."""

    def __init__(self, invoker: Invoker, *, account_id: str) -> None:
        self._invoker = invoker
        self._account_id = account_id
        self._routes: dict[str, dict[str, WsRoute]] = {}
        self.sessions: dict[str, Session] = {}

    def set_routes(self, stage: str, routes: dict[str, WsRoute]) -> None:
        if routes:
            self._routes[stage] = routes
        else:
            self._routes.pop(stage, None)

    def has_stage(self, stage: str) -> bool:
        return stage in self._routes

    def permits(self, stage: str, client: tuple[str, int] | None) -> bool:
        """The owning service's IP lists apply to the handshake, as to its HTTP routes."""
        for route in self._routes.get(stage, {}).values():
            if route.ip_rules is not None:
                return route.ip_rules.permits(client[0] if client else "")
        return True

    # -- handshake ------------------------------------------------------------------------

    def upgrade(self, stage: str, request: Request, http: HttpConnection, rest: bytes) -> None:
        """Answer an upgrade request for `stage`'s API: run `$connect`, then 101 or a refusal."""
        key = request.header(b"sec-websocket-key")
        upgrade = (request.header(b"upgrade") or b"").lower()
        if (
            upgrade != b"websocket"
            or key is None
            or request.header(b"sec-websocket-version") != b"13"
        ):
            http.respond(400, JSON, b'{"message":"Bad Request: not a WebSocket handshake"}')
            http.close()
            return
        connection_id = base64.b64encode(os.urandom(9)).decode().replace("/", "_").replace("+", "-")
        session = Session(self, stage, connection_id, http, request)
        route = self._routes[stage].get("$connect")
        if route is None:
            self._accept(session, key, rest)
            return
        event = self._event(session, "$connect", "CONNECT", extra=self._handshake_parts(request))

        def decided(outcome: InvocationResult | UnkaiError) -> None:
            status, subprotocol = _connect_answer(outcome)
            if 200 <= status < 300:
                self._accept(session, key, rest, subprotocol)
            else:
                http.respond(status, JSON, b'{"message":"Forbidden"}')
                http.close()

        self._invoker.start(Target(stage, route.function), event, decided)

    def _accept(
        self, session: Session, key: bytes, rest: bytes, subprotocol: bytes | None = None
    ) -> None:
        http = session.http
        if http.closed:
            return
        chosen = b"sec-websocket-protocol: " + subprotocol + b"\r\n" if subprotocol else b""
        http.write(
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            b"sec-websocket-accept: " + accept_key(key) + b"\r\n" + chosen + b"\r\n"
        )
        http.switch(session)
        self.sessions[session.id] = session
        if rest:
            session.data_received(rest)

    @staticmethod
    def _handshake_parts(request: Request) -> dict[str, Any]:
        headers: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for name, value in request.headers:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            headers[key] = text
            multi.setdefault(key, []).append(text)
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        if request.query_string:
            from urllib.parse import parse_qsl

            for k, v in parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True):
                query[k] = v
                multi_query.setdefault(k, []).append(v)
        return {
            "headers": headers,
            "multiValueHeaders": multi,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
        }

    # -- messages -------------------------------------------------------------------------

    def message(self, session: Session, body: str, is_base64: bool) -> None:
        """One whole message (its size was checked as it arrived, in `Session`)."""
        routes = self._routes.get(session.stage, {})
        selection = next(iter(routes.values())).selection_expression if routes else ""
        key = None if is_base64 else select_route(selection, body)
        # Route selection never picks $connect or $disconnect: a client cannot run them.
        selectable = key is not None and key in routes and key not in LIFECYCLE_ROUTES
        route_key = key if selectable and key is not None else "$default"
        route = routes.get(route_key)
        request_id = new_request_id()
        if route is None:
            session.send(
                orjson.dumps(
                    {
                        "message": "Forbidden",
                        "connectionId": session.id,
                        "requestId": request_id,
                    }
                ).decode()
            )
            return
        event = self._event(
            session,
            route_key,
            "MESSAGE",
            extra={"body": body, "isBase64Encoded": is_base64},
            request_id=request_id,
        )

        def answered(outcome: InvocationResult | UnkaiError) -> None:
            if not route.route_response or isinstance(outcome, UnkaiError):
                return
            if outcome.error is not None or outcome.payload is None:
                session.send(
                    orjson.dumps(
                        {
                            "message": "Internal server error",
                            "connectionId": session.id,
                            "requestId": request_id,
                        }
                    ).decode()
                )
                return
            session.send(_reply(outcome.payload))

        self._invoker.start(Target(session.stage, route.function), event, answered)

    def disconnected(self, session: Session, code: int, reason: str) -> None:
        self.sessions.pop(session.id, None)
        route = self._routes.get(session.stage, {}).get("$disconnect")
        if route is None:
            return
        event = self._event(
            session,
            "$disconnect",
            "DISCONNECT",
            extra={
                **self._handshake_parts(session.request),
                "requestContext_extra": {
                    "disconnectStatusCode": code,
                    "disconnectReason": reason,
                },
            },
        )
        self._invoker.start(Target(session.stage, route.function), event, lambda _outcome: None)

    def _event(
        self,
        session: Session,
        route_key: str,
        event_type: str,
        *,
        extra: dict[str, Any],
        request_id: str | None = None,
    ) -> bytes:
        now = time.time()
        request = session.request
        context_extra = extra.pop("requestContext_extra", {})
        context: dict[str, Any] = {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id or new_request_id(),
            "requestTime": request_time(int(now)),
            "messageDirection": "IN",
            "stage": session.stage,
            "connectedAt": int(session.connected_at * 1000),
            "requestTimeEpoch": int(now * 1000),
            "identity": {
                "sourceIp": request.client[0] if request.client else "",
                "userAgent": (request.header(b"user-agent") or b"").decode("latin-1"),
            },
            "requestId": request_id or new_request_id(),
            "domainName": (request.header(b"host") or b"").decode("latin-1"),
            "connectionId": session.id,
            "apiId": "unkai",
            **context_extra,
        }
        if event_type == "MESSAGE":
            context["messageId"] = new_request_id()
        return orjson.dumps({"requestContext": context, "isBase64Encoded": False, **extra})

    # -- management API (@connections) ----------------------------------------------------

    def manage(
        self, method: str, stage: str, connection_id: str, body: bytes
    ) -> tuple[int, Headers, bytes]:
        session = self.sessions.get(connection_id)
        if session is None or session.closed or session.stage != stage:
            return (
                410,
                [*JSON, (b"x-amzn-errortype", b"GoneException")],
                (b'{"message":"connection ' + connection_id.encode() + b' is gone"}'),
            )
        if method == "POST":
            if len(body) > MAX_MESSAGE_BYTES:
                return (
                    413,
                    [*JSON, (b"x-amzn-errortype", b"PayloadTooLargeException")],
                    (b'{"message":"a message must be at most 131072 bytes"}'),
                )
            try:
                session.send(body.decode("utf-8"))
            except UnicodeDecodeError:
                session.send(body)
            return 200, [], b""
        if method == "GET":
            # The wire names of botocore's apigatewaymanagementapi model (rest-json).
            info = {
                "connectedAt": _iso(session.connected_at),
                "lastActiveAt": _iso(session.last_active),
                "identity": {
                    "sourceIp": session.request.client[0] if session.request.client else "",
                    "userAgent": (session.request.header(b"user-agent") or b"").decode("latin-1"),
                },
            }
            return 200, JSON, orjson.dumps(info)
        if method == "DELETE":
            session.close(1000, "closed by the @connections API")
            return 204, [], b""
        return 405, JSON, b'{"message":"Method Not Allowed"}'

    def close_all(self) -> None:
        for session in list(self.sessions.values()):
            session.close(1001, "going away")


def _connect_answer(outcome: InvocationResult | UnkaiError) -> tuple[int, bytes | None]:
    """API Gateway accepts the connection on a 2xx answer of `$connect`, and on an answer that
    is not a response document; an error refuses it, and so does a response document whose
    `statusCode` is not a status (500). A `Sec-WebSocket-Protocol` header in the answer is
    the subprotocol the handshake agrees on."""
    if isinstance(outcome, UnkaiError):
        return (500 if not getattr(outcome, "code", "").startswith("TooMany") else 429), None
    if outcome.error is not None or outcome.payload is None:
        return 500, None
    try:
        doc = orjson.loads(outcome.payload)
    except orjson.JSONDecodeError:
        return 200, None
    if not isinstance(doc, dict) or "statusCode" not in doc:
        return 200, None
    try:
        status = checked_status(doc["statusCode"])
    except BadResponse:
        return 500, None
    headers = doc.get("headers")
    if not isinstance(headers, dict):
        return status, None
    for name, value in headers.items():
        if str(name).lower() == "sec-websocket-protocol" and isinstance(value, str):
            try:
                return status, checked_header_value(name, value)
            except BadResponse:
                return 500, None
    return status, None


def _reply(payload: bytes) -> str:
    """What a two-way route sends back: a response document's `body`, else the JSON result."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload.decode("utf-8", "replace")
    if isinstance(doc, dict) and "statusCode" in doc:
        body = doc.get("body")
        return body if isinstance(body, str) else orjson.dumps(body).decode()
    if isinstance(doc, str):
        return doc
    return payload.decode()
