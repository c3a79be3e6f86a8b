"""Fixtures of the backend conformance suite: every test runs once per backend.

A backend joins the suite by adding one entry to `BACKENDS`: a function from a fresh temporary
directory to a `BackendTarget` (the URL `open_backend` accepts plus the data dir). Tests open
backends only through the target, so reopening (durability) and child processes (kill -9) work
the same for every backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from unkai.backends.base import Backend
from unkai.backends.factory import open_backend


@dataclass(frozen=True)
class BackendTarget:
    url: str
    data_dir: Path

    def make(self) -> Backend:
        """A new, unopened backend on the same storage (a reopen after close)."""
        return open_backend(self.url, self.data_dir)


BACKENDS: dict[str, Callable[[Path], BackendTarget]] = {
    "sqlite": lambda tmp: BackendTarget(f"sqlite://{tmp / 'state' / 'unkai.db'}", tmp),
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=sorted(BACKENDS))
def target(request: pytest.FixtureRequest, tmp_path: Path) -> BackendTarget:
    return BACKENDS[request.param](tmp_path)


@pytest.fixture
async def backend(target: BackendTarget) -> AsyncIterator[Backend]:
    opened = target.make()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
