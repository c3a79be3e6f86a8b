"""Run an ASGI app (the control and Lambda APIs, written with Starlette) for one `Request`.

The body is already whole and the response is collected whole, then written with one
`respond`: these APIs answer small JSON documents, and none of them streams (log tailing polls).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from unkai.gateway.http1 import Headers, HttpConnection, Request

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("unkai.gateway")

#: Set by the front door's framing, not by the app.
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"connection"})
_tasks: set[asyncio.Task[None]] = set()


def start_asgi(app: ASGIApp, request: Request, connection: HttpConnection) -> None:
    """Run `app` for `request` in a task; the connection gets exactly one response."""
    task = asyncio.get_running_loop().create_task(run_asgi(app, request, connection))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def scope_of(request: Request, connection: HttpConnection) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": request.http_version,
        "method": request.method,
        "scheme": "http",
        "path": request.path,
        "raw_path": request.raw_path,
        "query_string": request.query_string,
        "root_path": "",
        "headers": request.headers,
        "client": request.client,
        "server": connection.sockname,
    }


async def run_asgi(app: ASGIApp, request: Request, connection: HttpConnection) -> None:
    status = 500
    headers: Headers = []
    chunks: list[bytes] = []
    started = finished = False
    body_sent = False
    disconnected = asyncio.Event()

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        await disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, headers, started, finished
        if message["type"] == "http.response.start":
            started = True
            status = int(message["status"])
            headers = [
                (bytes(name).lower(), bytes(value))
                for name, value in message.get("headers", [])
                if bytes(name).lower() not in _FRAMING
            ]
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                finished = True

    try:
        await app(scope_of(request, connection), receive, send)
    except Exception:  # boundary: an API bug answers 500, the server keeps serving
        log.exception("unhandled error in %s %s", request.method, request.path)
        if not started:
            status, headers, chunks = 500, [(b"content-type", b"application/json")], []
            chunks.append(b'{"error":"InternalError","message":"internal server error"}')
            finished = True
    finally:
        disconnected.set()
    if not finished and not started:
        status, chunks = 500, [b'{"error":"InternalError","message":"no response"}']
    connection.respond(status, headers, b"".join(chunks))
