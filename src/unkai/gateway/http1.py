"""`HttpConnection`: unkai's HTTP/1.1 server protocol, on httptools, with no ASGI on the hot path.

Why not uvicorn: per request it starts a task, runs the ASGI message dance and makes two
`send` syscalls (head, then body). The platform process is the bottleneck of a warm invoke
(docs/benchmarks.md), and a route hit here is one parse, one callback chain and one write.
The control and Lambda APIs are ASGI apps; they run through `asgi_bridge.run_asgi`.

Per connection, requests are answered in order: a pipelined request waits until the one
before it got its response. A request is read whole (API Gateway buffers bodies too) and given
to `RequestHandler.handle(request, connection)`, which calls `connection.respond(...)` exactly
once, at once or later.

Limits (API Gateway's where it has them; each answered with a JSON error and the connection
closed, since the rest of the stream cannot be trusted):
  body over `max_body_bytes` (10 MB)          413
  request line / URL over `max_url_bytes`      414
  headers over `max_header_bytes` in total     431
  anything httptools cannot parse              400
  an Upgrade the handler does not take (not WebSocket)  501
Idle keep-alive connections close after `keep_alive_timeout_s`.
"""

from __future__ import annotations

import asyncio
import email.utils
import http
import logging
import ssl
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol, cast
from urllib.parse import unquote

import httptools

log = logging.getLogger("unkai.gateway")

Headers = list[tuple[bytes, bytes]]

#: Pipelined requests queued on one connection before it stops reading.
MAX_QUEUED = 16

_STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()
    for status in http.HTTPStatus
}
_NO_BODY_STATUSES = frozenset({204, 304})
#: Single bytes as ints, for `in` on the hot path: `b"%" in data` costs about 0.4 µs, as
#: bytes.__contains__ tries its argument as an int first and makes a TypeError when it is
#: not one; `37 in data` takes a tenth of that.
_PERCENT, _HASH = ord("%"), ord("#")
#: Request headers looked at once all headers are in (the body's size, `Expect`).
_CHECKED_HEADERS = frozenset({b"content-length", b"expect"})


def _status_line(status: int) -> bytes:
    return _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Status\r\n".encode()


def _split_free_head(status_line: bytes, date: bytes, headers: Headers) -> bytes:
    """The status line, date and the headers without a CR or LF in their name or value."""
    parts = [status_line, date]
    for name, value in headers:
        if b"\r" in value or b"\n" in value or b"\n" in name or b"\r" in name:
            continue
        parts += (name, b": ", value, b"\r\n")
    return b"".join(parts)


def split_lines(lines: bytes) -> Headers:
    """Header lines ("name: value\\r\\n" each) as (name, value) pairs; a line without ": "
    is no header, and a bare CR or LF stays in its pair (`respond` leaves that one out)."""
    pairs: Headers = []
    for line in lines.split(b"\r\n"):
        name, sep, value = line.partition(b": ")
        if sep:
            pairs.append((name, value))
    return pairs


def _error_body(error: str, message: str) -> bytes:
    return b'{"error":"%s","message":"%s"}' % (error.encode(), message.encode())


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int = 10 * 1024 * 1024
    max_url_bytes: int = 8 * 1024
    max_header_bytes: int = 16 * 1024
    keep_alive_timeout_s: float = 5.0


