"""The zygote's spare: a child forked ahead that the next instance SPAWN is handed to."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

from runtime_harness import invocation, make_spec, process_gone, wait_until, write_handler

from unkai.runtime.instance import Instance
from unkai.runtime.spec import InstanceSpec
from unkai.runtime.zygote import Zygote

PID = """
import os
def handler(event, context):
    return os.getpid()
"""


def children(pid: int) -> set[int]:
    """The live children of `pid` (zombies included until reaped)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(child) for child in text.split()}


def instance_request(spec: InstanceSpec, instance: Instance, task_root: Path) -> dict[str, object]:
    return {
        "id": instance.id,
        "role": "instance",
        "env": {"_HANDLER": spec.handler, "LAMBDA_TASK_ROOT": str(task_root)},
        "task_root": str(task_root),
        "sys_path": [str(task_root)],
        "memory_size_mb": 128,
    }


async def spawn_and_invoke(zygote: Zygote, spec: InstanceSpec, task_root: Path) -> Instance:
    instance = Instance(spec, "stream", lambda *_: None)
    ours, theirs = socket.socketpair()
    pid = await zygote.spawn(instance_request(spec, instance, task_root), theirs.fileno())
    theirs.close()
    await instance.connect(ours, pid)
    result = await instance.invoke(invocation())
    assert result.payload == str(pid).encode()
    return instance


async def one_spare(zygote: Zygote) -> int:
    """Wait until the zygote has exactly one child that is not an instance we know of."""
    assert await wait_until(lambda: len(children(zygote.pid)) == 1)
    (spare,) = children(zygote.pid)
    return spare


def test_an_instance_spawn_is_served_by_the_spare_forked_ahead(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, PID))

    async def main() -> None:
        exits: list[int] = []
        zygote = await Zygote.start_base(lambda pid, _status: exits.append(pid))
        try:
            # Given a zygote that has forked its spare before any SPAWN
            spare = await one_spare(zygote)
            # When an instance is spawned, the spare becomes it (and answers with its pid)
            first = await spawn_and_invoke(zygote, spec, tmp_path)
            assert first.pid == spare
            # Then a new spare follows, and the next instance is that one
            assert await wait_until(lambda: len(children(zygote.pid)) == 2)
            (next_spare,) = children(zygote.pid) - {first.pid}
            second = await spawn_and_invoke(zygote, spec, tmp_path)
            assert second.pid == next_spare
            assert exits == []
            first.stop()
            second.stop()
        finally:
            await zygote.close()

    asyncio.run(main())


def test_a_spare_that_dies_unused_is_not_reported_and_is_replaced(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, PID))

    async def main() -> None:
        exits: list[int] = []
        zygote = await Zygote.start_base(lambda pid, _status: exits.append(pid))
        try:
            spare = await one_spare(zygote)
            # When the spare is killed before any SPAWN reached it
            os.kill(spare, signal.SIGKILL)
            assert await wait_until(lambda: spare not in children(zygote.pid))
            # Then the platform hears nothing of it, and a new spare takes its place
            replacement = await one_spare(zygote)
            assert replacement != spare
            instance = await spawn_and_invoke(zygote, spec, tmp_path)
            assert instance.pid == replacement
            assert exits == []
            instance.stop()
        finally:
            await zygote.close()

    asyncio.run(main())


def test_closing_the_zygote_ends_its_spare(tmp_path: Path) -> None:
    async def main() -> int:
        zygote = await Zygote.start_base(lambda _pid, _status: None)
        spare = await one_spare(zygote)
        await zygote.close()
        assert await wait_until(lambda: process_gone(spare))
        return spare

    asyncio.run(main())
