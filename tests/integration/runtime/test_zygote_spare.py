"""The zygote's spare: a child forked ahead that the next instance SPAWN is handed to."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from runtime_harness import (
    instance_request,
    invocation,
    make_spec,
    process_gone,
    wait_until,
    write_handler,
)

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


async def spawn_and_invoke(zygote: Zygote, spec: InstanceSpec, task_root: Path) -> Instance:
    instance = Instance(spec, "stream", lambda *_: None)
    ours, theirs = socket.socketpair()
    pid = await zygote.spawn(instance_request(spec, instance.id, task_root), theirs.fileno())
    theirs.close()
    await instance.connect(ours, pid)
    result = await instance.invoke(invocation())
    assert result.payload == str(pid).encode()
    return instance


async def one_spare(zygote: Zygote) -> int:
    """Wait until the zygote's only child is its spare, and return its pid."""
    assert await wait_until(lambda: len(children(zygote.pid)) == 1)
    (spare,) = children(zygote.pid)
    return spare


def with_base_zygote(body: Callable[[Zygote, list[int]], Awaitable[None]]) -> None:
    """Run `body(zygote, exited_pids)` against a real base zygote, then close it; the list
    collects every pid the zygote reports as exited."""

    async def main() -> None:
        exits: list[int] = []
        zygote = await Zygote.start_base(lambda pid, _status: exits.append(pid))
        try:
            await body(zygote, exits)
        finally:
            await zygote.close()

    asyncio.run(main())


def test_an_instance_spawn_is_served_by_the_spare_forked_ahead(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, PID))

    async def body(zygote: Zygote, exits: list[int]) -> None:
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

    with_base_zygote(body)


def test_a_spare_that_dies_unused_is_not_reported_and_is_replaced(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, PID))

    async def body(zygote: Zygote, exits: list[int]) -> None:
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

    with_base_zygote(body)


def test_closing_the_zygote_ends_its_spare() -> None:
    async def main() -> None:
        zygote = await Zygote.start_base(lambda _pid, _status: None)
        spare = await one_spare(zygote)
        await zygote.close()
        assert await wait_until(lambda: process_gone(spare))

    asyncio.run(main())
