"""The in-instance runtime: import the handler, then serve invocations over one socket.

Runs inside every function instance, forked from a zygote (`zygote.py`) or standalone as
`python -m unkai.runtime.bootstrap --fd N` (used by `unkai invoke local` and as the benchmark
baseline). It imports only the stdlib and our frame codec, so a fresh interpreter pays little
and a zygote pays it once for all its children; an adapter an INVOKE names (`adapters.py`) is
imported when first needed, and zygotes preload the platform's.

Pipeline, mirroring Lambda's Python runtime (awslambdaric `bootstrap.py`):

1. Replace stdout/stderr with `LogCapture` and install a root logging handler with Lambda's
   format, so everything the function prints lands in the per-invocation log.
2. Import the handler (`_HANDLER`, from `LAMBDA_TASK_ROOT`), timed as Init Duration. Send READY
   with the non-task-root modules that import pulled in (the platform preloads them into a
   per-version zygote), or INIT_ERROR with Lambda's error document and exit.
3. Loop: read INVOKE, call `handler(event, context)` (the event is the INVOKE's JSON, or what
   its adapter makes), send one RESULT with the payload (the adapter's mapping of it) or the
   error document, the duration, the peak RSS and the log text not yet sent. Output that waits
   longer than LOG_STREAM_INTERVAL_S goes ahead as LOG frames (LogCapture's flusher thread), so
   a timeout, crash or memory kill does not lose it. A response over MAX_RESPONSE_BYTES becomes
   Lambda's `Function.ResponseSizeTooLarge` error, and the instance stays. Module state persists
   between invocations (warm reuse). EOF on the socket means the platform is done with us: exit 0.
"""

from __future__ import annotations

import _thread
import io
import json
import logging
import os
import resource
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from unkai.runtime import adapters, frames

#: A single invocation's log is cut here, with a marker (the platform stores it as one record).
LOG_CAP_CHARS = 256 * 1024
#: While an invocation runs, printed text reaches the platform (as a LOG frame) at most this
#: long after it was written, even if the handler then blocks until it is killed: on Lambda,
#: stdout reaches CloudWatch as it is written, so the last lines before a timeout, a crash or a
#: memory kill are the main debugging clue.
LOG_STREAM_INTERVAL_S = 0.2
#: Everything buffered is sent this long before the invocation's deadline, whatever its age:
#: the platform SIGKILLs the instance at the deadline.
DEADLINE_FLUSH_MARGIN_S = 0.05
TRUNCATED_MARKER = "\n[unkai] log truncated: this invocation wrote more than 256 KiB\n"

#: Lambda fails a synchronous invocation whose response is larger than this, with
#: `Function.ResponseSizeTooLarge`, and keeps the execution environment: 6 MB plus 100 bytes,
#: the number its error message reports ("Response payload size exceeded maximum allowed
#: payload size (6291556 bytes).").
#: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
MAX_RESPONSE_BYTES = 6_291_556

#: Lambda's Python log format (awslambdaric `bootstrap.py`, `LambdaLoggerHandler`).
LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"
LOG_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"

Handler = Callable[[Any, Any], Any]
ErrorDoc = dict[str, Any]


