"""Fixtures shared by the unit tests: the anyio backend, and a real SQLite backend to run on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from unkai.backends.sqlite.backend import SqliteBackend


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def sqlite_backend(tmp_path: Path) -> AsyncIterator[SqliteBackend]:
    """An opened SQLite backend in a fresh directory, closed after the test."""
    backend = SqliteBackend(tmp_path / "unkai.db")
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()
