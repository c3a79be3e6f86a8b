"""The platform lines Lambda writes around every invocation, byte for byte.

  START RequestId: <id> Version: <version>
  <function output>
  [ERROR] <type>: <message>            handler error, as the Python runtime prints it
  <ts> <id> Task timed out after N.NN seconds       timeout
  END RequestId: <id>
  REPORT RequestId: <id>\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t
         Max Memory Used: 35 MB\t[Init Duration: 12.34 ms\t]

REPORT fields are tab separated and Lambda ends every field with the tab, so the line ends with
one (https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html shows the fields; the
trailing tab is visible in the raw CloudWatch events). Init Duration appears on cold starts
only. The `[ERROR]` block follows awslambdaric's `log_error`: the type, the message, then
"Traceback (most recent call last):" and the stack trace lines; the runtime separates them
with "\r" to keep one CloudWatch event, our record keeps them as "\n" lines of one record.

Nobody formats an invocation's record on the hot path: the platform keeps its parts
(`InvocationFacts`), the log store stores them, and the text is made when a query reads the
record (`InvocationFacts.text`). Stdlib only: the log store renders with it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

from unkai.invoke.billing import billed_duration_ms

if TYPE_CHECKING:
    from unkai.invoke.models import InvocationResult

#: `error_type` of an invocation stopped at its deadline (Lambda's invoke response uses it).
TIMEOUT_ERROR_TYPE = "Sandbox.Timedout"
#: Errors raised by the platform around the process, not by the handler: Lambda prints
#: "RequestId: <id> Error: <message>" and the type instead of the runtime's [ERROR] block.
PLATFORM_ERROR_TYPES = frozenset({"Runtime.ExitError", "Runtime.OutOfMemory"})


class InvocationFacts(NamedTuple):
    """An invocation's log record in parts; `text` is the record, START to REPORT."""

    #: None: START was recorded ahead of output the invocation streamed.
    version: str | None
    #: What it printed and logged (not yet recorded, for a streamed invocation).
    output: str
    #: The error block (`error_text`), None for a success.
    error: str | None
    duration_ms: float
    memory_size_mb: int
    max_memory_used_mb: int
    #: Only on the first invocation of an instance.
    init_duration_ms: float | None

    def text(self, request_id: str) -> str:
        report = report_text(
            request_id,
            self.duration_ms,
            self.memory_size_mb,
            self.max_memory_used_mb,
            self.init_duration_ms,
        )
        return invocation_text(request_id, self.version, self.output, self.error, report)


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(result: InvocationResult) -> str:
    return report_text(
        result.request_id,
        result.duration_ms,
        result.memory_size_mb,
        result.max_memory_used_mb,
        result.init_duration_ms,
    )


def report_text(
    request_id: str,
    duration_ms: float,
    memory_size_mb: int | str,
    max_memory_used_mb: int,
    init_duration_ms: float | None,
) -> str:
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {billed_duration_ms(duration_ms)} ms\t"
        f"Memory Size: {memory_size_mb} MB\t"
        f"Max Memory Used: {max_memory_used_mb} MB\t"
    )
    if init_duration_ms is not None:
        line += f"Init Duration: {init_duration_ms:.2f} ms\t"
    return line


def invocation_text(
    request_id: str, version: str | None, output: str, error: str | None, report: str
) -> str:
    """The record of a whole invocation: START, its output (without the last newline), the
    error block, END and REPORT. No START with `version` None (recorded ahead of the output
    a long invocation streamed)."""
    output = output.removesuffix("\n")
    if version is not None and error is None:
        # Most invocations, formatted in one step: an instance makes a record per call.
        if output:
            output += "\n"
        return f"{start_line(request_id, version)}\n{output}{end_line(request_id)}\n{report}"
    parts = [] if version is None else [start_line(request_id, version)]
    if output:
        parts.append(output)
    if error is not None:
        parts.append(error)
    parts.append(end_line(request_id))
    parts.append(report)
    return "\n".join(parts)


def error_text(result: InvocationResult, now_ms: int) -> str | None:
    """The error block Lambda logs before END, or None for a successful invocation."""
    error = result.error
    if error is None:
        return None
    if error.error_type == TIMEOUT_ERROR_TYPE:
        return timeout_line(result.request_id, result.duration_ms, now_ms)
    return error_block(result.request_id, error.error_type, error.error_message, error.stack_trace)


def error_block(request_id: str, error_type: str, message: str, stack_trace: list[str]) -> str:
    """The block of a handler's or the runtime's error (a timeout has `timeout_line`)."""
    if error_type in PLATFORM_ERROR_TYPES:
        return platform_error_text(request_id, error_type, message)
    return runtime_error_text(error_type, message, stack_trace)


def timeout_line(request_id: str, duration_ms: float, now_ms: int) -> str:
    """`2024-05-01T12:00:03.004Z <id> Task timed out after 3.00 seconds`."""
    seconds = duration_ms / 1000
    return f"{iso_timestamp(now_ms)} {request_id} Task timed out after {seconds:.2f} seconds"


def platform_error_text(request_id: str, error_type: str, message: str) -> str:
    """`RequestId: <id> Error: Runtime exited with error: signal: killed` + the type."""
    if not message.startswith("RequestId: "):
        message = f"RequestId: {request_id} Error: {message}"
    return f"{message}\n{error_type}"


def runtime_error_text(error_type: str, message: str, stack_trace: list[str]) -> str:
    """awslambdaric's log_error: `[ERROR] Type: message`, then the traceback lines."""
    head = "[ERROR]"
    if error_type:
        head += " " + error_type
    if message:
        head += (":" if error_type else "") + " " + message
    lines = [head]
    if stack_trace:
        lines.append("Traceback (most recent call last):")
        for element in stack_trace:
            lines.extend(element.splitlines() or [""])
    return "\n".join(lines)


def iso_timestamp(epoch_ms: int) -> str:
    """UTC with milliseconds and a Z, as Lambda stamps its lines: 2024-05-01T12:00:03.004Z."""
    seconds, ms = divmod(epoch_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"
