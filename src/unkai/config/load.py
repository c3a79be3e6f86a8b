"""`load_app(path)`: an app directory (or its manifest file) -> a validated `AppSpec`.

Pipeline: find the manifest -> parse YAML keeping lines (`source.py`) -> validate with the
pydantic models using only the YAML (camelCase) names -> translate validation errors
(`diagnostics.py`) -> check the files and routes the manifest refers to (`checks.py`).
Every failure is a `ConfigError` naming file, line and field. Every front door (CLI, control
API, `unkai up`) deploys through this one function, so they all print the same errors.

Blocking file I/O: call it from a thread when on the event loop.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from unkai.config.checks import check_app
from unkai.config.diagnostics import config_error
from unkai.config.source import read_manifest
from unkai.config.spec import AppSpec
from unkai.errors import ConfigError

MANIFEST_NAMES = ("unkai.yml", "unkai.yaml")
EXAMPLE_HINT = "create one, see examples/hello"


def find_manifest(path: Path) -> Path:
    """The manifest file for `path`: the file itself, or `unkai.yml`/`unkai.yaml` in the dir."""
    if path.is_file():
        return path
    if not path.exists():
        raise ConfigError(f"no such file or directory: {path}", path=str(path))
    found = [path / name for name in MANIFEST_NAMES if (path / name).is_file()]
    if not found:
        raise ConfigError(f"no unkai.yml in {path}; {EXAMPLE_HINT}")
    if len(found) > 1:
        raise ConfigError(f"both unkai.yml and unkai.yaml in {path}; keep one")
    return found[0]


def app_dir_of(path: Path) -> Path:
    """The app directory: `path` itself, or the directory holding the manifest file."""
    return path.parent if path.is_file() else path


def load_app(path: Path) -> AppSpec:
    """Load and fully check the app at `path` (directory or manifest file).

    Raises ConfigError; reads files only, never writes.
    """
    manifest = find_manifest(path)
    source = read_manifest(manifest, manifest.name)
    if not isinstance(source.data, dict):
        raise ConfigError(
            "must be a mapping with 'service' and 'functions'; " + EXAMPLE_HINT,
            path=source.display_name,
            line=source.line_of(()),
        )
    try:
        app = AppSpec.model_validate(source.data, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise config_error(exc, source) from None
    check_app(app, manifest.parent.resolve(), source)
    return app