class LogCapture(io.TextIOBase):
    """A stdout/stderr replacement that buffers one invocation's output.

    The common case costs nothing extra: the handler prints a little and returns, and its text
    rides in the RESULT frame (one frame each way). So that text written shortly before a
    timeout, crash or memory kill is not lost with the process, a daemon flusher thread (started
    on the first write of the instance's first invocation) sends text that has waited
    LOG_STREAM_INTERVAL_S, or that is still buffered just before the deadline, as a LOG frame.

    The flusher parks on `_wake` once nothing has been written for an interval; a write during
    an invocation wakes it only if it is parked, so a steady stream of invocations does not
    hand off to it once per invocation. Buffer, socket sends and the flusher's state are
    guarded by `_lock` (writes may also come from the handler's own threads). `take` clears the
    buffer and stops streaming under that lock, so the flusher never sends after the main
    thread has taken the text for the RESULT: the log is neither duplicated nor reordered.
    """

    def __init__(self, sock: socket.socket | None = None) -> None:
        super().__init__()
        self.request_id = ""
        #: None until `attach`: a zygote's spare builds its capture before it has a socket.
        self._sock = sock
        self._parts: list[str] = []
        self._chars = 0
        self._truncated = False
        self._streaming = False
        #: Whether the running invocation's output went out in LOG frames (set by the flusher,
        #: read once `take` stopped it).
        self.streamed = False
        self._deadline_ms = 0
        #: When the oldest unsent text was written (monotonic), or its invocation began; once
        #: that text is gone, when the latest burst of output began.
        self._oldest = 0.0
        self._lock = _allocate_lock()
        #: Locked, except between a wake-up (`_unpark`) and the flusher taking it again.
        self._wake = _allocate_lock()
        self._wake.acquire()
        self._parked = True
        self._flusher_started = False
        #: In a process the handler forked: text goes to fd 1, the instance's output pipe,
        #: which the platform reads into the function's log.
        self._forked = False
        os.register_at_fork(after_in_child=self._forget_after_fork)

    def attach(self, sock: socket.socket) -> None:
        """Send streamed output on `sock`, the instance's socket (see `serve`)."""
        self._sock = sock

    def _forget_after_fork(self) -> None:
        """In a process the handler forked (multiprocessing, say): the flusher thread did not
        come along and its lock may have been held at the fork, so start from fresh locks,
        and never send on the socket this child shares with its parent: what it prints goes
        to fd 1, the instance's output pipe, and so into the log through the parent."""
        self._lock = _allocate_lock()
        self._wake = _allocate_lock()
        self._wake.acquire()
        self._parked = True
        self._flusher_started = True  # no flusher here
        self._streaming = False
        self._forked = True

    #: What `print` and `logging` see; io.TextIOBase reports None otherwise.
    encoding = "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        """Buffer text; raises TypeError for a non-str, with io.TextIOWrapper's message."""
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self._forked:
            os.write(1, text.encode("utf-8", "backslashreplace"))
            return len(text)
        with self._lock:
            size = len(text)
            if self._chars + size > LOG_CAP_CHARS:
                text = text[: max(0, LOG_CAP_CHARS - self._chars)]
                self._truncated = True
            if text:
                if not self._parts:
                    self._oldest = time.monotonic()
                self._parts.append(text)
                self._chars += len(text)
                if self._streaming and self._parked:
                    self._unpark()
            return size

    def begin(self, request_id: str, deadline_ms: int) -> None:
        """Start an invocation's log; output written between invocations joins it."""
        self.request_id = request_id
        self._deadline_ms = deadline_ms
        self.streamed = False  # before streaming starts: only the flusher sets it again
        self._streaming = True
        if self._parts:
            with self._lock:
                self._oldest = time.monotonic()
                if self._parked:
                    self._unpark()

    def take(self) -> bytes:
        """Return the unsent log text (plus the truncation marker) and start afresh."""
        with self._lock:
            text = "".join(self._parts)
            if self._truncated:
                text += TRUNCATED_MARKER
            self._parts.clear()
            self._chars = 0
            self._truncated = False
            self._streaming = False
            return text.encode("utf-8", "backslashreplace")

    def _unpark(self) -> None:
        """Wake the flusher (starting it the first time); call with `_lock` held."""
        self._parked = False
        self._wake.release()
        if not self._flusher_started:
            self._flusher_started = True
            threading.Thread(target=self._flush_forever, name="unkai-log", daemon=True).start()

    def _flush_forever(self) -> None:
        """The flusher thread: park until woken, then send the buffer once it is due.

        Ends when the socket fails: the platform is gone, and the main thread learns it from
        its own next send or read (and exits), so there is nobody left to tell.
        """
        try:
            while True:
                self._wake.acquire()
                while (wait_s := self._flush_if_due()) is not None:
                    time.sleep(wait_s)
        except OSError:
            return

    def _flush_if_due(self) -> float | None:
        """Send the buffer as a LOG frame once due; the seconds to wait before the next check,
        or None to park.

        With nothing to send, the flusher still waits out LOG_STREAM_INTERVAL_S after the
        latest text before parking: on a busy instance the RESULT has usually taken the text
        by the time the flusher runs, and parking then would cost a wake-up per invocation.
        """
        with self._lock:
            wait_s = self._oldest + LOG_STREAM_INTERVAL_S - time.monotonic()
            if self._streaming and self._parts:
                near_deadline_s = self._deadline_ms / 1000.0 - time.time()
                wait_s = min(wait_s, near_deadline_s - DEADLINE_FLUSH_MARGIN_S)
                if wait_s <= 0:
                    self._send_parts()
            if wait_s > 0:
                return wait_s
            self._parked = True
            return None

    def _send_parts(self) -> None:
        """Send the buffered text as one LOG frame; call with `_lock` held."""
        data = "".join(self._parts).encode("utf-8", "backslashreplace")
        self._parts.clear()
        self.streamed = True
        if self._sock is not None:
            self._sock.sendall(frames.frame(frames.LOG, data))


