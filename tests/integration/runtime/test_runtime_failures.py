"""Timeouts, crashes and memory kills: an error result, and a fresh instance next time."""

from __future__ import annotations

import json
from pathlib import Path

from runtime_harness import LogCollector, call, make_spec, run_supervised, write_handler

from unkai.runtime.supervisor import Supervisor

CRASHY = """
import os, signal, time
def handler(event, context):
    action = event.get("action")
    if action == "exit":
        os._exit(3)
    if action == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if action == "sleep":
        time.sleep(30)
    if action == "allocate":
        hog = b"x" * (300 * 1024 * 1024)
        time.sleep(5)
        return len(hog)
    if action == "huge":
        hog = bytearray(64 * 1024 * 1024 * 1024)
        return len(hog)
    return os.getpid()
"""


def _event(action: str) -> bytes:
    return json.dumps({"action": action}).encode()


def test_timeout_kills_and_next_call_is_fresh(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, CRASHY), timeout_s=1)

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        before = json.loads((await call(pool)).payload or b"")
        # When the handler runs past its timeout
        result = await call(pool, _event("sleep"), timeout_s=1)
        # Then it is killed and reported as Lambda does
        assert result.error is not None
        assert result.error.error_type == "Sandbox.Timedout"
        assert result.error.error_message == (
            f"RequestId: {result.request_id} Error: Task timed out after 1.00 seconds"
        )
        assert 900 <= result.duration_ms < 3000
        # And the next call runs in a new process
        after = json.loads((await call(pool)).payload or b"")
        assert after != before

    run_supervised(body)


def test_exit_and_segfault_are_exit_errors(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, CRASHY))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        first_pid = json.loads((await call(pool)).payload or b"")
        exited = await call(pool, _event("exit"))
        segv = await call(pool, _event("segv"))
        replacement_pid = json.loads((await call(pool)).payload or b"")
        assert exited.error is not None and segv.error is not None
        assert exited.error.error_type == "Runtime.ExitError"
        assert exited.error.error_message == (
            f"RequestId: {exited.request_id} Error: Runtime exited with error: exit status 3"
        )
        assert segv.error.error_type == "Runtime.ExitError"
        assert segv.error.error_message.endswith(
            "Error: Runtime exited with error: signal: segmentation fault"
        )
        assert replacement_pid != first_pid

    run_supervised(body)


def test_memory_over_the_limit_is_killed(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, CRASHY), memory_size_mb=128)

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        # When a 128 MB function touches 300 MB
        result = await call(pool, _event("allocate"))
        # Then it is killed for memory, naming the limit
        assert result.error is not None
        assert result.error.error_type == "Runtime.OutOfMemory"
        assert result.error.error_message == (
            f"RequestId: {result.request_id} Error: Runtime exited with error: signal: killed "
            "(memory limit 128 MB exceeded)"
        )
        assert result.max_memory_used_mb >= 128
        # And one giant allocation hits the address-space backstop, also OutOfMemory
        huge = await call(pool, _event("huge"))
        assert huge.error is not None and huge.error.error_type == "Runtime.OutOfMemory"
        assert (await call(pool)).ok

    run_supervised(body)
