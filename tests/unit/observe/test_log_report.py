"""The START/END/REPORT lines and error blocks, byte for byte as Lambda writes them."""

from __future__ import annotations

from unkai.invoke.models import FunctionError, InvocationResult
from unkai.observe.report import (
    TIMEOUT_ERROR_TYPE,
    end_line,
    error_text,
    iso_timestamp,
    report_line,
    start_line,
)

RID = "8f5e6c2a-1b2c-4d5e-8f90-123456789abc"


def result(**changes: object) -> InvocationResult:
    base = InvocationResult(
        request_id=RID,
        payload=b"{}",
        error=None,
        duration_ms=1.234,
        max_memory_used_mb=35,
        memory_size_mb=128,
    )
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def test_start_and_end_lines() -> None:
    assert start_line(RID, "$LATEST") == f"START RequestId: {RID} Version: $LATEST"
    assert start_line(RID, "3") == f"START RequestId: {RID} Version: 3"
    assert end_line(RID) == f"END RequestId: {RID}"


def test_warm_report_line_is_tab_separated_with_a_trailing_tab() -> None:
    assert report_line(result()) == (
        f"REPORT RequestId: {RID}\tDuration: 1.23 ms\tBilled Duration: 2 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 35 MB\t"
    )


def test_cold_report_line_ends_with_init_duration() -> None:
    line = report_line(result(duration_ms=1000.0, init_duration_ms=12.345))
    assert line.endswith(
        "\tBilled Duration: 1000 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 35 MB\tInit Duration: 12.35 ms\t"
    )


def test_successful_invocation_has_no_error_text() -> None:
    assert error_text(result(), now_ms=0) is None


def test_handler_error_is_the_python_runtime_error_block() -> None:
    error = FunctionError(
        "ValueError",
        "boom",
        ['  File "/var/task/app.py", line 3, in handler\n    raise ValueError("boom")\n'],
    )
    assert error_text(result(error=error), now_ms=0) == (
        "[ERROR] ValueError: boom\n"
        "Traceback (most recent call last):\n"
        '  File "/var/task/app.py", line 3, in handler\n'
        '    raise ValueError("boom")'
    )


def test_error_without_message_or_trace() -> None:
    assert error_text(result(error=FunctionError("KeyError", "")), now_ms=0) == "[ERROR] KeyError"


def test_timeout_is_lambdas_timestamped_line() -> None:
    error = FunctionError(TIMEOUT_ERROR_TYPE, "Task timed out after 3.00 seconds")
    text = error_text(result(error=error, duration_ms=3001.7), now_ms=1_714_564_803_004)
    assert text == f"2024-05-01T12:00:03.004Z {RID} Task timed out after 3.00 seconds"


def test_process_exit_is_lambdas_runtime_exit_error() -> None:
    error = FunctionError("Runtime.ExitError", "Runtime exited with error: signal: killed")
    assert error_text(result(error=error), now_ms=0) == (
        f"RequestId: {RID} Error: Runtime exited with error: signal: killed\nRuntime.ExitError"
    )
    prefixed = FunctionError("Runtime.ExitError", f"RequestId: {RID} Error: exit status 1")
    assert error_text(result(error=prefixed), now_ms=0) == (
        f"RequestId: {RID} Error: exit status 1\nRuntime.ExitError"
    )


def test_iso_timestamp_pads_milliseconds() -> None:
    assert iso_timestamp(5) == "1970-01-01T00:00:00.005Z"
