"""HttpConnection.respond: the response head it writes, byte for byte (a transport stand-in
records the writes; the parsing and answering are the real connection's)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from unkai.gateway.http1 import Headers, HttpConnection, HttpServer, Request


class Transport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 5000)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Answer:
    """Answers every request with the same status, headers and body."""

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.answer = (status, headers, body)

    def handle(self, request: Request, connection: HttpConnection) -> None:
        connection.respond(*self.answer)

    def upgrade(self, request: Request, connection: HttpConnection, rest: bytes) -> bool:
        return False


class Rendered:
    """Answers with header lines, as an instance renders them (`respond_rendered`)."""

    def __init__(self, status: int, lines: bytes, body: bytes) -> None:
        self.answer = (status, lines, body)

    def handle(self, request: Request, connection: HttpConnection) -> None:
        connection.respond_rendered(*self.answer)

    def upgrade(self, request: Request, connection: HttpConnection, rest: bytes) -> bool:
        return False


def exchange(raw: bytes, status: int, headers: Headers | bytes, body: bytes) -> tuple[bytes, bool]:
    handler: Answer | Rendered = (
        Rendered(status, headers, body)
        if isinstance(headers, bytes)
        else Answer(status, headers, body)
    )
    transport = Transport()

    async def feed() -> None:
        server = HttpServer(handler)
        connection = HttpConnection(handler, server.limits, server)
        connection.connection_made(transport)  # type: ignore[arg-type]
        connection.data_received(raw)
        await asyncio.sleep(0)  # keep-alive responses are written after the loop's turn

    asyncio.run(feed())
    head, _, rest = transport.written.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[1].startswith(b"date: ")
    return b"\r\n".join([lines[0], *lines[2:]]) + b"\r\n\r\n" + rest, transport.closed


GET = b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n"


def test_headers_content_length_and_body() -> None:
    written, closed = exchange(GET, 200, [(b"content-type", b"text/plain")], b"hello")
    assert written == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello"
    )
    assert not closed


@pytest.mark.parametrize(
    "bad",
    [
        (b"x-evil", b"1\r\nset-cookie: a=b"),
        (b"x-evil", b"only\nlf"),
        (b"x-evil", b"only\rcr"),
        (b"x-evil\r\nset-cookie", b"a=b"),
    ],
)
def test_a_header_that_would_split_the_response_is_left_out(bad: tuple[bytes, bytes]) -> None:
    written, _ = exchange(GET, 200, [(b"x-a", b"1"), bad, (b"x-b", b"2")], b"ok")
    assert written == b"HTTP/1.1 200 OK\r\nx-a: 1\r\nx-b: 2\r\ncontent-length: 2\r\n\r\nok"


def test_no_body_and_no_length_for_204_and_close_when_asked() -> None:
    raw = b"GET /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
    written, closed = exchange(raw, 204, [], b"ignored")
    assert written == b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"
    assert closed


def test_head_gets_the_length_of_the_body_it_does_not_get() -> None:
    written, _ = exchange(b"HEAD /x HTTP/1.1\r\nhost: a\r\n\r\n", 200, [], b"12345")
    assert written == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"


def test_keep_alive_answers_are_written_after_the_turn_and_a_direct_write_sends_them_first() -> (
    None
):
    writes: list[tuple[str, bytes]] = []

    class Logged(Transport):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def write(self, data: bytes) -> None:
            writes.append((self.name, data[:15]))

    handler = Answer(200, [], b"ok")

    async def main() -> None:
        server = HttpServer(handler)
        first = HttpConnection(handler, server.limits, server)
        second = HttpConnection(handler, server.limits, server)
        first.connection_made(Logged("first"))  # type: ignore[arg-type]
        second.connection_made(Logged("second"))  # type: ignore[arg-type]
        # Given two requests answered in one turn of the loop
        first.data_received(GET)
        second.data_received(GET)
        # Then nothing is written during the turn
        assert writes == []
        # And a direct write on a connection (a tunnel's) goes after the answers queued
        first.write(b"tunnel bytes")
        assert writes == [
            ("first", b"HTTP/1.1 200 OK"),
            ("second", b"HTTP/1.1 200 OK"),
            ("first", b"tunnel bytes"),
        ]
        # And nothing is written twice once the turn ends
        await asyncio.sleep(0)
        assert len(writes) == 3

    asyncio.run(main())


def test_rendered_lines_are_written_as_they_are() -> None:
    lines = b"content-type: text/plain\r\nx-a: 1\r\n"
    written, _ = exchange(GET, 201, lines, b"hello")
    listed, _ = exchange(GET, 201, [(b"content-type", b"text/plain"), (b"x-a", b"1")], b"hello")
    assert (
        written
        == listed
        == (
            b"HTTP/1.1 201 Created\r\ncontent-type: text/plain\r\nx-a: 1\r\n"
            b"content-length: 5\r\n\r\nhello"
        )
    )
    assert exchange(GET, 204, b"", b"x")[0] == b"HTTP/1.1 204 No Content\r\n\r\n"
