"""`Instance`: the platform's side of one function process (its states: instance_state.py).

STARTING -> BUSY -> READY -> BUSY -> ... -> STOPPED, or FAILED after a timeout, crash, memory
kill or init error (a FAILED instance is never reused; the pool starts another). The first
invocation is written right after the fork, before READY arrives, so a cold start costs no
extra round trip; its result carries the Init Duration.

A busy instance may be given more invocations (the pool queues short functions' calls, see
`Pool.lend`): their INVOKEs are written at once and the runtime runs them one after another,
each starting when the previous RESULT is sent, so its timeout counts from then. If the
instance fails, the invocations that never started go back to their callers marked
`started=False`, and the invoker runs them elsewhere.

Failures come back as an InvocationResult with Lambda's error document, never as exceptions:
  timeout   SIGKILL at the deadline; `Sandbox.Timedout`, "Task timed out after 3.00 seconds"
  crash     EOF on the socket; `Runtime.ExitError`, "exit status 3" / "signal: segmentation
            fault", the status coming from the zygote's EXITED report
  memory    the supervisor's watchdog SIGKILLs an instance over its memory size;
            `Runtime.OutOfMemory`, naming the limit
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import contextlib
import json
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable

from unkai.invoke.models import FunctionError, Invocation, InvocationResult
from unkai.runtime import frames
from unkai.runtime.bootstrap import LOG_CAP_CHARS, TRUNCATED_MARKER
from unkai.runtime.instance_state import (
    ALLOWED,
    InstanceState,
    InvalidTransition,
    exited_message,
    out_of_memory_message,
    timed_out_message,
)
from unkai.runtime.limits import RssProbe, over_memory_size
from unkai.runtime.spec import InstanceSpec

#: Called with (instance, request id or None, text) for output not carried by a RESULT frame.
LogCallback = Callable[["Instance", str | None, str], None]
log = logging.getLogger("unkai.runtime")

#: Gets the outcome of `Instance.begin`.
ResultCallback = Callable[[InvocationResult], None]
#: Tasks finishing failed invocations; referenced here so they are not garbage-collected.
_background: set[asyncio.Task[InvocationResult]] = set()
#: How long a crashed instance waits for its exit status before reporting without it.
EXIT_STATUS_WAIT_S = 1.0
#: How long a stopped instance's stdout pipe is still read before it is closed.
STDIO_DRAIN_S = 1.0
#: The loop's timers have millisecond resolution (uvloop's may fire up to that much early, and
#: then the timer is armed again, for at least this long).
TIMER_RESOLUTION_S = 0.001
HEADER_SIZE = frames.HEADER.size


def _deliver(done: ResultCallback, result: InvocationResult) -> None:
    """Hand a result to its caller; a bug in the caller's callback is logged, and never
    reaches the instance's socket callback (which would close the instance's connection)."""
    try:
        done(result)
    except Exception:  # boundary: the instance stays usable whatever the caller did
        log.exception("a callback of invocation %s failed", result.request_id)


class _Protocol(asyncio.Protocol):
    __slots__ = ("decoder", "instance")

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.decoder = frames.FrameDecoder()

    def data_received(self, data: bytes) -> None:
        # Nearly always one whole RESULT frame arrives alone: it is taken as it is, without a
        # pass through the decoder's buffer (a copy and a list per invocation).
        if not self.decoder.pending and len(data) >= HEADER_SIZE:
            length, kind = frames.HEADER.unpack_from(data)
            if len(data) == HEADER_SIZE + length:
                self.instance._on_frame(kind, data[HEADER_SIZE:])
                return
        for kind, body in self.decoder.feed(data):
            self.instance._on_frame(kind, body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.instance._on_lost(self.decoder, exc)


class Instance:
    #: Whether a busy instance takes more invocations to run after the current one.
    queues_invocations = True

    def __init__(self, spec: InstanceSpec, log_stream: str, on_log: LogCallback) -> None:
        self.id = uuid.uuid4().hex
        self.spec = spec
        self.log_stream = log_stream
        self.pid = 0
        self.state = InstanceState.STARTING
        self.created = time.monotonic()
        self.last_used = self.created
        self.invocations = 0
        self.init_duration_ms: float | None = None
        self.preload_modules: list[str] = []
        self.last_rss_kb = 0
        self._rss_probe: RssProbe | None = None
        #: The read end of the process's stdout/stderr pipe (Python instances), or -1, and how
        #: much of it the current invocation wrote (capped as sys.stdout's text is).
        self._stdio = -1
        self._stdio_rid: str | None = None
        self._stdio_chars = 0
        self._on_log = on_log
        self._transport: asyncio.Transport | None = None
        #: Our own duplicate of the socket's descriptor (see `_on_lost`), or -1.
        self._socket_copy = -1
        self._pending: tuple[Invocation, ResultCallback] | None = None
        #: Invocations written after the pending one, in the order the runtime runs them.
        self._queued: collections.deque[tuple[Invocation, ResultCallback]] = collections.deque()
        #: How many callers hold this instance now (the pool's count: the pending invocation
        #: and the queued ones, each released when its result is delivered).
        self.lent = 0
        #: The last RESULT's handler duration and the runtime's CPU time for that cycle.
        self.last_duration_ms = 0.0
        self.last_cpu_ms = 0.0
        #: The deadline timer, and when it fires (see `_arm`); None when none is armed.
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        #: Kept: asyncio.get_running_loop() costs a getpid() syscall on every call.
        self._loop = loop = asyncio.get_running_loop()
        self._exit: asyncio.Future[int] = loop.create_future()
        #: Resolved when the child reports READY (init done), or with False if it never will.
        self._initialized: asyncio.Future[bool] = loop.create_future()
        #: An INIT_ERROR that came before the first invoke (init runs right after the fork).
        self._init_error: bytes | None = None
        self._killed_for: str | None = None
        self._init_reported = False
        #: Called (soon) with the pid once the first invocation returned a RESULT: the
        #: supervisor tells the zygote, which learns from it (prefault.py).
        self.on_first_result: Callable[[int], None] | None = None
        self._started = self.created

    async def connect(self, sock: socket.socket, pid: int, output_fd: int | None = None) -> None:
        """Adopt the platform's end of the socketpair whose other end the child holds, and
        the read end of the pipe that is the child's stdout and stderr."""
        self.pid = pid
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_unix_connection(lambda: _Protocol(self), sock=sock)
        self._transport = transport
        self._socket_copy = os.dup(sock.fileno())
        if output_fd is not None:
            os.set_blocking(output_fd, False)
            self._stdio = output_fd
            self._stdio_decoder = codecs.getincrementaldecoder("utf-8")("replace")
            loop.add_reader(output_fd, self._read_stdio)

    def _read_stdio(self) -> None:
        """Output that bypassed sys.stdout: the running invocation's, else the instance's."""
        try:
            data = os.read(self._stdio, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the process and every child that shared the pipe are gone
            self._close_stdio()
            return
        pending = self._pending
        rid = pending[0].request_id if pending else None
        if rid != self._stdio_rid:
            self._stdio_rid, self._stdio_chars = rid, 0
        text = self._stdio_decoder.decode(data)
        if self._stdio_chars >= LOG_CAP_CHARS:
            return  # past the cap: the marker was written once, the rest is dropped
        self._stdio_chars += len(text)
        if self._stdio_chars >= LOG_CAP_CHARS:
            text = text[: len(text) - (self._stdio_chars - LOG_CAP_CHARS)] + TRUNCATED_MARKER
        self._log(rid, text)

    def _close_stdio(self) -> None:
        if self._stdio >= 0:
            self._loop.remove_reader(self._stdio)
            os.close(self._stdio)
            self._stdio = -1

    def _move(self, target: InstanceState, action: str) -> None:
        if target not in ALLOWED[self.state]:
            raise InvalidTransition(self.id, action, self.state)
        self.state = target

    @property
    def reusable(self) -> bool:
        return self.state is InstanceState.READY

    def begin(self, invocation: Invocation, done: ResultCallback) -> None:
        """Start one invocation; `done` gets its result, exactly once, from the event loop.

        The common case (a RESULT frame) completes in the frame callback with no task, future
        or extra loop turn: this is the hot path of every front door. Failures that need the
        exit status (crash, memory kill) finish in a task.
        """
        if self._init_error is not None:
            self._started = time.monotonic()
            self._finish_later(invocation, done, frames.INIT_ERROR, self._init_error)
            return
        if self._pending is not None:
            self._queue(invocation, done)
            return
        if self.state is InstanceState.READY:  # the warm case: READY -> BUSY is allowed
            self.state = InstanceState.BUSY
        else:
            self._move(InstanceState.BUSY, "invoke")
        self._started = now = time.monotonic()
        transport = self._transport
        if transport is None or transport.is_closing():
            self._finish_later(invocation, done, 0, b"")
            return
        deadline = invocation.deadline
        budget_ms = int((deadline - now) * 1000)
        transport.write(
            frames.encode_invoke(
                invocation.request_id, budget_ms, invocation.payload, b"", invocation.adapter
            )
        )
        self._pending = (invocation, done)
        if self._timer is None or self._timer_at > deadline:  # `_watch_deadline`, inlined
            self._arm(deadline, now)

    def _queue(self, invocation: Invocation, done: ResultCallback) -> None:
        """Write an INVOKE behind the running one: the runtime reads it the moment it sends
        the running one's RESULT, without a round trip through the platform's loop (which
        saves the instance a sleep and a wake-up per invocation under load)."""
        transport = self._transport
        if self.state is not InstanceState.BUSY or transport is None or transport.is_closing():
            self._loop.call_soon(_deliver, done, self._unstarted(invocation))
            return
        budget_ms = int(self.spec.timeout_s * 1000)
        transport.write(
            frames.encode_invoke(
                invocation.request_id, budget_ms, invocation.payload, b"", invocation.adapter
            )
        )
        self._queued.append((invocation, done))

    def _unstarted(self, invocation: Invocation) -> InvocationResult:
        return InvocationResult(
            request_id=invocation.request_id,
            payload=None,
            error=FunctionError("Runtime.NotStarted", "the instance ended before this began"),
            duration_ms=0.0,
            max_memory_used_mb=0,
            memory_size_mb=self.spec.memory_size_mb,
            started=False,
        )

    def _hand_back_unstarted(self) -> None:
        """The instance failed with invocations queued that it never started: each goes back
        to its caller (from the loop, not from inside this frame's callback)."""
        queued = self._queued
        while queued:
            invocation, done = queued.popleft()
            self._loop.call_soon(_deliver, done, self._unstarted(invocation))

    def _watch_deadline(self, deadline: float, now: float) -> None:
        """One timer per instance, not one per invocation: an earlier deadline's timer is
        kept when a later invocation starts, and when it fires it re-arms for the running
        invocation's own deadline (`_on_timer`). A warm invocation so costs no timer at all:
        scheduling and cancelling one was a visible share of the gateway's per-request CPU."""
        if self._timer is None or self._timer_at > deadline:
            self._arm(deadline, now)

    def _arm(self, deadline: float, now: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        delay = deadline - now
        self._timer = self._loop.call_later(
            delay if delay <= 0 or delay >= TIMER_RESOLUTION_S else TIMER_RESOLUTION_S,
            self._on_timer,
        )

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def invoke(self, invocation: Invocation) -> InvocationResult:
        """`begin` for callers that await; see the module docstring for the outcomes."""
        future: asyncio.Future[InvocationResult] = self._loop.create_future()

        def deliver(result: InvocationResult) -> None:
            if not future.done():  # the caller may have been cancelled meanwhile
                future.set_result(result)

        self.begin(invocation, deliver)
        return await future

    def _complete(self, kind: int, body: bytes) -> None:
        """A frame (or EOF / timeout, kind 0) ends the pending invocation.

        After a RESULT the runtime goes straight on to the next queued INVOKE, so that one is
        pending from now (and counts as started even if this RESULT makes the instance fail:
        it may have begun, and running it twice would be worse than failing it). After EOF
        or a timeout the queued ones never started, and go back."""
        pending = self._pending
        if pending is None:
            return
        queued = self._queued
        if queued and kind == frames.RESULT:
            self._pending = following = queued.popleft()
            self._started = now = time.monotonic()
            following[0].deadline = now + self.spec.timeout_s
        else:
            self._pending = None
        invocation, done = pending
        self.invocations += 1
        self.last_used = time.monotonic()
        if kind == frames.RESULT:
            try:
                result = self._from_result(invocation, body)
            except Exception as exc:  # boundary: a handler can write its own bytes on the socket
                log.warning("instance %s sent a malformed RESULT frame: %r", self.id, exc)
                self.kill("malformed result")
                self._fail()
                result = self._failure(
                    invocation,
                    "Runtime.ExitError",
                    f"RequestId: {invocation.request_id} Error: Runtime exited with error: "
                    "the runtime sent a malformed result",
                )
            if self._killed_for is None and self.state is InstanceState.FAILED:
                self._exiting_after_result()
            try:
                done(result)
            except Exception:  # boundary: as in `_deliver`
                log.exception("a callback of invocation %s failed", result.request_id)
        else:
            self._finish_later(invocation, done, kind, body)
            self._hand_back_unstarted()

    def _exiting_after_result(self) -> None:
        """The runtime exits on its own after this RESULT (a MemoryError): the invocation
        that was to follow never starts, so it goes back with the rest of the queue."""
        following = self._pending
        if following is not None:
            self._pending = None
            self._queued.appendleft(following)
        self._hand_back_unstarted()

    def _finish_later(
        self, invocation: Invocation, done: ResultCallback, kind: int, body: bytes
    ) -> None:
        """A failed invocation, finished in a task (it may wait for the exit status). The
        instance is marked failed now: until the task runs, the pool must not lend it."""
        self._fail()
        task = self._loop.create_task(self._outcome(invocation, kind, body))
        _background.add(task)

        def deliver(finished: asyncio.Task[InvocationResult]) -> None:
            _background.discard(finished)
            if finished.cancelled():  # the loop is closing (shutdown) while it waited
                rid = invocation.request_id
                message = f"RequestId: {rid} Error: Runtime exited as the platform shut down"
                _deliver(done, self._failure(invocation, "Runtime.ExitError", message))
            else:
                _deliver(done, finished.result())

        task.add_done_callback(deliver)

    async def _outcome(self, invocation: Invocation, kind: int, body: bytes) -> InvocationResult:
        if kind == frames.RESULT:
            return self._from_result(invocation, body)
        self._fail()
        rid = invocation.request_id
        if kind == frames.INIT_ERROR:
            doc = json.loads(body)
            self._log(rid, doc.get("log", ""))
            error = doc["error"]
            return self._failure(
                invocation,
                error["errorType"],
                error["errorMessage"],
                error.get("stackTrace") or [],
                init_ms=float(doc.get("duration_ms", 0.0)),
            )
        if self._killed_for == "timeout":
            return self._failure(
                invocation, "Sandbox.Timedout", timed_out_message(rid, self.spec.timeout_s)
            )
        status = await self._exit_status()
        if self._killed_for == "memory":
            return self._failure(
                invocation,
                "Runtime.OutOfMemory",
                out_of_memory_message(rid, status, self.spec.memory_size_mb),
            )
        return self._failure(invocation, "Runtime.ExitError", exited_message(rid, status))

    def _from_result(self, invocation: Invocation, body: bytes) -> InvocationResult:
        status, duration_ms, cpu_ms, max_rss_kb, output, data = frames.decode_result(body)
        self.last_duration_ms = duration_ms
        self.last_cpu_ms = cpu_ms
        error: FunctionError | None = None
        payload: bytes | None = data
        if status == frames.RESULT_ERROR:
            doc = json.loads(data)
            error = FunctionError(
                doc["errorType"], doc["errorMessage"], doc.get("stackTrace") or []
            )
            payload = None
        if error is None and over_memory_size(max_rss_kb, self.spec.memory_size_mb):
            # Grew past the limit between two watchdog samples: Lambda would have killed it.
            self.kill("memory")
            self.last_rss_kb = max_rss_kb
            self._fail()
            rid = invocation.request_id
            return self._failure(
                invocation,
                "Runtime.OutOfMemory",
                out_of_memory_message(rid, -signal.SIGKILL, self.spec.memory_size_mb),
            )
        if error is not None and error.error_type == "Runtime.OutOfMemory":
            self._fail()
        elif self.state is InstanceState.BUSY and self._pending is None:
            self.state = InstanceState.READY  # BUSY -> READY is always allowed
        # Positional: once per invocation, on the loop; keyword arguments cost ~50 ns each.
        return InvocationResult(
            invocation.request_id,
            payload,
            error,
            duration_ms,
            -(-max_rss_kb // 1024),  # max memory used, MB
            self.spec.memory_size_mb,
            None if self._init_reported else self._first_init(),
            self.spec.version,
            output.decode("utf-8", "replace") if output else "",
        )

    def _failure(
        self,
        invocation: Invocation,
        error_type: str,
        message: str,
        stack: list[str] | None = None,
        init_ms: float | None = None,
    ) -> InvocationResult:
        limit = self.spec.memory_size_mb
        used = limit if self._killed_for == "memory" else -(-self.last_rss_kb // 1024)
        duration_ms = max(0.0, (time.monotonic() - self._started) * 1000.0)
        return InvocationResult(
            request_id=invocation.request_id,
            payload=None,
            error=FunctionError(error_type, message, stack or []),
            duration_ms=duration_ms,
            max_memory_used_mb=used,
            memory_size_mb=limit,
            init_duration_ms=init_ms if init_ms is not None else self._take_init(),
            executed_version=self.spec.version,
        )

    def _fail(self) -> None:
        """Mark the instance unusable, unless it was already stopped meanwhile."""
        if InstanceState.FAILED in ALLOWED[self.state]:
            self._move(InstanceState.FAILED, "fail")

    def _first_init(self) -> float | None:
        """The first RESULT's init duration; whoever waits for that RESULT hears of it."""
        hook = self.on_first_result
        if hook is not None:
            self.on_first_result = None
            self._loop.call_soon(hook, self.pid)
        return self._take_init()

    def _take_init(self) -> float | None:
        if self._init_reported or self.init_duration_ms is None:
            return None
        self._init_reported = True
        return self.init_duration_ms

    def _on_frame(self, kind: int, body: bytes) -> None:
        if kind == frames.RESULT:  # the common case first
            if self._pending is not None:
                self._complete(kind, body)
        elif kind == frames.READY:
            self.init_duration_ms = frames.READY_HEAD.unpack_from(body)[0]
            info = json.loads(body[frames.READY_HEAD.size :])
            self.preload_modules = list(info.get("modules", []))
            self._log(None, info.get("log", ""))
            pending = self._pending
            if pending is not None:
                # The first invocation starts now: as on Lambda, its timeout counts from the
                # end of init (the runtime counts its budget from here too). Init itself is
                # bounded by the deadline set when the INVOKE was written.
                pending[0].deadline = time.monotonic() + self.spec.timeout_s
            if not self._initialized.done():
                self._initialized.set_result(True)
        elif kind == frames.LOG:
            # Output of the running invocation, streamed while it runs: it is that
            # invocation's (between its START and END), not the instance's.
            pending = self._pending
            rid = pending[0].request_id if pending is not None else None
            self._log(rid, body.decode("utf-8", "replace"))
        else:
            if kind == frames.INIT_ERROR and not self._initialized.done():
                self._initialized.set_result(False)
            if self._pending is not None:
                self._complete(kind, body)
            elif kind == frames.INIT_ERROR:
                self._init_error = body

    def _log(self, request_id: str | None, text: str) -> None:
        if text:
            self._on_log(self, request_id, text)

    def _on_lost(self, decoder: frames.FrameDecoder, exc: Exception | None) -> None:
        """The connection ended. When a write failed (the process had just exited: EPIPE),
        the transport closed before reading what the process sent last, such as the RESULT
        of the invocation before the one it died in; with calls queued on an instance that
        happens. It is read from our duplicate of the socket first, so that RESULT counts
        and the crash is the next invocation's."""
        copy = self._socket_copy
        if copy >= 0:
            self._socket_copy = -1
            if exc is not None:
                with contextlib.suppress(OSError):  # nothing more to read (or a child holds it)
                    while chunk := os.read(copy, 65536):
                        for kind, body in decoder.feed(chunk):
                            self._on_frame(kind, body)
            os.close(copy)
        self._on_eof()

    def _on_eof(self) -> None:
        if not self._initialized.done():
            self._initialized.set_result(False)
        self._complete(0, b"")
        if self.state in (InstanceState.READY, InstanceState.STARTING):
            self._fail()

    def _on_timer(self) -> None:
        """The armed deadline came: the running invocation is past its own deadline (then
        it is killed), or it is a later one (then the timer waits for that one's)."""
        self._timer = None
        pending = self._pending
        if pending is None:
            return  # idle: the next `begin` arms again
        now = time.monotonic()
        deadline = pending[0].deadline
        if deadline > now:
            self._arm(deadline, now)
            return
        self.kill("timeout")
        self._complete(0, b"")

    def kill(self, reason: str) -> None:
        """SIGKILL the instance's process group (timeout, memory, shutdown): processes the
        handler started go too, as when Lambda discards a sandbox. The zygote reaps it."""
        if self._killed_for is None:
            self._killed_for = reason
        if self.pid and not self._exit.done():  # once reaped, the pid may be another's
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)

    def sample_rss_kb(self) -> int | None:
        """The process's resident set now (the memory watchdog's sample); None once gone."""
        if self._rss_probe is None:
            if not self.pid:
                return None
            self._rss_probe = RssProbe(self.pid)
        return self._rss_probe.read_kb()

    def _close_probe(self) -> None:
        if self._rss_probe is not None:
            self._rss_probe.close()
            self._rss_probe = None

    def exited(self, status: int) -> None:
        """The zygote reaped our process (called by the supervisor)."""
        self._close_probe()
        if not self._exit.done():
            self._exit.set_result(status)

    async def _exit_status(self) -> int | None:
        try:
            return await asyncio.wait_for(asyncio.shield(self._exit), EXIT_STATUS_WAIT_S)
        except TimeoutError:
            return None

    def stop(self) -> None:
        """End the instance: its process group is killed, busy or idle, so that processes the
        handler left running (a helper, a `Popen` it never waited for) go with it, as when
        Lambda discards a sandbox; a busy one's invocation fails."""
        if self.state is InstanceState.BUSY:
            self._fail()
        self.kill("stop")
        if self._pending is None:
            # A busy one keeps its timer: it still ends its invocation at the deadline if no
            # EOF comes (a child that left the process group may hold the socket open).
            self._cancel_timer()
        if self.state is not InstanceState.STOPPED:
            self._move(InstanceState.STOPPED, "stop")
        self._close_probe()
        if self._stdio >= 0:
            # What the process wrote just before the kill is still read; then the pipe closes
            # even if a child that left the process group keeps its write end open.
            self._loop.call_later(STDIO_DRAIN_S, self._close_stdio)
        if self._transport is not None:
            self._transport.close()

    async def wait_initialized(self) -> bool:
        """True once init has run (READY), False if the instance went away first."""
        return await asyncio.shield(self._initialized)

    @property
    def started_at(self) -> float:
        """When the current (or last) invocation began, a `time.monotonic()` value."""
        return self._started

    @property
    def started_wall_ms(self) -> int:
        """When the current (or last) invocation began, in epoch milliseconds."""
        return int(time.time() * 1000 - (time.monotonic() - self._started) * 1000)

    @property
    def exit_future(self) -> asyncio.Future[int]:
        return self._exit
