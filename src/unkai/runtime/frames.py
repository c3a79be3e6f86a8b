"""The wire format between the platform, zygotes and function instances.

Stdlib only: `bootstrap.py` imports this in every instance, so it stays small and cheap to
import (bench/bootstrap_import.py measures it).

Every message is one frame: a 5-byte header `!IB` (body length, kind) and the body. One
invocation costs exactly one frame each way: INVOKE carries the event, RESULT carries the
payload or error document plus the log text written while it ran. Long-running handlers also
stream LOG frames so that `unkai logs -t` sees output before the invocation ends.

Bodies:
  INVOKE      `!Q36sHB` budget ms (the timeout, counted from when the instance starts the
              invocation: an INVOKE may wait behind the running one), request id (ASCII), extra
              length, adapter length; extra (JSON object: trace id, client context; may be
              empty), the adapter's module name (ASCII; empty: none), then the event bytes: the
              JSON event, or with an adapter what its `event` makes the event of (see
              `unkai.runtime.adapters`).
  RESULT      `!BddII` status (RESULT_OK / RESULT_ERROR), duration ms, CPU ms (the process's
              CPU time since the previous RESULT), max RSS KiB, log length; the log bytes (the
              output not sent yet), then the payload bytes (with an adapter: what its
              `response` made of them) or the JSON error document.
  LOG         raw log bytes of the running invocation.
  READY       `!d` init duration ms, then JSON: {"modules": [...], "log": "..."} with the
              modules the handler's import pulled in from outside the task root.
  INIT_ERROR  JSON: {"error": {errorMessage, errorType, stackTrace}, "log": "...",
              "duration_ms": float}.
  SPAWN       (platform -> zygote, fd attached) JSON instance or zygote spec.
  SPAWNED     (zygote -> platform) JSON {"id": str, "pid": int}.
  EXITED      (zygote -> platform) JSON {"pid": int, "status": int} where status is the exit code,
              or minus the signal number when a signal ended the process.
  LEARN       (platform -> zygote) JSON {"pid": int}: an instance that served its first result.
  LEARNED     (zygote -> platform) JSON {"pid": int, "pages": int, "lessons": int}: it
              learned from that instance; its spares now copy that many pages ahead; lessons
              counted so far (zygote_main.py, prefault.py).
  SPARE       (zygote -> platform, the spare's socket attached) JSON {"pid": int}: a child
              forked ahead; the platform sends an instance SPAWN frame to it over that socket.
  TAKEN       (platform -> zygote) JSON {"pid": int}: the platform sent a SPAWN to that spare.
"""

from __future__ import annotations

import collections
import json
import select
import socket
import struct
from typing import Any

HEADER = struct.Struct("!IB")
INVOKE_HEAD = struct.Struct("!Q36sHB")
RESULT_HEAD = struct.Struct("!BddII")
READY_HEAD = struct.Struct("!d")

INVOKE = 1
RESULT = 2
LOG = 3
READY = 4
INIT_ERROR = 5
SPAWN = 10
SPAWNED = 11
EXITED = 12
LEARN = 13
LEARNED = 14
SPARE = 15
TAKEN = 16

RESULT_OK = 0
RESULT_ERROR = 1

#: Lambda caps a synchronous payload at 6 MB each way; frames allow some headroom for logs.
MAX_FRAME_BYTES = 64 * 1024 * 1024


class FrameError(Exception):
    """The peer sent bytes that are not a valid frame (a bug or a closed connection)."""


def frame(kind: int, body: bytes) -> bytes:
    return HEADER.pack(len(body), kind) + body


def encode_invoke(
    request_id: str, budget_ms: int, event: bytes, extra: bytes = b"", adapter: str = ""
) -> bytes:
    name = adapter.encode("ascii") if adapter else b""
    head = INVOKE_HEAD.pack(budget_ms, request_id.encode("ascii"), len(extra), len(name))
    body_len = INVOKE_HEAD.size + len(extra) + len(name) + len(event)
    return HEADER.pack(body_len, INVOKE) + head + extra + name + event


