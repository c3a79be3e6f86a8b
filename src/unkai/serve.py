"""Run a Platform behind uvicorn: pick uvloop and httptools once, here, with fallbacks.

`serve` starts the platform, binds the port (0 picks one), deploys the app given to `unkai up`,
prints one `unkai ready <url>` line (tests and scripts wait on it), and shuts everything down
on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from unkai.config.settings import Settings
from unkai.platform import Platform, build_platform

log = logging.getLogger("unkai")


def install_event_loop() -> str:
    """Use uvloop when it is installed (it is on Linux and macOS), else asyncio's loop."""
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        return "uvloop"
    return "asyncio"


def http_implementation() -> str:
    return "httptools" if importlib.util.find_spec("httptools") is not None else "h11"


def _bound_port(server: uvicorn.Server) -> int:
    for listener in server.servers:
        for sock in listener.sockets:
            return int(sock.getsockname()[1])
    raise RuntimeError("uvicorn started without a listening socket")


async def _wait_started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the HTTP server stopped while starting")
        await asyncio.sleep(0.01)


async def serve(
    settings: Settings,
    *,
    app_dir: Path | None,
    stage: str | None,
    on_deployed: Callable[[dict[str, Any]], None],
    on_ready: Callable[[str], None],
) -> None:
    """Run until SIGINT/SIGTERM. Deploy errors propagate (after a clean shutdown)."""
    platform = build_platform(settings)
    await platform.start()
    config = uvicorn.Config(
        platform.app,
        host=settings.host,
        port=settings.port,
        loop="none",
        http=http_implementation(),
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await _wait_started(server, task)
        url = f"http://{settings.host}:{_bound_port(server)}"
        platform.control.base_url = url
        _write_state_file(settings, url)
        if app_dir is not None:
            on_deployed(await platform.control.deploy(str(app_dir), stage, dry_run=False))
        platform.control.ready = True
        on_ready(url)
        await task
    finally:
        server.should_exit = True
        with contextlib.suppress(BaseException):
            await task
        await _shutdown(platform)


async def _shutdown(platform: Platform) -> None:
    await asyncio.shield(platform.close())


def _write_state_file(settings: Settings, url: str) -> None:
    """`<data_dir>/platform.json` tells local tools where the running platform listens."""
    path = settings.data_dir / "platform.json"
    path.write_text(json.dumps({"url": url, "pid": os.getpid()}))
