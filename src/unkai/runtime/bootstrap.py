"""The in-instance runtime: import the handler, then serve invocations over one socket.

Runs inside every function instance, forked from a zygote (`zygote.py`) or standalone as
`python -m unkai.runtime.bootstrap --fd N` (used by `unkai invoke local` and as the benchmark
baseline). It imports only the stdlib and our frame codec, so a fresh interpreter pays little
and a zygote pays it once for all its children.

Pipeline, mirroring Lambda's Python runtime (awslambdaric `bootstrap.py`):

1. Replace stdout/stderr with `LogCapture` and install a root logging handler with Lambda's
   format, so everything the function prints lands in the per-invocation log.
2. Import the handler (`_HANDLER`, from `LAMBDA_TASK_ROOT`), timed as Init Duration. Send READY
   with the non-task-root modules that import pulled in (the platform preloads them into a
   per-version zygote), or INIT_ERROR with Lambda's error document and exit.
3. Loop: read INVOKE, call `handler(event, context)`, send one RESULT with the payload or the
   error document, the duration, the peak RSS and the log text. Module state persists between
   invocations (warm reuse). EOF on the socket means the platform is done with us: exit 0.
"""

from __future__ import annotations

import io
import json
import logging
import os
import resource
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from unkai.runtime import frames

#: A single invocation's log is cut here, with a marker (the platform stores it as one record).
LOG_CAP_CHARS = 256 * 1024
#: A long invocation streams its buffered log at most this often (checked on each write).
LOG_STREAM_INTERVAL_S = 0.2
TRUNCATED_MARKER = "\n[unkai] log truncated: this invocation wrote more than 256 KiB\n"

#: Lambda's Python log format (awslambdaric `bootstrap.py`, `LambdaLoggerHandler`).
LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"
LOG_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"

Handler = Callable[[Any, Any], Any]
ErrorDoc = dict[str, Any]


class LogCapture(io.TextIOBase):
    """A stdout/stderr replacement that buffers one invocation's output.

    While an invocation runs, a write that finds the buffer older than LOG_STREAM_INTERVAL_S
    sends it as a LOG frame, so `unkai logs -t` sees long handlers' output as it happens. Writes
    may come from the handler's own threads, hence the lock around buffer and socket.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.request_id = ""
        self._sock = sock
        self._parts: list[str] = []
        self._chars = 0
        self._truncated = False
        self._streaming = False
        self._last_flush = 0.0
        self._lock = _allocate_lock()

    #: What `print` and `logging` see; io.TextIOBase reports None otherwise.
    encoding = "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        with self._lock:
            size = len(text)
            if self._chars + size > LOG_CAP_CHARS:
                text = text[: max(0, LOG_CAP_CHARS - self._chars)]
                self._truncated = True
            if text:
                self._parts.append(text)
                self._chars += len(text)
            if self._streaming and time.monotonic() - self._last_flush >= LOG_STREAM_INTERVAL_S:
                self._stream()
            return size

    def begin(self, request_id: str) -> None:
        """Start an invocation's log; output written between invocations joins it."""
        self.request_id = request_id
        self._streaming = True
        self._last_flush = time.monotonic()

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

    def _stream(self) -> None:
        self._last_flush = time.monotonic()
        if self._parts:
            data = "".join(self._parts).encode("utf-8", "backslashreplace")
            self._parts.clear()
            self._sock.sendall(frames.frame(frames.LOG, data))


def _allocate_lock() -> Any:
    import _thread

    return _thread.allocate_lock()


class _RequestIdFilter(logging.Filter):
    def __init__(self, capture: LogCapture) -> None:
        super().__init__()
        self._capture = capture

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self._capture.request_id
        return True


def install_log_capture(sock: socket.socket) -> LogCapture:
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


def peak_rss_kb() -> int:
    """Peak resident set of this process (Lambda's Max Memory Used), in KiB; one syscall."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class Runtime:
    """One instance's runtime loop; see the module docstring for the pipeline."""

    def __init__(self, sock: socket.socket, config: RuntimeConfig, capture: LogCapture) -> None:
        self.sock = sock
        self.config = config
        self.capture = capture

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
        modname = self.config.handler.rpartition(".")[0].replace("/", ".")
        modules = preloadable_modules(before, self.config.task_root, modname)
        body = json.dumps({"modules": modules, "log": log}, separators=(",", ":")).encode()
        self.sock.sendall(frames.frame(frames.READY, frames.READY_HEAD.pack(init_ms) + body))
        return handler

    def invoke(self, handler: Handler, body: bytes) -> bool:
        """Run one invocation and send its RESULT; False when the process must exit (OOM)."""
        request_id, deadline_ms, _extra, event_bytes = frames.decode_invoke(body)
        context = LambdaContext(self.config, request_id, deadline_ms)
        self.capture.begin(request_id)
        started = time.perf_counter()
        status, data, healthy = self._call(handler, event_bytes, context)
        duration_ms = (time.perf_counter() - started) * 1000.0
        log = self.capture.take()
        self.sock.sendall(frames.encode_result(status, duration_ms, peak_rss_kb(), log, data))
        return healthy

    def _call(
        self, handler: Handler, event_bytes: bytes, context: LambdaContext
    ) -> tuple[int, bytes, bool]:
        try:
            event = json.loads(event_bytes) if event_bytes else {}
        except ValueError as error:
            doc = error_document("Runtime.UnmarshalError", f"Unable to unmarshal input: {error}")
            return frames.RESULT_ERROR, _dump(doc), True
        try:
            result = handler(event, context)
            return frames.RESULT_OK, json.dumps(result).encode(), True
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


def _dump(doc: ErrorDoc) -> bytes:
    return json.dumps(doc).encode()


def serve(sock: socket.socket, function_arn: str = "") -> int:
    """Run the runtime on a connected socket until EOF; returns the process exit code.

    Reads its configuration from the (already prepared) Lambda environment variables.
    """
    capture = install_log_capture(sock)
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