def _allocate_lock() -> Any:
    return _thread.allocate_lock()


class _RequestIdFilter(logging.Filter):
    def __init__(self, capture: LogCapture) -> None:
        super().__init__()
        self._capture = capture

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self._capture.request_id
        return True


def install_log_capture(sock: socket.socket | None = None) -> LogCapture:
    """Route print() and logging into a LogCapture, with Lambda's root handler format."""
    capture = LogCapture(sock)
    sys.stdout = capture
    sys.stderr = capture
    handler = logging.StreamHandler(capture)
    handler.terminator = ""
    formatter = logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT)
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter(capture))
    root = logging.getLogger()
    root.handlers = [handler]
    return capture


class LambdaContext:
    """The `context` argument, with the attributes of Lambda's Python LambdaContext.

    https://docs.aws.amazon.com/lambda/latest/dg/python-context.html
    """

    __slots__ = (
        "_deadline_ms",
        "aws_request_id",
        "client_context",
        "function_name",
        "function_version",
        "identity",
        "invoked_function_arn",
        "log_group_name",
        "log_stream_name",
        "memory_limit_in_mb",
    )

    def __init__(self, config: RuntimeConfig, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = config.function_name
        self.function_version = config.function_version
        self.invoked_function_arn = config.function_arn
        #: A string, as in Lambda.
        self.memory_limit_in_mb = config.memory_limit_in_mb
        self.log_group_name = config.log_group_name
        self.log_stream_name = config.log_stream_name
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, message: str) -> None:
        sys.stdout.write(message)


class RuntimeConfig:
    """What the runtime reads from the Lambda environment variables, once, at start."""

    __slots__ = (
        "function_arn",
        "function_name",
        "function_version",
        "handler",
        "log_group_name",
        "log_stream_name",
        "memory_limit_in_mb",
        "task_root",
    )

    def __init__(self, environ: Any, function_arn: str) -> None:
        self.handler: str = environ.get("_HANDLER", "")
        self.task_root: str = environ.get("LAMBDA_TASK_ROOT", os.getcwd())
        self.function_name: str = environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version: str = environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb: str = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name: str = environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name: str = environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.function_arn = function_arn


def error_document(error_type: str, message: str, stack: list[str] | None = None) -> ErrorDoc:
    return {"errorMessage": message, "errorType": error_type, "stackTrace": stack or []}


def format_stack(error: BaseException, skip_frames: int = 0) -> list[str]:
    """Lambda's stackTrace: `traceback.format_list` entries, without the runtime's own frames."""
    tb = error.__traceback__
    for _ in range(skip_frames):
        if tb is not None:
            tb = tb.tb_next
    return traceback.format_list(traceback.extract_tb(tb))


