"""Durability: what a commit acknowledged survives close/reopen and `kill -9` of the writer."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from tests.backends.conftest import BackendTarget
from unkai.backends.base import Document, LogQuery, LogRecord, Write

pytestmark = pytest.mark.anyio

#: Commits forever, printing "committed <n>" after commit n returned; the parent kills it.
CHILD = """
import asyncio, sys
from pathlib import Path
from unkai.backends.base import LogRecord, Write
from unkai.backends.factory import open_backend

async def main(url: str, data_dir: str) -> None:
    backend = open_backend(url, Path(data_dir))
    await backend.open()
    n = 0
    while True:
        await asyncio.gather(
            backend.commit([Write("kill", f"k{n:06d}", {"n": n}, expected_revision=0)]),
            backend.append_logs([LogRecord(n, "/unkai/dev/kill", "s", f"line {n}")]),
        )
        print(f"committed {n}", flush=True)
        n += 1

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_data_survives_close_and_reopen(target: BackendTarget) -> None:
    # Given a backend with documents and logs, closed cleanly
    first = target.make()
    await first.open()
    await first.commit([Write("k", "a", {"v": 1}), Write("k", "b", {"v": 2})])
    await first.commit([Write("k", "a", {"v": 3}, expected_revision=1)])
    records = [LogRecord(1, "/unkai/dev/f", "s", f"m{i}", "r") for i in range(3)]
    await first.append_logs(records)
    await first.close()
    # When it is opened again
    second = target.make()
    await second.open()
    try:
        # Then everything is there, revisions and log ids included, and ids keep growing
        assert await second.list("k") == [
            Document("k", "a", {"v": 3}, 2),
            Document("k", "b", {"v": 2}, 1),
        ]
        assert await second.query_logs(LogQuery()) == records
        more = [LogRecord(2, "/unkai/dev/f", "s", "later")]
        await second.append_logs(more)
        assert more[0].id > records[-1].id
    finally:
        await second.close()


async def test_close_is_idempotent(target: BackendTarget) -> None:
    backend = target.make()
    await backend.open()
    await backend.close()
    await backend.close()


@pytest.mark.timeout(60)
async def test_acknowledged_commits_survive_kill_9(target: BackendTarget) -> None:
    # Given a child process that commits continuously and reports each acknowledged commit
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        target.url,
        str(target.data_dir),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        for _ in range(30):
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
            assert line.startswith(b"committed "), line
    finally:
        # When it is killed without any chance to clean up, mid-write
        proc.send_signal(signal.SIGKILL)
        rest = await proc.stdout.read()
        await proc.wait()
    complete_lines = (line + rest).split(b"\n")[:-1]  # a line cut by the kill is not counted
    acknowledged = int(complete_lines[-1].split()[1])
    assert proc.returncode == -signal.SIGKILL
    # Then a reopened backend has every acknowledged commit, and is writable
    backend = target.make()
    await backend.open()
    try:
        docs = await backend.list("kill")
        assert [d.value["n"] for d in docs][: acknowledged + 1] == list(range(acknowledged + 1))
        logs = await backend.query_logs(LogQuery(group="/unkai/dev/kill", limit=100_000))
        assert [r.timestamp_ms for r in logs][: acknowledged + 1] == list(range(acknowledged + 1))
        await backend.commit([Write("kill", "after", {"ok": True}, expected_revision=0)])
    finally:
        await backend.close()
