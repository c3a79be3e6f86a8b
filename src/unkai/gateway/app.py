"""The HTTP front door: one ASGI app for function routes, the Lambda invoke API and control/.

Hot path for a route: match (compiled trie) -> build the 2.0 event -> `Invoker.invoke` -> map
the result. Paths under `/_unkai/` go to the control API, `/2015-03-31/functions/` to the
Lambda invoke API (`aws/lambda_.py`). The default stage is served at `/`; another stage `S` at
`/S/...` (documented in docs/routing.md).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from unkai.deploy.registry import Registry
from unkai.errors import Throttled, UnkaiError
from unkai.gateway import errors as gw_errors
from unkai.gateway.mapping import (
    JSON_HEADERS,
    BadResponse,
    Headers,
    build_event,
    response_from_payload,
)
from unkai.gateway.routes import RouteTable, RouteTarget
from unkai.invoke.invoker import Invoker, Target
from unkai.invoke.request_ids import new_request_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("unkai.gateway")

#: API Gateway's payload limit for HTTP APIs is 10 MB.
MAX_BODY_BYTES = 10 * 1024 * 1024
CONTROL_PREFIX = "/_unkai/"
LAMBDA_PREFIX = "/2015-03-31/functions/"


async def read_body(receive: Receive, limit_bytes: int = MAX_BODY_BYTES) -> bytes | None:
    """The whole request body, or None when it exceeds `limit_bytes`."""
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body if len(body) <= limit_bytes else None
    chunks = [body]
    size = len(body)
    while message.get("more_body"):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def respond(send: Send, status: int, headers: Headers, body: bytes) -> None:
    """Send a whole response; a content-length spares the chunked encoding and a write."""
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GatewayApp:
    def __init__(
        self,
        invoker: Invoker,
        registry: Registry,
        *,
        control: ASGIApp,
        lambda_api: ASGIApp,
        default_stage: str,
        account_id: str,
    ) -> None:
        self._invoker = invoker
        self._registry = registry
        self._control = control
        self._lambda_api = lambda_api
        self._default_stage = default_stage
        self._account_id = account_id
        self._tables: dict[str, RouteTable] = {}
        registry.subscribe(self._on_stage_changed)

    async def load(self) -> None:
        """Compile the route tables of every stage (at start and after each deploy)."""
        for stage in await self._registry.stages():
            await self._compile(stage)

    async def _compile(self, stage: str) -> None:
        routes = await self._registry.routes(stage)
        self._tables[stage] = RouteTable.compile(
            (r.method, r.path, RouteTarget(stage, r.function, f"{r.method} {r.path}"))
            for r in routes
        )

    def _on_stage_changed(self, stage: str) -> None:
        import asyncio

        asyncio.get_running_loop().create_task(self._compile(stage))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._control(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(CONTROL_PREFIX):
            await self._control(scope, receive, send)
        elif path.startswith(LAMBDA_PREFIX):
            await self._lambda_api(scope, receive, send)
        else:
            await self._route(scope, receive, send, path)

    def _stage_of(self, path: str) -> tuple[str, str]:
        """(stage, path within the stage): `/S/...` selects stage S when S is deployed."""
        if path.count("/") > 1:
            first, rest = path[1:].split("/", 1)
            if first in self._tables and first != self._default_stage:
                return first, "/" + rest
        elif path[1:] in self._tables and path[1:] != self._default_stage:
            return path[1:], "/"
        return self._default_stage, path

    async def _route(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        stage, stage_path = self._stage_of(path)
        table = self._tables.get(stage)
        method: str = scope["method"]
        match = table.match(method, stage_path) if table is not None else None
        if match is None:
            allowed = table is not None and table.allows_path(stage_path)
            status, message = (
                (405, gw_errors.METHOD_NOT_ALLOWED_BODY)
                if allowed
                else (404, gw_errors.NOT_FOUND_BODY)
            )
            await respond(send, status, JSON_HEADERS, message)
            return
        body = await read_body(receive)
        if body is None:
            await respond(send, 413, JSON_HEADERS, gw_errors.TOO_LARGE_BODY)
            return
        request_id = new_request_id()
        event = build_event(
            scope,
            body,
            match,
            request_id=request_id,
            stage=stage,
            raw_path=stage_path,
            api_id="unkai",
            account_id=self._account_id,
        )
        status, headers, data = await self._invoke(match.target, event)
        headers.append((b"apigw-requestid", request_id.encode()))
        await respond(send, status, headers, data)

    async def _invoke(self, target: RouteTarget, event: bytes) -> tuple[int, Headers, bytes]:
        try:
            result = await self._invoker.invoke(Target(target.stage, target.function), event)
        except Throttled:
            return 429, list(JSON_HEADERS), gw_errors.THROTTLED_BODY
        except UnkaiError as exc:
            log.warning("route %s -> %s failed: %s", target.route_key, target.function, exc)
            return (
                gw_errors.status_for(exc),
                list(JSON_HEADERS),
                gw_errors.BAD_GATEWAY_BODY,
            )
        if result.error is not None or result.payload is None:
            return 502, list(JSON_HEADERS), gw_errors.BAD_GATEWAY_BODY
        try:
            status, headers, data = response_from_payload(result.payload)
        except BadResponse as exc:
            log.warning("function %s returned a malformed response: %s", target.function, exc)
            return 502, list(JSON_HEADERS), gw_errors.BAD_GATEWAY_BODY
        return status, list(headers), data
