"""`open_backend`: backend URLs to backends, and the errors for the ones it does not know."""

from __future__ import annotations

from pathlib import Path

import pytest

from unkai.backends.factory import open_backend
from unkai.backends.sqlite.backend import SqliteBackend
from unkai.errors import ConfigError


def test_sqlite_is_a_file_in_the_data_dir(tmp_path: Path) -> None:
    backend = open_backend("sqlite", tmp_path)
    assert isinstance(backend, SqliteBackend)
    assert backend.path == tmp_path / "unkai.db"


def test_sqlite_url_names_an_absolute_file(tmp_path: Path) -> None:
    backend = open_backend(f"sqlite://{tmp_path}/x/state.db", Path("ignored"))
    assert isinstance(backend, SqliteBackend)
    assert backend.path == tmp_path / "x" / "state.db"


@pytest.mark.parametrize("url", ["sqlite://relative.db", "sqlite://", "sqlite:///tmp/dir/"])
def test_sqlite_url_without_an_absolute_file_is_rejected(url: str) -> None:
    with pytest.raises(ConfigError, match="absolute file path") as info:
        open_backend(url, Path("."))
    assert url in str(info.value) and info.value.field == "backend_url"


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "postgres://x", "mysql", ""])
def test_unknown_scheme_names_the_url_and_the_supported_ones(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_backend(url, Path("."))
    message = str(info.value)
    assert repr(url) in message and "sqlite:///<absolute path>" in message
    assert info.value.hint