def decode_invoke(body: bytes) -> tuple[str, int, bytes, str, bytes]:
    """Return (request id, budget ms, extra JSON bytes, adapter module name or "", event bytes)."""
    budget_ms, rid, extra_len, adapter_len = INVOKE_HEAD.unpack_from(body)
    start = INVOKE_HEAD.size
    middle = start + extra_len
    end = middle + adapter_len
    adapter = body[middle:end].decode("ascii") if adapter_len else ""
    return rid.decode("ascii"), budget_ms, body[start:middle], adapter, body[end:]


def encode_result(
    status: int, duration_ms: float, cpu_ms: float, max_rss_kb: int, log: bytes, data: bytes
) -> bytes:
    head = RESULT_HEAD.pack(status, duration_ms, cpu_ms, max_rss_kb, len(log))
    return HEADER.pack(RESULT_HEAD.size + len(log) + len(data), RESULT) + head + log + data


def decode_result(body: bytes) -> tuple[int, float, float, int, bytes, bytes]:
    """Return (status, duration ms, CPU ms, max RSS KiB, output bytes, payload or error bytes)."""
    status, duration_ms, cpu_ms, max_rss_kb, log_len = RESULT_HEAD.unpack_from(body)
    start = RESULT_HEAD.size
    end = start + log_len
    return status, duration_ms, cpu_ms, max_rss_kb, body[start:end], body[end:]


def encode_json(kind: int, obj: Any) -> bytes:
    return frame(kind, json.dumps(obj, separators=(",", ":")).encode())


class FrameDecoder:
    """Incremental decoder for a byte stream (the platform side, fed by `data_received`)."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        #: Bytes received that do not make a whole frame yet (empty between frames).
        self.pending = bytearray()

    def feed(self, data: bytes | memoryview) -> list[tuple[int, bytes]]:
        buf = self.pending
        buf += data
        frames: list[tuple[int, bytes]] = []
        offset = 0
        size = HEADER.size
        while len(buf) - offset >= size:
            length, kind = HEADER.unpack_from(buf, offset)
            if length > MAX_FRAME_BYTES:
                raise FrameError(f"frame of {length} bytes exceeds {MAX_FRAME_BYTES}")
            end = offset + size + length
            if len(buf) < end:
                break
            frames.append((kind, bytes(buf[offset + size : end])))
            offset = end
        if offset:
            del buf[:offset]
        return frames


class FrameReader:
    """Blocking, buffered reads of frames (the instance side): one recv usually brings a whole
    frame, where reading the header and then the body cost two syscalls per invocation.

    It waits in `poll`, not in a blocking `recv`. Why: when the platform reads this
    process's RESULT, the kernel wakes whoever sleeps on the socket to say there is room to
    write again, and a blocking `recv` is woken by that too, finds nothing and sleeps again:
    a context switch of the instance and a wake-up paid by the platform's event loop, on a
    call of which there is one per invocation. `poll` asks for input only, and the kernel
    skips waking it for room to write. Under load the next INVOKE is usually there already,
    and the first, non-blocking `recv` takes it with no wait at all.
    """

    def __init__(self, sock: socket.socket, recv_bytes: int = 64 * 1024) -> None:
        self._sock = sock
        # One buffer for every recv: `sock.recv(n)` would allocate n bytes each time.
        self._view = memoryview(bytearray(recv_bytes))
        self._decoder = FrameDecoder()
        self._ready: collections.deque[tuple[int, bytes]] = collections.deque()
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)

    def _recv(self) -> int:
        try:
            return self._sock.recv_into(self._view, 0, socket.MSG_DONTWAIT)
        except BlockingIOError:
            self._poll.poll()  # until readable, or closed (POLLHUP): recv then returns 0
            return self._sock.recv_into(self._view)

    def read(self) -> tuple[int, bytes]:
        """The next frame; raises EOFError when the peer closed first."""
        while not self._ready:
            view = self._view
            n = self._recv()
            if not n:
                raise EOFError("connection closed")
            if n >= HEADER.size and not self._decoder.pending:
                # Nearly always one recv brings one whole frame: taken without the decoder.
                length, kind = HEADER.unpack_from(view)
                if n == HEADER.size + length:
                    return kind, bytes(view[HEADER.size : n])
            self._ready.extend(self._decoder.feed(view[:n]))
        return self._ready.popleft()
