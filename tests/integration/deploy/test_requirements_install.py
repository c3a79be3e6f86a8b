"""Requirements: installed by real pip (offline, from a local wheel), once per content hash."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.deploy.harness import HELLO, running_node, write_app, write_tiny_wheel
from unkai.errors import ConfigError


def app_with_requirements(root: Path, version: str = "0.1.0") -> Path:
    wheel = write_tiny_wheel(root / "vendor", version)
    # --no-index keeps pip off the network; the path is relative to the app directory.
    return write_app(root, HELLO, {"requirements.txt": f"--no-index\n./vendor/{wheel}\n"})


def test_requirements_are_installed_once_per_hash(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = app_with_requirements(tmp_path / "app")
        async with running_node(tmp_path / "data") as node:
            # Given a first deploy that installs the requirements
            first = await node.deployer.deploy(app, "dev")
            version = await node.registry.get_version("dev", "hello")
            assert version.deps_sha256 is not None
            deps = tmp_path / "data" / "deps" / version.deps_sha256
            assert (deps / "tinypkg" / "__init__.py").read_text() == "VERSION = '0.1.0'\n"
            assert any(step.startswith("install requirements.txt") for step in first.steps)
            mtime_ns = deps.stat().st_mtime_ns
            # When the same requirements are deployed to another stage
            second = await node.deployer.deploy(app, "prod")
            # Then pip does not run again and both versions share the deps directory
            assert not any(step.startswith("install ") for step in second.steps)
            assert (
                await node.registry.get_version("prod", "hello")
            ).deps_sha256 == version.deps_sha256
            assert deps.stat().st_mtime_ns == mtime_ns
            assert sorted(p.name for p in (tmp_path / "data" / "deps").iterdir()) == [deps.name]

    asyncio.run(scenario())


def test_changed_requirements_install_again_and_publish(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = app_with_requirements(tmp_path / "app")
        async with running_node(tmp_path / "data") as node:
            await node.deployer.deploy(app, "dev")
            app_with_requirements(app, "0.2.0")
            result = await node.deployer.deploy(app, "dev")
            version = await node.registry.get_version("dev", "hello")
            assert [(f.version, f.status) for f in result.functions] == [("2", "new")]
            deps = tmp_path / "data" / "deps" / str(version.deps_sha256)
            assert (deps / "tinypkg" / "__init__.py").read_text() == "VERSION = '0.2.0'\n"

    asyncio.run(scenario())


def test_pip_failure_names_the_file_and_quotes_pip(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = write_app(
            tmp_path / "app",
            HELLO,
            {"requirements.txt": "--no-index\nno-such-package-unkai==1.0\n"},
        )
        async with running_node(tmp_path / "data") as node:
            with pytest.raises(ConfigError) as caught:
                await node.deployer.deploy(app, "dev")
            message = str(caught.value)
            assert message.startswith("requirements.txt: pip install failed (exit status 1)")
            assert "No matching distribution found for no-such-package-unkai==1.0" in message
            # And nothing was published nor left half-installed
            assert await node.backend.list("function") == []
            assert list((tmp_path / "data" / "deps").iterdir()) == []

    asyncio.run(scenario())


def test_explicit_requirements_turn_the_app_wide_default_off(tmp_path: Path) -> None:
    async def scenario() -> None:
        # Given requirements.txt named by function uses only
        app = app_with_requirements(tmp_path / "app")
        manifest = (
            "service: deps\nfunctions:\n  uses:\n    handler: handler.hello\n"
            "    requirements: requirements.txt\n  plain:\n    handler: handler.hello\n"
        )
        write_app(app, manifest)
        async with running_node(tmp_path / "data") as node:
            await node.deployer.deploy(app, "dev")
            # Then only uses gets the dependencies
            assert (await node.registry.get_version("dev", "uses")).deps_sha256 is not None
            assert (await node.registry.get_version("dev", "plain")).deps_sha256 is None

    asyncio.run(scenario())
