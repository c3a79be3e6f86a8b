"""Invocations queued on a busy instance (Instance) and the pool's queueing of short functions
(Pool): deadlines count from the start, unstarted calls go back, stalled instances are
passed over."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from runtime_harness import LogCollector, call, invocation, make_spec, run_supervised, wait_until

from unkai.invoke.models import InvocationResult
from unkai.runtime import scaler
from unkai.runtime.pool import Pool
from unkai.runtime.supervisor import Supervisor

HANDLER = """
import os, pathlib, threading, time
def handler(event, context):
    if event.get("exit_after_s"):
        threading.Timer(event["exit_after_s"], os._exit, (3,)).start()
    remaining = context.get_remaining_time_in_millis()
    if event.get("mark"):
        pathlib.Path(event["mark"]).write_text("ran")
    if event.get("sleep_s"):
        time.sleep(event["sleep_s"])
    if event.get("exit"):
        os._exit(3)
    if event.get("memory_error"):
        raise MemoryError()
    return {"pid": os.getpid(), "remaining": remaining}
"""


def _event(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def _pid(result: InvocationResult) -> int:
    assert result.ok, result.error
    assert result.payload is not None
    return int(json.loads(result.payload)["pid"])


async def _two_on_one_instance(
    pool: Pool, first: bytes, then: list[bytes], timeout_s: float
) -> list[InvocationResult]:
    """Run `first` on a warm instance and write `then` to it while `first` runs."""
    async with pool.acquire(time.monotonic() + timeout_s) as instance:
        assert (await instance.invoke(invocation(timeout_s=timeout_s))).ok  # warm
        calls = [first, *then]
        return list(
            await asyncio.gather(
                *(instance.invoke(invocation(event, timeout_s)) for event in calls)
            )
        )


def test_a_queued_invocation_s_timeout_counts_from_its_start(tmp_path: Path) -> None:
    spec = make_spec(write_handler_file(tmp_path), timeout_s=1)

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        # Given a call queued behind one that runs 0.6 s, itself running 0.5 s (1.1 s in all,
        # within the 1 s timeout of each)
        first, queued = await _two_on_one_instance(
            pool, _event(sleep_s=0.6), [_event(sleep_s=0.5)], timeout_s=1
        )
        # Then both succeed, on one instance, and the queued one had its whole second
        assert _pid(first) == _pid(queued)
        assert queued.payload is not None
        assert json.loads(queued.payload)["remaining"] > 900

    run_supervised(body)


def test_a_crash_hands_the_unstarted_invocations_back(tmp_path: Path) -> None:
    spec = make_spec(write_handler_file(tmp_path))
    marks = [tmp_path / "b.ran", tmp_path / "c.ran"]

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        # Given two calls queued behind one whose process exits
        crashed, *queued = await _two_on_one_instance(
            pool,
            _event(sleep_s=0.2, exit=True),
            [_event(mark=str(mark)) for mark in marks],
            timeout_s=10,
        )
        # Then the crash is the running call's, and the queued ones come back unstarted
        assert crashed.error is not None
        assert crashed.error.error_type == "Runtime.ExitError"
        assert crashed.started
        for result in queued:
            assert not result.started
            assert result.error is not None
            assert result.error.error_type == "Runtime.NotStarted"
        assert not any(mark.exists() for mark in marks)

    run_supervised(body)


@pytest.mark.parametrize(
    ("first", "timeout_s", "error_type"),
    [
        # The platform kills the instance at the deadline
        (_event(sleep_s=5), 1, "Sandbox.Timedout"),
        # The runtime answers, then exits without reading the next INVOKE
        (_event(sleep_s=0.1, memory_error=True), 10, "Runtime.OutOfMemory"),
    ],
    ids=["timeout", "memory-error"],
)
def test_a_failure_hands_the_unstarted_invocation_back(
    tmp_path: Path, first: bytes, timeout_s: int, error_type: str
) -> None:
    spec = make_spec(write_handler_file(tmp_path), timeout_s=timeout_s)
    mark = tmp_path / "queued.ran"

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        failed, queued = await _two_on_one_instance(
            pool, first, [_event(mark=str(mark))], timeout_s=timeout_s
        )
        assert failed.error is not None
        assert failed.error.error_type == error_type
        assert not queued.started
        assert not mark.exists()

    run_supervised(body)


def test_a_result_read_after_a_failed_write_still_counts(tmp_path: Path) -> None:
    spec = make_spec(write_handler_file(tmp_path))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        async with pool.acquire(time.monotonic() + 10) as instance:
            assert (await instance.invoke(invocation())).ok  # warm
            # Given an invocation that answers, after which its process exits, while the
            # platform's loop is too busy to read the answer
            first = asyncio.ensure_future(instance.invoke(invocation(_event(exit_after_s=0.05))))
            await asyncio.sleep(0)
            time.sleep(0.5)  # blocks the loop: the RESULT waits unread, the process exits
            # When another invocation is written to it (the write fails: EPIPE)
            second = asyncio.ensure_future(instance.invoke(invocation()))
            # Then the answer sent before the exit still counts, and the crash is the next's
            assert (await first).ok
            crashed = await second
            assert crashed.error is not None
            assert crashed.error.error_type == "Runtime.ExitError"

    run_supervised(body)


async def _warm_up(pool: Pool, event: bytes = b"{}") -> None:
    """One window of sequential calls: the pool then decides whether to queue."""
    for _ in range(scaler.SAMPLE_WINDOW + 1):
        assert (await call(pool, event)).ok


def test_a_short_function_queues_on_as_many_instances_as_cpus(tmp_path: Path) -> None:
    spec = make_spec(write_handler_file(tmp_path))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        await _warm_up(pool)
        assert pool.stats()["queue_depth"] == scaler.QUEUE_DEPTH
        # When twelve calls overlap on a node planned for one CPU
        results = await asyncio.gather(*(call(pool) for _ in range(12)))
        # Then one instance ran them all, one after another, and no other was started
        assert len({_pid(r) for r in results}) == 1
        assert pool.stats()["total"] == 1

    run_supervised(body, cpus=1)


def test_queueing_starts_no_instance_for_calls_that_do_not_wait(tmp_path: Path) -> None:
    spec = make_spec(write_handler_file(tmp_path))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        # Given a queueing pool on a node planned for two CPUs, with one warm instance
        await _warm_up(pool)
        assert pool.stats()["queue_depth"] == scaler.QUEUE_DEPTH
        # When calls come one at a time, each finding that instance free
        for _ in range(5):
            assert (await call(pool)).ok
        # Then no second instance was started for them
        await asyncio.sleep(0.2)
        assert pool.stats()["total"] == 1
        assert pool.stats()["starting"] == 0

    run_supervised(body, cpus=2)


def test_a_function_that_takes_longer_does_not_queue(tmp_path: Path) -> None:
    spec = make_spec(write_handler_file(tmp_path))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        await _warm_up(pool, _event(sleep_s=0.01))
        assert pool.stats()["queue_depth"] == 1
        results = await asyncio.gather(*(call(pool, _event(sleep_s=0.3)) for _ in range(3)))
        assert len({_pid(r) for r in results}) == 3

    run_supervised(body, cpus=1)


def test_a_stalled_instance_is_passed_over(tmp_path: Path) -> None:
    spec = make_spec(write_handler_file(tmp_path))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        await _warm_up(pool)
        # Given the only instance in use busy with a call that turns out slow
        slow = asyncio.create_task(call(pool, _event(sleep_s=0.8)))
        await asyncio.sleep(scaler.STALLED_AFTER_S * 10)
        # When another call comes, it is not queued behind it: another instance serves it
        quick = await call(pool)
        assert not slow.done()
        assert _pid(quick) != _pid(await slow)

    run_supervised(body, cpus=1)


def test_callers_parked_behind_a_stalled_instance_are_served_elsewhere(tmp_path: Path) -> None:
    spec = make_spec(write_handler_file(tmp_path))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        await _warm_up(pool)
        # Given a slow call and, in the same instant, enough calls to fill the queue of its
        # instance and one more that has to wait for room
        started = time.monotonic()
        slow = asyncio.create_task(call(pool, _event(sleep_s=0.8)))
        queued = [asyncio.create_task(call(pool)) for _ in range(scaler.QUEUE_DEPTH - 1)]
        waiting = asyncio.create_task(call(pool))
        # Then the waiting one is served by another instance once the slow one stalls
        assert await wait_until(waiting.done, timeout_s=0.5)
        assert time.monotonic() - started < 0.5
        assert _pid(waiting.result()) != _pid(await slow)
        # While those queued behind the slow call waited for it (the bound on head-of-line
        # blocking is the queue depth, see docs/runtime.md)
        assert {_pid(await q) for q in queued} == {_pid(slow.result())}

    run_supervised(body, cpus=1)


def write_handler_file(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "handler.py").write_text(HANDLER)
    return root
