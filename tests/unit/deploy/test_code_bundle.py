"""`CodeBundle`: what is hashed, what is copied, and that storing is idempotent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from unkai.deploy.bundle import CodeBundle
from unkai.errors import ConfigError


def make_app(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "handler.py").write_text("def main(e, c):\n    return 1\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "unkai.yml").write_text("service: demo\n")
    for skipped in (".git", "__pycache__", ".venv", "node_modules"):
        (root / skipped).mkdir()
        (root / skipped / "x.py").write_text("ignored")
    (root / "stale.pyc").write_bytes(b"\0")
    return root


def test_scan_lists_code_and_skips_tool_dirs_pyc_and_manifest(tmp_path: Path) -> None:
    # Given an app with tool directories, bytecode and a manifest
    app = make_app(tmp_path / "app")
    # When scanned, Then only the code files are in the bundle
    bundle = CodeBundle.scan(app)
    assert [f.relative for f in bundle.files] == ["handler.py", "pkg/__init__.py"]


def test_hash_depends_on_bytes_paths_and_exec_bit_only(tmp_path: Path) -> None:
    # Given an app and its hash
    app = make_app(tmp_path / "app")
    first = CodeBundle.scan(app).sha256
    # When only the manifest or an ignored file changes, Then the hash stays
    (app / "unkai.yml").write_text("service: demo\nprovider: {timeout: 9}\n")
    (app / "__pycache__" / "x.py").write_text("changed")
    assert CodeBundle.scan(app).sha256 == first
    # When the exec bit changes, Then the hash changes
    os.chmod(app / "handler.py", 0o755)
    assert CodeBundle.scan(app).sha256 != first


def test_excluded_data_dir_inside_the_app_is_skipped(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app")
    (app / "state" / "bundles").mkdir(parents=True)
    (app / "state" / "bundles" / "f.py").write_text("x")
    bundle = CodeBundle.scan(app, exclude=[app / "state"])
    assert "state/bundles/f.py" not in [f.relative for f in bundle.files]


def test_store_copies_once_read_only(tmp_path: Path) -> None:
    # Given a scanned app
    bundle = CodeBundle.scan(make_app(tmp_path / "app"))
    bundles_dir = tmp_path / "bundles"
    # When stored twice
    assert bundle.store(bundles_dir) is True
    target = bundle.path_in(bundles_dir)
    mtime_ns = target.stat().st_mtime_ns
    assert bundle.store(bundles_dir) is False
    # Then one read-only copy exists, no temporary directory is left, and it hashes the same
    assert target.stat().st_mtime_ns == mtime_ns
    assert (target / "handler.py").stat().st_mode & 0o777 == 0o444
    assert sorted(p.name for p in bundles_dir.iterdir()) == [bundle.sha256]
    assert CodeBundle.scan(target).sha256 == bundle.sha256


def test_store_refuses_files_changed_since_scan(tmp_path: Path) -> None:
    # Given a scan, then an edit before storing
    app = make_app(tmp_path / "app")
    bundle = CodeBundle.scan(app)
    (app / "handler.py").write_text("def main(e, c):\n    return 2\n")
    # When stored, Then it fails and leaves nothing behind
    with pytest.raises(ConfigError, match="changed while deploying"):
        bundle.store(tmp_path / "bundles")
    assert list((tmp_path / "bundles").iterdir()) == []
