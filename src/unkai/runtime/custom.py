"""`CustomInstance`: an instance of a `provided` function, driven through the Lambda Runtime API.

A `provided`, `provided.al2` or `provided.al2023` function ships a `bootstrap` executable in
its bundle (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-custom.html). Pipeline:

1. `start`: open this instance's Runtime API listener on 127.0.0.1:<free port>, then start
   `<task_root>/bootstrap` with `subprocess` (not forked from the zygote: the zygote is a
   Python interpreter, and a custom runtime is any executable) in its own session, with the
   function's Lambda environment plus `AWS_LAMBDA_RUNTIME_API`, cwd = the bundle, stdin
   closed, stdout and stderr on one pipe (so their order is kept).
2. The runtime's first `GET /next` ends init (its time is the Init Duration, as on Lambda);
   a `POST /init/error` before it is an init failure, reported like the Python runtime's
   INIT_ERROR (to the invocation waiting for it, or to the next one).
3. `begin` (from the pool) hands the invocation to the parked `/next`, or keeps it until the
   runtime asks. `/response` and `/error` end it: they are turned into the same RESULT frame
   body a Python instance sends, so `Instance` handles both kinds of instance from there
   (memory check, state, REPORT figures). Output read from the pipe while an invocation runs
   is its log text; output between invocations goes to the log sink at once.

Timeouts, memory kills, exits and `stop` are `Instance`'s: SIGKILL of the process group; the
exit status comes from our own `wait` on the child instead of a zygote's EXITED report.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import contextlib
import json
import os
import resource
import secrets
import subprocess
import time
from typing import Any

from unkai.gateway.http1 import Headers, HttpConnection, HttpServer
from unkai.invoke.models import Invocation
from unkai.runtime import adapters, frames
from unkai.runtime.bootstrap import LOG_CAP_CHARS, LOG_STREAM_INTERVAL_S, TRUNCATED_MARKER
from unkai.runtime.instance import Instance, LogCallback, ResultCallback
from unkai.runtime.instance_state import InstanceState
from unkai.runtime.limits import MAX_OPEN_FILES, read_rss_kb, use_batch_policy
from unkai.runtime.runtime_api import LIMITS, RuntimeApi
from unkai.runtime.spec import InstanceSpec

#: The runtimes whose instances run a `bootstrap` (Lambda's OS-only runtimes).
CUSTOM_RUNTIMES = frozenset({"provided", "provided.al2", "provided.al2023"})
BOOTSTRAP_NAME = "bootstrap"
_READ_BYTES = 64 * 1024
#: Tasks of custom instances (exit waits, listener shutdowns), kept from garbage collection.
_tasks: set[asyncio.Task[None]] = set()


def is_custom_runtime(runtime: str) -> bool:
    return runtime in CUSTOM_RUNTIMES


def _child_setup() -> None:
    """Runs in the child between fork and exec: no core dumps, Lambda's fd quota, and the
    instance scheduling policy (see `limits`). Memory is the watchdog's job (docs/runtime.md)."""
    for which, value in ((resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, MAX_OPEN_FILES)):
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, hard))
    use_batch_policy()


def trace_id() -> str:
    """An X-Ray trace header for invocations that came without one, as Lambda always sends."""
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Sampled=0"


def client_context_json(value: str) -> str:
    """Lambda-Runtime-Client-Context is JSON; callers pass X-Amz-Client-Context base64."""
    with contextlib.suppress(ValueError):
        decoded = base64.b64decode(value, validate=True).decode()
        json.loads(decoded)
        return decoded
    return value


