"""Calls of a short function queued on a busy instance, through the real platform: a crash
hands the calls queued behind it back, and they run on another instance."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from tests.integration.platform_process import PlatformProcess, write_app

HANDLER = """
import os
def handler(event, context):
    if event.get("exit"):
        os._exit(3)
    return os.getpid()
"""

MANIFEST = """
service: queued
functions:
  flaky:
    handler: app.handler
"""

INVOKE = "/2015-03-31/functions/flaky/invocations"


async def _invoke_all(url: str, events: list[bytes], concurrency: int) -> list[httpx.Response]:
    """Every event once, `concurrency` at a time (bounded: one pass over the list)."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as http:

        async def one(event: bytes) -> httpx.Response:
            async with gate:
                return await http.post(INVOKE, content=event)

        return list(await asyncio.gather(*(one(event) for event in events)))


def test_calls_queued_behind_a_crash_run_on_another_instance(tmp_path: Path) -> None:
    # A node planned for one CPU: a short function then runs on one instance at a time, with
    # the calls that overlap queued on it
    node = PlatformProcess(tmp_path / "data", extra_args=("--cpus", "1")).start()
    try:
        app = write_app(tmp_path / "app", MANIFEST, {"app.py": HANDLER})
        node.cli("deploy", str(app), check=True)
        with node.client() as http:
            for _ in range(40):  # a window of short calls: the pool starts queueing
                assert http.post(INVOKE, content=b"{}").status_code == 200
        # When one call in ten crashes its instance while 16 overlap
        events = [b'{"exit": true}' if i % 10 == 9 else b"{}" for i in range(200)]
        responses = asyncio.run(_invoke_all(node.url, events, concurrency=16))
        # Then exactly those fail, and every other call ran and answered
        for event, response in zip(events, responses, strict=True):
            assert response.status_code == 200
            if event != b"{}":
                assert response.json()["errorType"] == "Runtime.ExitError"
            else:
                assert "x-amz-function-error" not in response.headers, response.text
                assert isinstance(response.json(), int)
        # And some of them had been queued behind a crash, handed back, and lent again
        with node.client() as http:
            pools = http.get("/_unkai/api/instances").json()["pools"]
        assert sum(pool["handed_back"] for pool in pools.values()) > 0, json.dumps(pools)
    finally:
        node.stop()
