"""Timeouts, crashes and memory kills: an error result, and a fresh instance next time."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from pathlib import Path

import pytest
from runtime_harness import (
    LogCollector,
    call,
    invocation,
    make_spec,
    process_gone,
    run_supervised,
    wait_until,
    write_handler,
)

from unkai.runtime.instance import InvocationResult
from unkai.runtime.instance_state import InstanceState
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
    if action == "allocate_and_wait":
        hog = b"x" * (300 * 1024 * 1024)
        time.sleep(60)
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


def test_a_warm_instance_times_out_at_each_invocations_own_deadline(tmp_path: Path) -> None:
    """One deadline timer per instance, re-armed lazily: a later invocation is killed at its
    own deadline, neither at an earlier invocation's nor at a longer one's."""
    spec = make_spec(write_handler(tmp_path, CRASHY), timeout_s=10)

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        # Given a warm instance whose first call armed a deadline 1 s out
        first = json.loads((await call(pool, timeout_s=1)).payload or b"")
        await asyncio.sleep(0.6)
        # When the next call on it runs past its own 1 s deadline
        late = await call(pool, _event("sleep"), timeout_s=1)
        # Then it ran its full second (the first call's deadline came 0.4 s into it)
        assert late.error is not None and late.error.error_type == "Sandbox.Timedout"
        assert late.duration_ms >= 950
        # And after a call with a long deadline, a shorter one still ends on time
        assert json.loads((await call(pool, timeout_s=30)).payload or b"") != first
        started = time.monotonic()
        short = await call(pool, _event("sleep"), timeout_s=0.5)
        assert short.error is not None and short.error.error_type == "Sandbox.Timedout"
        assert time.monotonic() - started < 5

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


def test_the_memory_watchdog_wakes_for_a_warm_instance_after_an_idle_spell(tmp_path: Path) -> None:
    """With nothing busy the watchdog sleeps; lending an idle instance wakes it. Only the
    watchdog can end this invocation in time: the handler would return after 60 s."""
    spec = make_spec(write_handler(tmp_path, CRASHY), memory_size_mb=128)

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        # Given a warm instance, and a node that has been idle for a while
        assert (await call(pool)).ok
        await asyncio.sleep(0.3)
        # When the instance is lent again and goes over its memory size
        result = await asyncio.wait_for(call(pool, _event("allocate_and_wait"), 90), 30)
        # Then it is killed for memory while it runs
        assert result.error is not None
        assert result.error.error_type == "Runtime.OutOfMemory"
        assert result.error.error_message.endswith("(memory limit 128 MB exceeded)")

    run_supervised(body)


FORGER = """
import os, socket, stat, struct, time
from unkai.runtime import frames

def handler(event, context):
    if event.get("action") != "forge":
        return os.getpid()
    # Write a RESULT frame of our own, with a body that is no error document, on every unix
    # socket this process holds (the platform's is one of them), then keep quiet
    body = frames.RESULT_HEAD.pack(frames.RESULT_ERROR, 1.0, 1.0, 1024, 0)
    body += b"not json"
    for fd in range(3, 64):
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            probe = socket.socket(fileno=os.dup(fd))
            if probe.family == socket.AF_UNIX:
                probe.sendall(frames.frame(frames.RESULT, body))
            probe.detach()
        except OSError:
            pass
    time.sleep(30)
"""


def test_a_malformed_result_fails_the_call_and_frees_the_instance(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, FORGER), timeout_s=20)

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        first_pid = json.loads((await call(pool)).payload or b"")
        # When the handler writes a RESULT frame the platform cannot read
        forged = await call(pool, _event("forge"), timeout_s=20)
        # Then the caller gets an exit error at once (not after the 20 s timeout, not never)
        assert forged.error is not None, forged
        assert forged.error.error_type == "Runtime.ExitError"
        assert "malformed result" in forged.error.error_message
        # And the instance is gone and its slot free: the next call runs in a new process
        assert await wait_gone(first_pid)
        assert json.loads((await call(pool)).payload or b"") != first_pid
        assert pool.stats()["total"] == 1

    run_supervised(body)


async def wait_gone(pid: int) -> bool:
    return await wait_until(lambda: process_gone(pid), timeout_s=10)


SPAWNER = """
import os, subprocess
def handler(event, context):
    child = subprocess.Popen(["sleep", "97"], start_new_session=False)
    return {"pid": os.getpid(), "child": child.pid}
"""


def test_stopping_an_idle_instance_ends_the_processes_it_started(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, SPAWNER))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        # Given a handler that left a child process running and returned
        started = json.loads((await call(pool)).payload or b"")
        assert not process_gone(started["child"])
        # When its idle instance is stopped (drain, keep-alive, eviction)
        assert pool.stop_idle() == 1
        # Then the child goes with it, as when Lambda discards a sandbox
        assert await wait_gone(started["child"])
        assert await wait_gone(started["pid"])

    run_supervised(body)


def test_a_lost_base_zygote_is_started_again(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, CRASHY))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        first_pid = json.loads((await call(pool)).payload or b"")
        [base] = [z["pid"] for z in supervisor.zygotes() if z["version_key"] is None]
        # When the base zygote dies (its instances go with it: they die with their parent)
        os.kill(base, signal.SIGKILL)
        assert await wait_gone(base) and await wait_gone(first_pid)
        assert await wait_until(
            lambda: all(i.state is not InstanceState.READY for i in pool.idle), timeout_s=10
        )
        # Then the next call still gets an instance, forked from a new base zygote
        result = await call(pool)
        assert result.error is None, result.error
        assert json.loads(result.payload or b"") != first_pid
        [new_base] = [z["pid"] for z in supervisor.zygotes() if z["version_key"] is None]
        assert new_base != base and not process_gone(new_base)

    run_supervised(body)


def test_shutting_down_mid_invocation_fails_the_call_without_a_loop_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = make_spec(write_handler(tmp_path, CRASHY))
    results: list[InvocationResult] = []

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        # Given an invocation running when the platform shuts down
        request = invocation(_event("sleep"))
        instance = await pool.wait_for_instance(request.deadline)
        instance.begin(request, results.append)
        await asyncio.sleep(0.3)

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        run_supervised(body)
    # Then its caller hears that it failed, and the loop logged no callback's exception
    [result] = results
    assert result.error is not None
    assert result.error.error_type == "Runtime.ExitError"
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
