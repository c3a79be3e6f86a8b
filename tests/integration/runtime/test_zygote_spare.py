"""The zygote's spare: a child forked ahead that the next instance SPAWN is handed to, and
the pages it copies ahead once the zygote has learned them from an instance."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

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

from unkai.runtime import prefault
from unkai.runtime.instance import Instance
from unkai.runtime.spec import InstanceSpec
from unkai.runtime.supervisor import Supervisor
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
    """Wait until the zygote's only child is its spare and the platform holds it; its pid."""
    assert await wait_until(
        lambda: zygote.spare_pid is not None and children(zygote.pid) == {zygote.spare_pid}
    )
    assert zygote.spare_pid is not None
    return zygote.spare_pid


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
        assert await wait_until(lambda: zygote.spare_pid not in (None, spare))
        next_spare = zygote.spare_pid
        assert children(zygote.pid) == {first.pid, next_spare}
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


def test_a_spawn_right_after_the_spare_died_is_forked_instead(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, PID))

    async def body(zygote: Zygote, exits: list[int]) -> None:
        spare = await one_spare(zygote)
        # When the spare dies and a SPAWN follows at once (the zygote may not have reaped it)
        os.kill(spare, signal.SIGKILL)
        assert await wait_until(lambda: process_gone(spare))
        instance = await spawn_and_invoke(zygote, spec, tmp_path)
        # Then another child serves it, and the dead spare is never reported
        assert instance.pid != spare
        await asyncio.sleep(0.1)
        assert exits == []
        instance.stop()

    with_base_zygote(body)


PRINTS_THEN_WAITS = """
import os, time
def handler(event, context):
    print("before the wait")
    time.sleep(1.5)
    return os.getpid()
"""


def test_an_instance_from_the_spare_streams_its_output_while_it_runs(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, PRINTS_THEN_WAITS))

    async def body(zygote: Zygote, exits: list[int]) -> None:
        # Given an instance started from the spare (which installed its log capture before it
        # had the instance's socket)
        spare = await one_spare(zygote)
        seen: list[str] = []
        instance = Instance(spec, "stream", lambda _instance, _rid, text: seen.append(text))
        ours, theirs = socket.socketpair()
        pid = await zygote.spawn(instance_request(spec, instance.id, tmp_path), theirs.fileno())
        theirs.close()
        await instance.connect(ours, pid)
        assert pid == spare
        # When its handler prints and then waits
        call = asyncio.ensure_future(instance.invoke(invocation()))
        # Then the line reaches the platform while the handler still runs
        assert await wait_until(lambda: any("before the wait" in text for text in seen))
        assert not call.done()
        # And it has an instance's limits (set partly before the spare knew its function)
        limits = Path(f"/proc/{pid}/limits").read_text()
        assert re.search(r"Max open files\s+1024\s", limits)
        assert re.search(r"Max core file size\s+0\s", limits)
        assert re.search(r"Max address space\s+\d+\s", limits)
        assert (await call).payload == str(pid).encode()
        instance.stop()

    with_base_zygote(body)


EXITS_AT_IMPORT = """
import os
os._exit(3)
"""


def test_an_instance_started_from_the_spare_that_exits_at_once_is_reported(
    tmp_path: Path,
) -> None:
    spec = make_spec(write_handler(tmp_path, EXITS_AT_IMPORT))

    async def body(zygote: Zygote, exits: list[int]) -> None:
        spare = await one_spare(zygote)
        # When the platform hands a SPAWN to the spare and the instance exits at once (the
        # zygote may reap it before the platform's TAKEN reaches it)
        ours, theirs = socket.socketpair()
        pid = await zygote.spawn(instance_request(spec, "crash", tmp_path), theirs.fileno())
        theirs.close()
        ours.close()
        # Then its exit is reported: it was an instance, no longer a spare
        assert pid == spare
        assert await wait_until(lambda: pid in exits)

    with_base_zygote(body)


def test_closing_the_zygote_ends_its_spare() -> None:
    async def main() -> None:
        zygote = await Zygote.start_base(lambda _pid, _status: None)
        spare = await one_spare(zygote)
        await zygote.close()
        assert await wait_until(lambda: process_gone(spare))

    asyncio.run(main())


def copied_pages(pid: int, zygote_pid: int) -> int:
    """How many of the zygote's writable pages `pid` (its child) has a copy of."""
    with open(f"/proc/{zygote_pid}/maps") as maps:
        ranges = prefault.writable_private_ranges(maps.read())
    return len(prefault.exclusive_pages(pid, ranges))


def test_after_a_lesson_the_spare_copies_the_learned_pages_before_any_spawn(
    tmp_path: Path,
) -> None:
    spec = make_spec(write_handler(tmp_path, PID))

    async def body(zygote: Zygote, exits: list[int]) -> None:
        # Given a spare forked before the zygote learned anything
        unlearned = copied_pages(await one_spare(zygote), zygote.pid)
        # When an instance served its first result and the zygote is told of it
        first = await spawn_and_invoke(zygote, spec, tmp_path)
        zygote.learn_from(first.pid)
        assert await wait_until(lambda: zygote.learned_from == [first.pid])
        learned = zygote.prefault_pages
        assert learned > 0

        # Then the spare that waits now (forked after the lesson, or let go and replaced) has
        # copies of (nearly) all those pages while no SPAWN has come yet
        def spare_copied() -> bool:
            spares = children(zygote.pid) - {first.pid}
            return len(spares) == 1 and copied_pages(spares.pop(), zygote.pid) >= 0.8 * learned

        assert await wait_until(spare_copied)
        assert learned > unlearned
        # And it still serves as an instance
        second = await spawn_and_invoke(zygote, spec, tmp_path)
        assert exits == []
        first.stop()
        second.stop()

    with_base_zygote(body)


IMPORTING = """
import colorsys, os
def handler(event, context):
    return os.getpid()
"""


def test_a_zygote_learns_only_from_instances_that_imported_nothing_it_lacks(
    tmp_path: Path,
) -> None:
    importing = make_spec(write_handler(tmp_path / "a", IMPORTING), version_key="a")
    plain = make_spec(write_handler(tmp_path / "b", PID), version_key="b")

    def learned_from(supervisor: Supervisor) -> list[int]:
        [base] = [z for z in supervisor.zygotes() if z["version_key"] is None]
        return list(base["prefault_learned_from"])

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        # Given a first result from a handler whose import pulled in a module (its pages are
        # its version's), then one from a handler that imported nothing new
        importer = int((await call(supervisor.pool_for(importing))).payload or b"")
        learner = int((await call(supervisor.pool_for(plain))).payload or b"")
        # Then the base zygote learned from the second only (it answers LEARNs in order)
        assert await wait_until(lambda: learner in learned_from(supervisor))
        assert learned_from(supervisor) == [learner]
        assert importer != learner

    run_supervised(body)
