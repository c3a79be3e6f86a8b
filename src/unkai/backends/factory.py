"""`open_backend(url, data_dir)`: the `backend_url` setting -> a Backend (not yet opened).

Accepted URLs:
  sqlite                  data_dir/unkai.db (the default)
  sqlite:///abs/path.db   that file; the path after "sqlite://" must be absolute
A redis URL joins this list with the redis backend.
"""

from __future__ import annotations

from pathlib import Path

from unkai.backends.base import Backend
from unkai.backends.sqlite.backend import SqliteBackend
from unkai.errors import ConfigError

SUPPORTED = ("sqlite", "sqlite:///<absolute path>")
DEFAULT_SQLITE_FILE = "unkai.db"


def open_backend(url: str, data_dir: Path) -> Backend:
    """The backend `url` names; the caller awaits `open()`. Raises ConfigError for a bad url."""
    if url == "sqlite":
        return SqliteBackend(data_dir / DEFAULT_SQLITE_FILE)
    if url.startswith("sqlite://"):
        return SqliteBackend(_sqlite_path(url))
    scheme = url.partition(":")[0] or url
    raise ConfigError(
        f"unsupported backend {url!r} (scheme {scheme!r}); supported: {', '.join(SUPPORTED)}",
        field="backend_url",
        hint="use 'sqlite' for a file in the data directory",
    )


def _sqlite_path(url: str) -> Path:
    raw = url.removeprefix("sqlite://")
    path = Path(raw)
    if not raw or not path.is_absolute() or raw.endswith("/"):
        raise ConfigError(
            f"{url!r} does not name an absolute file path; supported: {', '.join(SUPPORTED)}",
            field="backend_url",
            hint="write three slashes before an absolute path: sqlite:///var/lib/unkai/unkai.db",
        )
    return path