class _Refusal(Exception):
    """A request the server answers itself, then closes the connection."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = _error_body(error, message)


class Request:
    """One whole HTTP request. `path` is percent-decoded (as ASGI's), `raw_path` is not."""

    __slots__ = (
        "body",
        "client",
        "headers",
        "http_version",
        "keep_alive",
        "method",
        "path",
        "query_string",
        "raw_path",
    )

    def __init__(
        self,
        method: str,
        raw_path: bytes,
        query_string: bytes,
        headers: Headers,
        body: bytes,
        http_version: str,
        keep_alive: bool,
        client: tuple[str, int] | None,
    ) -> None:
        self.method = method
        self.raw_path = raw_path
        if _PERCENT in raw_path:
            self.path = unquote(raw_path.decode("latin-1"))
        else:
            try:
                self.path = raw_path.decode()
            except UnicodeDecodeError:  # not UTF-8: still a path, not a server error
                self.path = raw_path.decode("latin-1")
        self.query_string = query_string
        self.headers = headers
        self.body = body
        self.http_version = http_version
        self.keep_alive = keep_alive
        self.client = client

    def header(self, name: bytes) -> bytes | None:
        """The first value of header `name` (lower case)."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Responder(Protocol):
    """What answers a request: the connection, or something standing in for it."""

    def respond(self, status: int, headers: Headers, body: bytes) -> None: ...


class Tunnel(Protocol):
    """What a connection becomes after an upgrade (a WebSocket session)."""

    def data_received(self, data: bytes) -> None: ...

    def connection_lost(self) -> None: ...


class RequestHandler(Protocol):
    def handle(self, request: Request, connection: HttpConnection) -> None: ...

    def upgrade(self, request: Request, connection: HttpConnection, rest: bytes) -> bool:
        """Take over an `Upgrade` request (answering it, and `switch`ing the connection when
        accepted); False when nothing here speaks that protocol."""
        ...


class _Date:
    """The `date` header, formatted once per second."""

    second = 0
    header = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.second = second
            cls.header = b"date: " + email.utils.formatdate(second, usegmt=True).encode() + b"\r\n"
        return cls.header


class HttpConnection(asyncio.Protocol):
    def __init__(self, handler: RequestHandler, limits: Limits, server: HttpServer) -> None:
        self._handler = handler
        self._limits = limits
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self.client: tuple[str, int] | None = None
        self.sockname: tuple[str, int] | None = None
        self._queue: deque[Request] = deque()
        self._active: Request | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._upgrade: Request | None = None
        #: A parser refusal waiting for the answers of the requests before it.
        self._refusal: tuple[int, bytes] | None = None
        self._tunnel: Tunnel | None = None
        self.closed = False
        self.last_active = time.monotonic()
        self._begin()

    def _begin(self) -> None:
        """The state of one message; reset again as each message completes."""
        self._url = b""
        self._headers: Headers = []
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._announces = False

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport = cast(asyncio.Transport, transport)  # uvloop's is not one
        peer = transport.get_extra_info("peername")
        self.client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
        local = transport.get_extra_info("sockname")
        self.sockname = (str(local[0]), int(local[1])) if isinstance(local, tuple) else None
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._queue.clear()
        self._server.connections.discard(self)
        if self._tunnel is not None:
            self._tunnel.connection_lost()

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        if self._tunnel is not None:
            self._tunnel.data_received(data)
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade_to(data[upgrade.args[0] :] if upgrade.args else b"")
        except httptools.HttpParserError as exc:
            cause = exc.__context__  # what a callback raised, when one did
            if isinstance(cause, _Refusal):
                self._refuse(cause.status, cause.body)
            elif isinstance(exc, httptools.HttpParserCallbackError):
                log.error("HTTP parser callback failed", exc_info=cause)
                self._refuse(500, _error_body("InternalError", "internal server error"))
            else:
                self._refuse(400, _error_body("BadRequest", "malformed HTTP request"))

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._active is None and self._queue:
            self._dispatch(self._queue.popleft())
        if len(self._queue) < MAX_QUEUED and self._refusal is None:
            self._resume_reading()

    # -- httptools callbacks ------------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._limits.max_url_bytes:
            raise _Refusal(414, "UriTooLong", f"the URL is over {self._limits.max_url_bytes} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > self._limits.max_header_bytes:
            raise _Refusal(
                431,
                "RequestHeaderFieldsTooLarge",
                f"the headers are over {self._limits.max_header_bytes} bytes",
            )
        name = name.lower()
        if name in _CHECKED_HEADERS:
            self._announces = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if not self._announces:
            return  # no body size or Expect to look at: most requests
        length = self._header_value(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._limits.max_body_bytes:
            raise self._too_large()
        expect = self._header_value(b"expect")
        if (
            expect is not None
            and expect.lower() == b"100-continue"
            and self._transport is not None
            and self._active is None
            and not self._queue
        ):
            # Only when this request is next: an interim answer written while an earlier
            # response is pending would be read as part of that response.
            self._write_now(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, chunk: bytes) -> None:
        self._body_bytes += len(chunk)
        if self._body_bytes > self._limits.max_body_bytes:
            raise self._too_large()
        self._body.append(chunk)

    def on_message_complete(self) -> None:
        parser = self._parser
        path, _, query = self._url.partition(b"?")
        if _HASH in query:
            query = query.partition(b"#")[0]
        parts = self._body
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        request = Request(
            parser.get_method().decode("ascii"),
            path,
            query,
            self._headers,
            body,
            parser.get_http_version(),
            parser.should_keep_alive(),
            self.client,
        )
        # The next message starts afresh (`_begin`, inlined: no on_message_begin callback).
        self._url = b""
        self._headers = []
        self._header_bytes = 0
        self._body = []
        self._body_bytes = 0
        self._announces = False
        if parser.should_upgrade():
            self._upgrade = request  # handled when httptools raises HttpParserUpgrade
            return
        if self._active is None and not self._queue and not self._writing_paused:
            self._dispatch(request)
        else:
            self._queue.append(request)
            if len(self._queue) >= MAX_QUEUED:
                self._pause_reading()

    def _upgrade_to(self, rest: bytes) -> None:
        request = self._upgrade
        self._upgrade = None
        if request is None or self._active is not None or self._queue:
            self._refuse(400, _error_body("BadRequest", "an upgrade must come alone"))
            return
        self._active = request
        if not self._handler.upgrade(request, self, rest):
            self._active = None
            self._refuse(
                501, _error_body("NotImplemented", "connection upgrades are not supported here")
            )

    def switch(self, tunnel: Tunnel) -> None:
        """From now on the connection's bytes go to `tunnel` (after a 101 was written)."""
        self._active = None
        self._tunnel = tunnel

    def write(self, data: bytes) -> None:
        """Raw bytes, for a tunnel."""
        if self._transport is not None and not self.closed:
            self._write_now(data)

    def _write_now(self, data: bytes) -> None:
        """Write at once, after the responses still in the server's outbox (one may be this
        connection's, and must go first)."""
        assert self._transport is not None
        self._server.send_queued()
        self._transport.write(data)

    @property
    def in_tunnel(self) -> bool:
        return self._tunnel is not None

    def _header_value(self, name: bytes) -> bytes | None:
        for key, value in self._headers:
            if key == name:
                return value
        return None

    def _too_large(self) -> _Refusal:
        return _Refusal(
            413, "PayloadTooLarge", f"the body is over {self._limits.max_body_bytes} bytes"
        )

    # -- requests and responses ---------------------------------------------------------------

    def _dispatch(self, request: Request) -> None:
        self._active = request
        try:
            self._handler.handle(request, self)
        except Exception:  # boundary: a handler bug answers 500, the server keeps serving
            log.exception("unhandled error for %s %s", request.method, request.path)
            if self._active is request:
                self.respond(500, [], _error_body("InternalError", "internal server error"))

    def respond(self, status: int, headers: Headers, body: bytes) -> None:
        """Answer the request being handled (once); then the next queued one is dispatched."""
        request = self._active
        if request is None or self.closed or self._transport is None:
            return
        parts = [_status_line(status), _Date.now()]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        # Every line so far ends with its CRLF, and there is no other CR or LF: else a header
        # would split the response, and those are left out (the mappers refuse them already).
        lines = len(headers) + 2
        head = b"".join(parts)
        if head.count(b"\n") != lines or head.count(b"\r") != lines:
            head = _split_free_head(parts[0], parts[1], headers)
        self._send(request, status, head, body)

    def respond_rendered(self, status: int, lines: bytes, body: bytes) -> None:
        """`respond` with the headers as lines ("name: value\\r\\n" each) that are known to
        be whole lines with no CR or LF inside: as `mapping.read_adapted` checked an
        instance's. No list is made and joined again."""
        request = self._active
        if request is None or self.closed or self._transport is None:
            return
        self._send(request, status, _status_line(status) + _Date.now() + lines, body)

    def _send(self, request: Request, status: int, head: bytes, body: bytes) -> None:
        """Write the response whose status line and headers are `head`, and go on."""
        assert self._transport is not None
        close = b"" if request.keep_alive else b"connection: close\r\n"
        if status in _NO_BODY_STATUSES:
            tail = close + b"\r\n"
            body = b""
        else:
            tail = b"content-length: %d\r\n%s\r\n" % (len(body), close)
            if request.method == "HEAD":
                body = b""
        self._active = None
        self.last_active = time.monotonic()
        if not request.keep_alive:
            self._write_now(head + tail + body)
            self._transport.close()
            return
        self._server.send_soon(self._transport, head + tail + body)
        self._next()

    def _next(self) -> None:
        """After a response: the next pipelined request, or a refusal held back for it."""
        if self._queue and not self._writing_paused:
            self._dispatch(self._queue.popleft())
        elif self._refusal is not None and self._active is None and not self._queue:
            self._write_refusal(*self._refusal)
            return
        if len(self._queue) < MAX_QUEUED and not self._writing_paused and self._refusal is None:
            self._resume_reading()

    def _refuse(self, status: int, body: bytes) -> None:
        """Answer a request the parser rejected and close: the stream is out of step. Requests
        before it are answered first, so that the refusal is not read as their answer."""
        if self._transport is None or self.closed:
            return
        if self._active is not None or self._queue:
            self._refusal = (status, body)
            self._pause_reading()
            return
        self._write_refusal(status, body)

    def _write_refusal(self, status: int, body: bytes) -> None:
        if self._transport is None or self.closed:
            return
        self._queue.clear()
        head = b"%scontent-type: application/json\r\ncontent-length: %d\r\n" % (
            _status_line(status),
            len(body),
        )
        self._write_now(head + b"connection: close\r\n\r\n" + body)
        self._transport.close()

    def _pause_reading(self) -> None:
        if not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and self._transport is not None and not self.closed:
            self._reading_paused = False
            self._transport.resume_reading()

    @property
    def idle(self) -> bool:
        """No request in flight (tunnels are never idle: their own protocol keeps them)."""
        return self._active is None and not self._queue and self._tunnel is None

    @property
    def busy(self) -> bool:
        """A request is being answered (shutdown waits for these, not for tunnels)."""
        return self._active is not None or bool(self._queue)

    def close(self) -> None:
        if self._transport is not None:
            self._server.send_queued()
            self._transport.close()


class HttpServer:
    """Listens, owns the connections, closes idle keep-alive ones, shuts down cleanly."""

    def __init__(self, handler: RequestHandler, limits: Limits | None = None) -> None:
        self.handler = handler
        self.limits = limits or Limits()
        self.connections: set[HttpConnection] = set()
        #: Keep-alive responses waiting for `send_queued` (see `send_soon`).
        self._outbox: list[tuple[asyncio.Transport, bytes]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    def send_soon(self, transport: asyncio.Transport, data: bytes) -> None:
        """Write `data` once this turn of the event loop has run its I/O callbacks.

        Responses that become ready in one turn (instances' results read together) are
        written together, after them. Why: a write to a client on this machine wakes the
        client's thread, and Linux runs it on this CPU, where it preempts the event loop; a
        client thread woken by the first of several writes is still awake for the others.
        With a load generator on the same two cores this took `GET /hello` from 0.486 to
        0.506 of uvicorn and the loop's preemptions down by a fifth (docs/benchmarks.md,
        session 9). Every other write on a connection sends the outbox first, so that a
        connection's bytes keep their order.
        """
        outbox = self._outbox
        outbox.append((transport, data))
        if len(outbox) == 1:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(self.send_queued)

    def send_queued(self) -> None:
        """Write the outbox now (a transport closed meanwhile drops its share)."""
        outbox = self._outbox
        if outbox:
            self._outbox = []
            for transport, data in outbox:
                if not transport.is_closing():
                    transport.write(data)

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> int:
        """Bind and serve (HTTPS with `tls`); returns the bound port (useful when `port` is 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpConnection(self.handler, self.limits, self),
            host,
            port,
            backlog=2048,
            ssl=tls,
        )
        self._sweep()
        return int(self._server.sockets[0].getsockname()[1])

    def _sweep(self) -> None:
        now = time.monotonic()
        timeout = self.limits.keep_alive_timeout_s
        for connection in [c for c in self.connections if c.idle]:
            if now - connection.last_active > timeout:
                connection.close()
        self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep)

    async def close(self, grace_s: float = 5.0) -> None:
        """Stop accepting, let requests in flight finish (up to `grace_s`), close the rest."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + grace_s
        while any(c.busy for c in self.connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for connection in list(self.connections):
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()
