"""Revisions of API-made functions: unpacking a zip safely, copying code by hard links
without sharing the generated files, and pruning."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest
import yaml

from unkai.deploy.bundle import CodeBundle
from unkai.deploy.function_dirs import (
    ATTRIBUTES,
    MANIFEST,
    NO_REQUIREMENTS,
    ApiAttributes,
    FunctionDirs,
    unpack_zip,
    zip_attributes,
)
from unkai.errors import InvalidRequest


def zip_of(entries: dict[str, tuple[bytes, int]]) -> bytes:
    """Entries: name -> (bytes, unix mode)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, (data, mode) in entries.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def manifest(name: str) -> dict[str, object]:
    return {"service": f"lambda-{name}", "functions": {name: {"handler": "app.handler"}}}


def attributes(code: bytes) -> ApiAttributes:
    return zip_attributes(code, role="arn:aws:iam::000000000000:role/r", architectures=("x86_64",))


def test_unpack_keeps_files_directories_and_executable_bits(tmp_path: Path) -> None:
    code = zip_of(
        {
            "app.py": (b"x = 1\n", stat.S_IFREG | 0o644),
            "bin/tool": (b"#!/bin/sh\n", stat.S_IFREG | 0o755),
            "pkg/": (b"", stat.S_IFDIR | 0o755),
        }
    )
    unpack_zip(code, tmp_path)
    assert (tmp_path / "app.py").read_bytes() == b"x = 1\n"
    assert (tmp_path / "bin/tool").stat().st_mode & stat.S_IXUSR
    assert not (tmp_path / "app.py").stat().st_mode & stat.S_IXUSR
    assert (tmp_path / "pkg").is_dir()


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ({"../escape.py": (b"", stat.S_IFREG | 0o644)}, "leaves the package"),
        ({"/abs.py": (b"", stat.S_IFREG | 0o644)}, "leaves the package"),
        ({"link": (b"/etc/passwd", stat.S_IFLNK | 0o777)}, "symbolic link"),
    ],
)
def test_unpack_refuses_entries_outside_the_package_and_links(
    tmp_path: Path, entries: dict[str, tuple[bytes, int]], why: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        unpack_zip(zip_of(entries), tmp_path / "target")
    assert caught.value.code == "InvalidParameterValueException"
    assert why in caught.value.message
    assert not (tmp_path / "escape.py").exists()


def test_unpack_refuses_what_is_not_a_zip(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="Could not unzip uploaded file"):
        unpack_zip(b"PK but not really", tmp_path)


def test_a_revision_holds_code_manifest_and_attributes_outside_the_bundle(tmp_path: Path) -> None:
    # Given a zip with a requirements.txt (Lambda never installs one)
    dirs = FunctionDirs(tmp_path / "functions")
    code = zip_of(
        {
            "app.py": (b"def handler(e, c): pass\n", stat.S_IFREG | 0o644),
            "requirements.txt": (b"requests\n", stat.S_IFREG | 0o644),
        }
    )

    # When a revision is built from it
    kept = attributes(code)
    path = dirs.build("dev", "fn", manifest("fn"), kept, code=code)

    # Then the manifest names an empty requirements file instead, the attributes are kept,
    # and the code bundle is the zip's files alone
    written = yaml.safe_load(path.read_text())
    assert written["functions"]["fn"]["requirements"] == NO_REQUIREMENTS
    revision = path.parent
    assert dirs.attributes(revision) == kept
    assert kept.zip_size_bytes == len(code)
    bundle = CodeBundle.scan(revision)
    assert [f.relative for f in bundle.files] == ["app.py", "requirements.txt"]
    assert dirs.owns("dev", "fn", str(revision))
    assert not dirs.owns("dev", "other", str(revision))


def test_copied_code_shares_files_but_not_the_generated_ones(tmp_path: Path) -> None:
    # Given a revision
    dirs = FunctionDirs(tmp_path / "functions")
    code = zip_of({"app.py": (b"v = 1\n", stat.S_IFREG | 0o644)})
    first = dirs.build("dev", "fn", manifest("fn"), attributes(code), code=code).parent

    # When the next one copies its code and writes its own manifest
    second_manifest = manifest("fn")
    second_manifest["functions"] = {"fn": {"handler": "app.other"}}
    second = dirs.build(
        "dev", "fn", second_manifest, attributes(code), code=None, code_from=first
    ).parent

    # Then the code is the same file, and the first revision's manifest is untouched
    assert (first / "app.py").stat().st_ino == (second / "app.py").stat().st_ino
    assert "app.handler" in (first / MANIFEST).read_text()
    assert "app.other" in (second / MANIFEST).read_text()
    assert (first / ATTRIBUTES).stat().st_ino != (second / ATTRIBUTES).stat().st_ino

    # And pruning keeps only the live revision, or removes the function
    dirs.prune("dev", "fn", second)
    assert not first.exists() and second.exists()
    dirs.prune("dev", "fn", None)
    assert not dirs.function_dir("dev", "fn").exists()


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    dirs = FunctionDirs(tmp_path / "functions")
    with pytest.raises(InvalidRequest):
        dirs.build("dev", "fn", manifest("fn"), attributes(b"x"), code=b"not a zip")
    assert not dirs.function_dir("dev", "fn").exists()