def load_handler(config: RuntimeConfig) -> tuple[Handler | None, ErrorDoc | None]:
    """Import `module.func` (module may be dotted or `dir/mod`); Lambda's errors on failure."""
    modname, _, fname = config.handler.rpartition(".")
    if not modname or not fname:
        message = f"Bad handler '{config.handler}': not enough values to unpack (expected 2, got 1)"
        return None, error_document("Runtime.MalformedHandlerName", message)
    try:
        module = __import__(modname.replace("/", "."), fromlist=["_"])
    except ImportError as error:
        message = f"Unable to import module '{modname}': {error}"
        return None, error_document("Runtime.ImportModuleError", message)
    except SyntaxError as error:
        trace = [f'  File "{error.filename}" Line {error.lineno}\n    {error.text}']
        message = f"Syntax error in module '{modname}': {error}"
        return None, error_document("Runtime.UserCodeSyntaxError", message, trace)
    except Exception as error:  # boundary: user init code, reported as Lambda does
        message = f"Unable to import module '{modname}': {error}"
        return None, error_document("Runtime.ImportModuleError", message, format_stack(error, 1))
    handler = getattr(module, fname, None)
    if handler is None:
        message = f"Handler '{fname}' missing on module '{modname}'"
        return None, error_document("Runtime.HandlerNotFound", message)
    return handler, None


def preloadable_modules(before: set[str], task_root: str, handler_module: str) -> list[str]:
    """Modules newly imported by init that live outside the task root (what a zygote can share)."""
    root = os.path.join(os.path.realpath(task_root), "")
    names = []
    for name, module in list(sys.modules.items()):
        if name in before or name == handler_module or module is None:
            continue
        location = getattr(module, "__file__", None)
        paths = [location] if location else list(getattr(module, "__path__", None) or ())
        if any(os.path.realpath(p).startswith(root) for p in paths):
            continue
        names.append(name)
    return names


#: What `json.loads` runs inside (the C scanner with its default settings).
_scan_once: Callable[[str, int], tuple[Any, int]] = vars(json.JSONDecoder())["scan_once"]


def parse_event(data: bytes) -> Any:
    """`json.loads(data)`, at about half its cost for the events the platform sends (UTF-8,
    no surrounding whitespace): one scan of the decoded text, without `json.loads`'s encoding
    detection and whitespace matching. Anything else, errors included, goes through
    `json.loads`, so results and error messages are exactly its own."""
    try:
        text = data.decode()
        if text and not text[0].isspace():
            value, end = _scan_once(text, 0)
            if end == len(text):
                return value
    except (UnicodeDecodeError, ValueError, StopIteration):
        pass
    return json.loads(data)


#: json.dumps's own parts, to tell whether a handler replaced any of them (`dump_result`).
_DUMPS = json.dumps
_DEFAULT_ENCODER = json._default_encoder  # type: ignore[attr-defined]
_DEFAULT_SETTINGS = dict(vars(_DEFAULT_ENCODER))
_ENCODE = json.JSONEncoder.encode
_ITERENCODE = json.JSONEncoder.iterencode
_MAKE_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_ENCODE_STRING = json.encoder.encode_basestring_ascii
_DUMPS_DEFAULTS = dict(json.dumps.__kwdefaults__ or {})
_SEPARATORS = (json.JSONEncoder.item_separator, json.JSONEncoder.key_separator)


class _NotNative(Exception):
    """A value only `JSONEncoder.default` (as the handler may have set it) can encode."""


def _not_native(value: Any) -> Any:
    raise _NotNative


def _json_untouched() -> bool:
    return (
        json.dumps is _DUMPS
        and json._default_encoder is _DEFAULT_ENCODER  # type: ignore[attr-defined]
        and json.JSONEncoder.encode is _ENCODE
        and json.JSONEncoder.iterencode is _ITERENCODE
        and getattr(json.encoder, "c_make_encoder", None) is _MAKE_ENCODER
        and json.encoder.encode_basestring_ascii is _ENCODE_STRING
        and vars(_DEFAULT_ENCODER) == _DEFAULT_SETTINGS
        and json.dumps.__kwdefaults__ == _DUMPS_DEFAULTS
        and (json.JSONEncoder.item_separator, json.JSONEncoder.key_separator) == _SEPARATORS
    )