class CustomInstance(Instance):
    #: The Runtime API hands out one event per `GET /next`: nothing is queued behind it.
    queues_invocations = False

    def __init__(self, spec: InstanceSpec, log_stream: str, on_log: LogCallback) -> None:
        super().__init__(spec, log_stream, on_log)
        self._server = HttpServer(RuntimeApi(self), LIMITS)
        self._process: asyncio.subprocess.Process | None = None
        self._output_fd = -1
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        #: A `GET /next` waiting for an event.
        self._parked: HttpConnection | None = None
        #: The request id handed to the runtime and not yet answered.
        self._handed_out: str | None = None
        self._log_parts: list[str] = []
        self._log_chars = 0
        self._log_since = 0.0
        self._process_gone = False

    async def start(self, env: dict[str, str]) -> None:
        """Open the API listener and start the bootstrap. Raises OSError if it cannot run."""
        port = await self._server.start("127.0.0.1", 0)
        env = {**env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}"}
        read_fd, write_fd = os.pipe()
        try:
            self._process = await asyncio.create_subprocess_exec(
                str(self.spec.task_root / BOOTSTRAP_NAME),
                env=env,
                cwd=self.spec.task_root,
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                start_new_session=True,
                preexec_fn=_child_setup,
            )
        except OSError:
            os.close(read_fd)
            await self._server.close(grace_s=0)
            raise
        finally:
            os.close(write_fd)
        self.pid = self._process.pid
        self._output_fd = read_fd
        os.set_blocking(read_fd, False)
        self._loop.add_reader(read_fd, self._read_output)
        task = self._loop.create_task(self._wait_exit(self._process))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)

    # -- the Runtime API (RuntimeApiTarget) -----------------------------------------------------

    def next_invocation(self, connection: HttpConnection) -> str | None:
        """One runtime asks for one event at a time. While an event is out, asking again is
        refused (handing it out twice would run it twice); so is a second wait beside one
        still open. A wait whose connection closed (a client that timed out) is replaced."""
        if self._handed_out is not None:
            return (
                f"invocation {self._handed_out} is in flight: post its response or error "
                "before asking for the next one"
            )
        parked = self._parked
        if parked is not None and not parked.closed:
            return "another request is already waiting for the next invocation"
        if not self._initialized.done():
            self._drain_output()  # what init printed is the instance's, not the invocation's
            self.init_duration_ms = (time.monotonic() - self.created) * 1000.0
            self._initialized.set_result(True)
        self._parked = connection
        self._hand_out()
        return None

    def invocation_response(self, request_id: str, body: bytes) -> bool:
        pending = self._pending
        if pending is not None and pending[0].adapter and request_id == self._handed_out:
            body = adapters.load(pending[0].adapter).response(body)
        return self._answer(request_id, frames.RESULT_OK, body)

    def invocation_error(self, request_id: str, error: dict[str, Any]) -> bool:
        return self._answer(request_id, frames.RESULT_ERROR, json.dumps(error).encode())

    def init_error(self, error: dict[str, Any]) -> bool:
        if self._initialized.done():
            return False
        self._drain_output()
        duration_ms = (time.monotonic() - self.created) * 1000.0
        doc = {"error": error, "log": self._take_log(), "duration_ms": duration_ms}
        self._on_frame(frames.INIT_ERROR, json.dumps(doc).encode())
        self.kill("init error")  # Lambda resets the environment after a failed init
        return True

    def _hand_out(self) -> None:
        pending, responder = self._pending, self._parked
        if pending is None or responder is None or self._handed_out is not None:
            return
        if responder.closed:  # the runtime gave up on this wait; the event waits for the next
            self._parked = None
            return
        invocation = pending[0]
        self._parked = None
        self._handed_out = invocation.request_id
        payload = invocation.payload
        if invocation.adapter:  # the runtime is not ours: the adapter runs here, in the loop
            payload = adapters.load(invocation.adapter).event_json(payload)
        responder.respond(200, self._next_headers(invocation), payload)

    def _next_headers(self, invocation: Invocation) -> Headers:
        deadline_ms = int((time.time() + invocation.deadline - time.monotonic()) * 1000)
        headers: Headers = [
            (b"content-type", b"application/json"),
            (b"lambda-runtime-aws-request-id", invocation.request_id.encode()),
            (b"lambda-runtime-deadline-ms", str(deadline_ms).encode()),
            (b"lambda-runtime-invoked-function-arn", self.spec.function_arn.encode()),
            (b"lambda-runtime-trace-id", (invocation.trace_id or trace_id()).encode()),
        ]
        if invocation.client_context:
            context = client_context_json(invocation.client_context)
            headers.append((b"lambda-runtime-client-context", context.encode()))
        return headers

    def _answer(self, request_id: str, status: int, data: bytes) -> bool:
        if self._pending is None or request_id != self._handed_out:
            return False
        self._handed_out = None
        self._drain_output()
        rss_kb = read_rss_kb(self.pid) or 0
        self.last_rss_kb = max(self.last_rss_kb, rss_kb)
        duration_ms = (time.monotonic() - self._started) * 1000.0
        log = self._take_log().encode("utf-8", "backslashreplace")
        body = frames.encode_result(status, duration_ms, 0.0, self.last_rss_kb, log, data)
        self._complete(frames.RESULT, body[frames.HEADER.size :])
        return True

    # -- Instance overrides ---------------------------------------------------------------------

    def begin(self, invocation: Invocation, done: ResultCallback) -> None:
        if self._init_error is not None:
            super().begin(invocation, done)  # reports the init error
            return
        if self._process_gone:  # exited while idle (or before init): Runtime.ExitError
            self._started = time.monotonic()
            self._finish_later(invocation, done, 0, b"")
            return
        self._move(InstanceState.BUSY, "invoke")
        self._started = now = time.monotonic()
        self._log_since = now
        self._pending = (invocation, done)
        self._watch_deadline(invocation.deadline, now)
        self._hand_out()

    def _complete(self, kind: int, body: bytes) -> None:
        if kind != frames.RESULT and self._pending is not None:
            # Timeout or exit: what the invocation printed goes out before its error.
            self._drain_output()
            self._log(self._pending[0].request_id, self._take_log())
        super()._complete(kind, body)

    def stop(self) -> None:
        """Stop as any instance (its process group is killed), and close its Runtime API."""
        super().stop()
        self._close_server()

    # -- the process --------------------------------------------------------------------------

    async def wait_closed(self, timeout_s: float) -> None:
        """Wait (bounded) until the process was reaped and the listener closed."""
        process = self._process
        if process is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), timeout_s)
        await self._server.close(grace_s=0)

    async def _wait_exit(self, process: asyncio.subprocess.Process) -> None:
        status = await process.wait()
        self._process_gone = True
        self._drain_output()
        self._close_output()
        self.exited(status)
        self._parked = None
        self._on_eof()
        self._close_server()

    def _close_server(self) -> None:
        task = self._loop.create_task(self._server.close(grace_s=0))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)

    def _read_output(self) -> None:
        self._drain_output()

    def _drain_output(self) -> None:
        """Read whatever the runtime wrote so far; called before an invocation is settled,
        so output written before the runtime's /response is in that invocation's log."""
        fd = self._output_fd
        while fd >= 0:
            try:
                data = os.read(fd, _READ_BYTES)
            except BlockingIOError:
                return
            if not data:
                self._close_output()
                return
            self._add_output(self._decoder.decode(data))

    def _close_output(self) -> None:
        if self._output_fd >= 0:
            self._loop.remove_reader(self._output_fd)
            os.close(self._output_fd)
            self._output_fd = -1

    def _add_output(self, text: str) -> None:
        pending = self._pending
        if pending is None or not self._initialized.done():
            self._log(None, text)
            return
        if self._log_chars < LOG_CAP_CHARS:
            self._log_parts.append(text[: LOG_CAP_CHARS - self._log_chars])
        self._log_chars += len(text)
        now = time.monotonic()
        if now - self._log_since > LOG_STREAM_INTERVAL_S:
            # A long invocation's output is streamed, as the Python runtime's LOG frames are.
            self._log_since = now
            self._log(pending[0].request_id, self._take_log(keep_count=True))

    def _take_log(self, keep_count: bool = False) -> str:
        text = "".join(self._log_parts)
        if self._log_chars > LOG_CAP_CHARS and not keep_count:
            text += TRUNCATED_MARKER
        self._log_parts.clear()
        if not keep_count:
            self._log_chars = 0
        return text
