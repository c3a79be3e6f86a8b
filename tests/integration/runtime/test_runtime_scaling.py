"""Pools and the Supervisor: scale-out, the node cap, throttling, reaping, zygotes, cleanup."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest
from runtime_harness import (
    LogCollector,
    call,
    instance_request,
    invocation,
    make_spec,
    process_gone,
    run_supervised,
    wait_until,
    write_handler,
)

from unkai.errors import Throttled
from unkai.runtime.instance import Instance
from unkai.runtime.supervisor import Supervisor
from unkai.runtime.zygote import Zygote

SLOW_PID = """
import os, time
def handler(event, context):
    time.sleep(event.get("sleep_s", 0))
    return os.getpid()
"""


def test_concurrent_acquires_scale_out(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, SLOW_PID))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        # When three calls overlap
        results = await asyncio.gather(*(call(pool, b'{"sleep_s": 0.3}') for _ in range(3)))
        # Then three instances served them
        assert len({r.payload for r in results}) == 3
        assert supervisor.stats()[spec.version_key]["idle"] == 3

    run_supervised(body)


def _busy(supervisor: Supervisor) -> bool:
    return any(i["state"] == "busy" for i in supervisor.instances())


def test_node_cap_makes_callers_wait_then_throttles(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path / "a", SLOW_PID), version_key="a")
    other = make_spec(write_handler(tmp_path / "b", SLOW_PID), version_key="b")

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        # Given a node capped at one instance that is busy
        busy = asyncio.create_task(call(pool, b'{"sleep_s": 0.5}'))
        await wait_until(lambda: _busy(supervisor))
        # When a second caller arrives, it waits and then gets the same (warm) instance
        waited = await call(pool)
        assert waited.payload == (await busy).payload
        assert waited.init_duration_ms is None
        # And a caller whose deadline passes while the instance is busy is throttled
        busy = asyncio.create_task(call(pool, b'{"sleep_s": 0.5}'))
        await wait_until(lambda: _busy(supervisor))
        started = time.monotonic()
        with pytest.raises(Throttled):
            async with pool.acquire(time.monotonic() + 0.1):
                pass
        assert time.monotonic() - started < 0.4
        await busy
        # And another function evicts the idle instance instead of waiting
        assert (await call(supervisor.pool_for(other))).ok
        assert supervisor.stats()["a"]["total"] == 0

    run_supervised(body, max_instances=1)


def test_a_caller_waiting_at_the_cap_takes_the_slot_of_an_instance_that_goes_idle(
    tmp_path: Path,
) -> None:
    spec = make_spec(write_handler(tmp_path / "a", SLOW_PID), version_key="a")
    other = make_spec(write_handler(tmp_path / "b", SLOW_PID), version_key="b")

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        # Given a node capped at one instance, busy with function a
        busy = asyncio.create_task(call(supervisor.pool_for(spec), b'{"sleep_s": 0.5}'))
        await wait_until(lambda: _busy(supervisor))
        # When function b is called meanwhile (no slot, and nothing idle to take one from)
        waiting = asyncio.create_task(call(supervisor.pool_for(other), timeout_s=3.0))
        await busy
        # Then once a's instance is idle, b takes its slot and runs, long before b's deadline
        # (until session 17 it waited for an instance of its own pool and was throttled)
        assert (await waiting).ok
        assert supervisor.stats()["a"]["total"] == 0
        assert supervisor.stats()["b"]["total"] == 1

    run_supervised(body, max_instances=1)


def test_idle_instances_are_reaped_to_zero(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, SLOW_PID))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        request = invocation()
        async with pool.acquire(request.deadline) as instance:
            await instance.invoke(request)
        # When it stays idle past keep-alive, its process exits
        await asyncio.wait_for(asyncio.shield(instance.exit_future), 5)
        assert supervisor.stats()[spec.version_key]["total"] == 0
        assert process_gone(instance.pid)

    run_supervised(body, keep_alive_s=0.2)


PRELOADING = """
import os, sys
PRELOADED = "decimal" in sys.modules
import decimal
def handler(event, context):
    return {"preloaded": PRELOADED, "ppid": os.getppid(), "pid": os.getpid()}
"""


def test_later_cold_starts_fork_from_a_version_zygote(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, PRELOADING))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        # Given the version's first instance, forked from the base zygote
        first = json.loads((await call(pool)).payload or b"")
        assert first["preloaded"] is False
        assert await wait_until(lambda: supervisor.stats()[spec.version_key]["zygote_pid"])
        zygote_pid = supervisor.stats()[spec.version_key]["zygote_pid"]
        # When the version cold-starts again
        await supervisor.drain(spec.version_key)
        cold = await call(pool)
        again = json.loads(cold.payload or b"")
        # Then the new instance is the version zygote's child with decimal already imported
        assert again["ppid"] == zygote_pid
        assert again["preloaded"] is True
        assert cold.init_duration_ms is not None

    run_supervised(body, preload_zygotes=True)


def test_close_leaves_no_processes(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, PRELOADING + SLOW_PID))
    pids: list[int] = []

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        await asyncio.gather(*(call(pool) for _ in range(2)))
        assert await wait_until(lambda: supervisor.stats()[spec.version_key]["zygote_pid"])
        busy = asyncio.create_task(call(pool, b'{"sleep_s": 5}'))
        assert await wait_until(lambda: _busy(supervisor))
        pids.extend(i["pid"] for i in supervisor.instances())
        pids.extend(z["pid"] for z in supervisor.zygotes())
        busy.cancel()

    run_supervised(body, preload_zygotes=True)
    assert len(pids) >= 4
    assert asyncio.run(wait_until(lambda: all(process_gone(p) for p in pids))), pids


def test_closing_a_zygote_control_socket_kills_its_children(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, SLOW_PID))

    async def main() -> int:
        zygote = await Zygote.start_base(lambda _pid, _status: None)
        instance = Instance(spec, "stream", lambda *_: None)
        ours, theirs = socket.socketpair()
        pid = await zygote.spawn(instance_request(spec, instance.id, tmp_path), theirs.fileno())
        theirs.close()
        await instance.connect(ours, pid)
        assert (await instance.invoke(invocation())).payload == str(pid).encode()
        await zygote.close()
        assert await wait_until(lambda: process_gone(pid))
        instance.stop()
        return pid

    asyncio.run(main())
