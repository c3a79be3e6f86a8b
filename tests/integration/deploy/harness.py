"""Deploy against real parts: the sqlite backend, real files, real pip (offline)."""

from __future__ import annotations

import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from unkai.backends.base import Backend
from unkai.backends.factory import open_backend
from unkai.deploy.registry import Registry
from unkai.deploy.service import Deployer

HANDLER = "def hello(event, context):\n    return {'statusCode': 200, 'body': 'hi'}\n"

HELLO = """\
service: hello
functions:
  hello:
    handler: handler.hello
    events:
      - http: GET /hello
"""


@dataclass
class Node:
    """One platform's deploy side: backend, registry and deployer over `data_dir`."""

    backend: Backend
    registry: Registry
    deployer: Deployer
    data_dir: Path


@asynccontextmanager
async def running_node(data_dir: Path) -> AsyncIterator[Node]:
    backend = open_backend("sqlite", data_dir)
    await backend.open()
    registry = Registry(backend)
    try:
        yield Node(backend, registry, Deployer(backend, registry, data_dir), data_dir)
    finally:
        await backend.close()


def write_app(root: Path, manifest: str = HELLO, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "unkai.yml").write_text(manifest)
    for name, text in ({"handler.py": HANDLER} | (files or {})).items():
        (root / name).write_text(text)
    return root


def write_tiny_wheel(directory: Path, version: str = "0.1.0") -> str:
    """A pure-Python wheel pip installs without network or build backend; returns its name."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"tinypkg-{version}-py3-none-any.whl"
    info = f"tinypkg-{version}.dist-info"
    with zipfile.ZipFile(directory / name, "w") as wheel:
        wheel.writestr("tinypkg/__init__.py", f"VERSION = {version!r}\n")
        wheel.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: tinypkg\nVersion: {version}\n"
        )
        wheel.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: unkai-tests\n"
            "Root-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr(
            f"{info}/RECORD",
            f"tinypkg/__init__.py,,\n{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n",
        )
    return name