def dump_result(value: Any) -> str:
    """`json.dumps(value)`, at about a third of its cost for a handler's usual result.

    json.dumps builds a C encoder on every call behind three Python calls; this calls that
    encoder directly with the same settings. Only while nothing of json.dumps was replaced:
    and since `JSONEncoder.default` (which handlers patch, for datetime or Decimal) is asked
    only about values JSON has no type for, the first such value hands the whole result to
    json.dumps itself. Text, errors (a cycle's ValueError, an unknown type's TypeError) and
    patches are then exactly json.dumps's."""
    if _MAKE_ENCODER is None or not _json_untouched():
        return json.dumps(value)
    item, key = _SEPARATORS
    encode = _MAKE_ENCODER({}, _not_native, _ENCODE_STRING, None, key, item, False, False, True)
    try:
        return "".join(encode(value, 0))
    except _NotNative:
        return json.dumps(value)


class Usage:
    """Peak RSS and the CPU time spent since the last reading, from one `getrusage`.

    The CPU figure covers the whole cycle (reading the INVOKE, the handler, sending the
    RESULT): the pool compares it with the handler's duration to tell a function that keeps
    a core busy from one that mostly waits (see `scaler.useful_instances`)."""

    __slots__ = ("_cpu_s",)

    def __init__(self) -> None:
        self._cpu_s = 0.0

    def take(self) -> tuple[float, int]:
        """(CPU ms since the previous call, peak RSS KiB)."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu_s = usage.ru_utime + usage.ru_stime
        spent_ms = (cpu_s - self._cpu_s) * 1000.0
        self._cpu_s = cpu_s
        return spent_ms, usage.ru_maxrss


class Runtime:
    """One instance's runtime loop; see the module docstring for the pipeline."""

    def __init__(self, sock: socket.socket, config: RuntimeConfig, capture: LogCapture) -> None:
        self.sock = sock
        self.config = config
        self.capture = capture
        self.usage = Usage()

    def init(self) -> Handler | None:
        """Import the handler and send READY or INIT_ERROR; None when init failed."""
        before = set(sys.modules)
        if self.config.task_root not in sys.path:
            sys.path.insert(0, self.config.task_root)
        started = time.perf_counter()
        handler, error = load_handler(self.config)
        init_ms = (time.perf_counter() - started) * 1000.0
        log = self.capture.take().decode()
        if handler is None:
            doc = {"error": error, "log": log, "duration_ms": init_ms}
            self.sock.sendall(frames.encode_json(frames.INIT_ERROR, doc))
            return None
        self.usage.take()  # init's CPU is the cold start's, not the first invocation's
        modname = self.config.handler.rpartition(".")[0].replace("/", ".")
        modules = preloadable_modules(before, self.config.task_root, modname)
        body = json.dumps({"modules": modules, "log": log}, separators=(",", ":")).encode()
        self.sock.sendall(frames.frame(frames.READY, frames.READY_HEAD.pack(init_ms) + body))
        return handler

    def invoke(self, handler: Handler, body: bytes) -> bool:
        """Run one invocation and send its RESULT; False when the process must exit (OOM)."""
        request_id, budget_ms, _extra, adapter, event_bytes = frames.decode_invoke(body)
        # The budget counts from now: the INVOKE may have waited behind the previous one.
        deadline_ms = int(time.time() * 1000) + budget_ms
        context = LambdaContext(self.config, request_id, deadline_ms)
        self.capture.begin(request_id, deadline_ms)
        started = time.perf_counter()
        status, data, healthy = self._call(handler, event_bytes, context, adapter)
        duration_ms = (time.perf_counter() - started) * 1000.0
        log = self.capture.take()
        cpu_ms, rss_kb = self.usage.take()
        self.sock.sendall(frames.encode_result(status, duration_ms, cpu_ms, rss_kb, log, data))
        return healthy

    def _call(
        self, handler: Handler, event_bytes: bytes, context: LambdaContext, adapter: str
    ) -> tuple[int, bytes, bool]:
        try:
            if adapter:
                event = adapters.load(adapter).event(event_bytes)
            else:
                event = parse_event(event_bytes) if event_bytes else {}
        except Exception as error:  # boundary: ValueError from JSON, anything from an adapter
            doc = error_document("Runtime.UnmarshalError", f"Unable to unmarshal input: {error}")
            return frames.RESULT_ERROR, _dump(doc), True
        try:
            result = handler(event, context)
            data = dump_result(result).encode()
            if len(data) > MAX_RESPONSE_BYTES:
                return frames.RESULT_ERROR, _dump(_response_too_large()), True
            if adapter:
                # Lambda's part is done (the result is JSON and within the limit): the rest
                # is the front door's mapping, which answers bad results itself.
                data = adapters.load(adapter).response(data)
            return frames.RESULT_OK, data, True
        except MemoryError:
            return frames.RESULT_ERROR, _dump(self._out_of_memory(context)), False
        except (TypeError, ValueError, OverflowError) as error:
            if "result" not in locals():
                return frames.RESULT_ERROR, _dump(_handler_error(error)), True
            doc = error_document("Runtime.MarshalError", f"Unable to marshal response: {error}")
            return frames.RESULT_ERROR, _dump(doc), True
        except Exception as error:  # boundary: the user's exception becomes the error document
            return frames.RESULT_ERROR, _dump(_handler_error(error)), True

    def _out_of_memory(self, context: LambdaContext) -> ErrorDoc:
        limit = self.config.memory_limit_in_mb
        message = (
            f"RequestId: {context.aws_request_id} Error: Runtime exited with error: "
            f"MemoryError (memory limit {limit} MB exceeded)"
        )
        return error_document("Runtime.OutOfMemory", message)


