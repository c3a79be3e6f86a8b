"""What an instance sends back besides a normal result: output printed before it dies, an
oversized response, and a bad write to stdout. Real instances, forked by a real Supervisor."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from runtime_harness import LogCollector, call, make_spec, run_supervised, wait_until, write_handler

from unkai.runtime.supervisor import Supervisor

#: Lambda's error for a synchronous response over 6291556 bytes (6 MB + 100 bytes).
TOO_LARGE_MESSAGE = "Response payload size exceeded maximum allowed payload size (6291556 bytes)."

HANDLER = """
import os, sys, time
from pathlib import Path

def wait_for(path):
    deadline = time.monotonic() + 20
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.01)

def handler(event, context):
    action = event.get("action")
    if action == "sleep":
        print("about to sleep")
        time.sleep(30)
    if action == "exit":
        print("about to exit")
        wait_for(event["go"])
        os._exit(3)
    if action == "allocate":
        print("about to allocate")
        wait_for(event["go"])
        hog = b"x" * (300 * 1024 * 1024)
        time.sleep(5)
        return len(hog)
    if action == "respond":
        return "x" * event["chars"]
    if action == "write_bytes":
        try:
            sys.stdout.write(b"x")
        except TypeError as error:
            return f"{type(error).__name__}: {error}"
        return "no error"
    return os.getpid()
"""


def _event(action: str, **fields: Any) -> bytes:
    return json.dumps({"action": action, **fields}).encode()


def _logged(logs: LogCollector, request_id: str, line: str) -> bool:
    """True once `line` was logged as part of that invocation's output."""
    return any(r["request_id"] == request_id and line in r["message"] for r in list(logs.records))


def test_output_before_a_timeout_is_in_the_invocations_log(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, HANDLER), timeout_s=2)

    async def body(supervisor: Supervisor, logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        # Given a handler that prints a line and then sleeps past its timeout
        result = await call(pool, _event("sleep"), timeout_s=2)
        # Then the invocation times out
        assert result.error is not None and result.error.error_type == "Sandbox.Timedout"
        # And the printed line is in that invocation's log, not lost with the process
        assert await wait_until(lambda: _logged(logs, result.request_id, "about to sleep"))

    run_supervised(body)


def test_output_before_a_crash_reaches_the_platform_while_it_runs(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, HANDLER))
    go = tmp_path / "go-exit"

    async def body(supervisor: Supervisor, logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        task = asyncio.create_task(call(pool, _event("exit", go=str(go))))
        # Given a handler that printed a line and now blocks, writing nothing more
        arrived = await wait_until(lambda: "about to exit" in logs.text, timeout_s=10)
        go.touch()
        # When it exits without returning
        result = await task
        # Then the line was sent while it ran, and is in the crashed invocation's log
        assert arrived
        assert result.error is not None and result.error.error_type == "Runtime.ExitError"
        assert _logged(logs, result.request_id, "about to exit")

    run_supervised(body)


def test_output_before_a_memory_kill_reaches_the_platform(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, HANDLER), memory_size_mb=128)
    go = tmp_path / "go-allocate"

    async def body(supervisor: Supervisor, logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        task = asyncio.create_task(call(pool, _event("allocate", go=str(go))))
        # Given a handler that printed a line and blocks before touching 300 MB
        arrived = await wait_until(lambda: "about to allocate" in logs.text, timeout_s=10)
        go.touch()
        # When the memory watchdog kills it
        result = await task
        # Then the line had already reached the platform, and belongs to that invocation
        assert arrived
        assert result.error is not None and result.error.error_type == "Runtime.OutOfMemory"
        assert _logged(logs, result.request_id, "about to allocate")

    run_supervised(body)


def test_a_response_over_6_mb_fails_as_on_lambda_and_keeps_the_instance(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, HANDLER))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        pid = json.loads((await call(pool)).payload or b"")
        # When the handler returns 7 MB
        too_large = await call(pool, _event("respond", chars=7 << 20))
        # Then the invocation fails with Lambda's error document
        assert too_large.error is not None
        assert too_large.error.error_type == "Function.ResponseSizeTooLarge"
        assert too_large.error.error_message == TOO_LARGE_MESSAGE
        # And the same warm instance serves the next call
        assert json.loads((await call(pool)).payload or b"") == pid
        # And a response under the limit still succeeds
        fits = await call(pool, _event("respond", chars=6_000_000))
        assert fits.error is None
        assert json.loads(fits.payload or b"") == "x" * 6_000_000

    run_supervised(body)


def test_writing_bytes_to_stdout_raises_in_the_handler(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, HANDLER))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        pid = json.loads((await call(pool)).payload or b"")
        # When the handler writes bytes to sys.stdout
        result = await call(pool, _event("write_bytes"))
        # Then it gets io.TextIOWrapper's TypeError, which it can catch
        assert result.error is None
        assert json.loads(result.payload or b"") == (
            "TypeError: write() argument must be str, not bytes"
        )
        # And the instance survives
        assert json.loads((await call(pool)).payload or b"") == pid

    run_supervised(body)


BELOW_STDOUT = """
import multiprocessing, os, subprocess, sys, time

def child():
    print("from a forked child")

def handler(event, context):
    subprocess.run(["echo", "from a subprocess"], check=True)
    os.write(2, b"written to fd 2\\n")
    worker = multiprocessing.get_context("fork").Process(target=child)
    worker.start()
    worker.join(10)
    time.sleep(0.3)  # let the output pipe's reader catch up before the result
    return worker.exitcode
"""


def test_output_below_sys_stdout_is_the_functions_log(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, BELOW_STDOUT))

    async def body(supervisor: Supervisor, logs: LogCollector) -> None:
        # When a handler writes to fd 1 and 2 directly, through a subprocess and a forked child
        result = await call(supervisor.pool_for(spec), timeout_s=20)
        assert result.error is None, result.error
        assert json.loads(result.payload or b"") == 0
        # Then all of it is the invocation's log, not the platform's terminal
        for line in ("from a subprocess", "written to fd 2", "from a forked child"):
            assert line in result.log_text or _logged(logs, result.request_id, line), (
                line,
                result.log_text,
            )

    run_supervised(body)


FLOOD = """
import os, time

def handler(event, context):
    for _ in range(16):  # 1 MiB straight to fd 1, with no newline at all
        os.write(1, b"x" * 65536)
    time.sleep(0.5)  # let the platform read the pipe while the invocation runs
    return "flooded"
"""


def test_output_to_fd_1_is_capped_as_print_output_is(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, FLOOD))

    async def body(supervisor: Supervisor, logs: LogCollector) -> None:
        # When a handler writes 1 MiB to fd 1 without a newline
        result = await call(supervisor.pool_for(spec), timeout_s=20)
        assert result.error is None, result.error
        # Then its log keeps the first 256 KiB and says it was truncated
        logged = "".join(
            r["message"] for r in logs.records if r.get("request_id") == result.request_id
        )
        assert logged.count("x") == 256 * 1024
        assert "log truncated" in logged

    run_supervised(body)
