"""Run a Platform behind unkai's HTTP server (`gateway/http1.py`), on uvloop when installed.

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
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unkai.config.settings import Settings
from unkai.gateway.http1 import HttpServer
from unkai.platform import Platform, build_platform

log = logging.getLogger("unkai")


def install_event_loop() -> str:
    """Use uvloop when it is installed (it is on Linux and macOS), else asyncio's loop."""
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        return "uvloop"
    return "asyncio"


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
    server = HttpServer(platform.app)
    try:
        port = await server.start(settings.host, settings.port)
        url = f"http://{settings.host}:{port}"
        platform.control.base_url = url
        _write_state_file(settings, url)
        if app_dir is not None:
            on_deployed(await platform.control.deploy(str(app_dir), stage, dry_run=False))
        platform.control.ready = True
        on_ready(url)
        await _until_stopped()
    finally:
        with contextlib.suppress(BaseException):
            await asyncio.shield(server.close())
        await _shutdown(platform)


async def _until_stopped() -> None:
    """Wait for SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _shutdown(platform: Platform) -> None:
    await asyncio.shield(platform.close())


def _write_state_file(settings: Settings, url: str) -> None:
    """`<data_dir>/platform.json` tells local tools where the running platform listens."""
    path = settings.data_dir / "platform.json"
    path.write_text(json.dumps({"url": url, "pid": os.getpid()}))