def _handler_error(error: BaseException) -> ErrorDoc:
    return error_document(type(error).__name__, str(error), format_stack(error, 1))


def _response_too_large() -> ErrorDoc:
    """Lambda's error for a response over MAX_RESPONSE_BYTES (the instance stays usable)."""
    message = (
        f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
    )
    return error_document("Function.ResponseSizeTooLarge", message)


def _dump(doc: ErrorDoc) -> bytes:
    return json.dumps(doc).encode()


def serve(sock: socket.socket, function_arn: str = "", capture: LogCapture | None = None) -> int:
    """Run the runtime on a connected socket until EOF; returns the process exit code.

    Reads its configuration from the (already prepared) Lambda environment variables.
    `capture`: installed already (a zygote's spare does that while it waits); else now.
    """
    if capture is None:
        capture = install_log_capture(sock)
    else:
        capture.attach(sock)
    runtime = Runtime(sock, RuntimeConfig(os.environ, function_arn), capture)
    handler = runtime.init()
    if handler is None:
        return 1
    reader = frames.FrameReader(sock)
    while True:
        try:
            kind, body = reader.read()
        except (EOFError, ConnectionError):
            return 0
        if kind == frames.INVOKE and not runtime.invoke(handler, body):
            return 1


def main(argv: list[str]) -> int:
    """`python -m unkai.runtime.bootstrap --fd N [--function-arn ARN]`: standalone mode.

    The caller prepares the environment (environment.py) and the cwd; fd N is a connected
    stream socket speaking frames.
    """
    options = dict(zip(argv[0::2], argv[1::2], strict=False))
    if "--fd" not in options:
        sys.stderr.write("usage: python -m unkai.runtime.bootstrap --fd N [--function-arn ARN]\n")
        return 2
    sock = socket.socket(fileno=int(options["--fd"]))
    code = serve(sock, options.get("--function-arn", ""))
    sys.stdout = sys.__stdout__
    sys.stderr = sys.__stderr__
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
