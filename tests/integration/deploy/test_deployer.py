"""Deploy, redeploy, stages, removal, conflicts and dry runs, on the real sqlite backend."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.deploy.harness import HELLO, running_node, write_app
from unkai.deploy.apply import Applier, ConcurrentDeploy
from unkai.deploy.plan import plan_deploy
from unkai.errors import ConfigError, Conflict, NotFound

TWO_FUNCTIONS = """\
service: shop
functions:
  list:
    handler: handler.hello
    events:
      - http: GET /items
  get:
    handler: handler.hello
    timeout: 5
    events:
      - http: GET /items/{id}
"""


def test_first_deploy_publishes_version_1(tmp_path: Path) -> None:
    async def scenario() -> None:
        # Given an app and an empty platform
        app = write_app(tmp_path / "app")
        async with running_node(tmp_path / "data") as node:
            # When it is deployed
            result = await node.deployer.deploy(app, "dev")
            # Then version 1 is published with its route and code bundle
            assert result.changed and [(f.name, f.version, f.status) for f in result.functions] == [
                ("hello", "1", "new")
            ]
            version = await node.registry.get_version("dev", "hello")
            assert (version.version, version.handler, version.memory_size_mb) == (
                "1",
                "handler.hello",
                128,
            )
            assert (await node.registry.get_version("dev", "hello", "1")) == version
            assert [(r.method, r.path, r.function) for r in await node.registry.routes("dev")] == [
                ("GET", "/hello", "hello")
            ]
            assert await node.registry.stages() == ["dev"]
            bundle = tmp_path / "data" / "bundles" / version.code_sha256
            assert (bundle / "handler.py").read_text().startswith("def hello")
            assert result.steps[1] == (
                f"publish hello version 1 (code {version.code_sha256[:8]}, 128 MB, 3 s)"
            )

    asyncio.run(scenario())


def test_unchanged_redeploy_publishes_and_copies_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        # Given a deployed app
        app = write_app(tmp_path / "app")
        async with running_node(tmp_path / "data") as node:
            await node.deployer.deploy(app, "dev")
            version = await node.registry.get_version("dev", "hello")
            bundle = tmp_path / "data" / "bundles" / version.code_sha256
            mtime_ns = bundle.stat().st_mtime_ns
            docs = await node.backend.list("function")
            # When it is deployed again unchanged
            result = await node.deployer.deploy(app, "dev")
            # Then nothing is published, copied or written
            assert (result.changed, result.steps) == (False, ())
            assert [(f.version, f.status) for f in result.functions] == [("1", "unchanged")]
            assert bundle.stat().st_mtime_ns == mtime_ns
            assert await node.backend.list("function") == docs

    asyncio.run(scenario())


def test_changed_code_publishes_version_2_and_keeps_version_1(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = write_app(tmp_path / "app")
        async with running_node(tmp_path / "data") as node:
            await node.deployer.deploy(app, "dev")
            # When the code changes
            (app / "handler.py").write_text("def hello(event, context):\n    return 2\n")
            result = await node.deployer.deploy(app, "dev")
            # Then version 2 is latest and version 1 still resolves to the old code
            assert [(f.version, f.status) for f in result.functions] == [("2", "new")]
            latest = await node.registry.get_version("dev", "hello", "$LATEST")
            first = await node.registry.get_version("dev", "hello", "1")
            assert latest.version == "2" and latest.code_sha256 != first.code_sha256

    asyncio.run(scenario())


def test_config_change_republishes_only_that_function(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = write_app(tmp_path / "app", TWO_FUNCTIONS)
        async with running_node(tmp_path / "data") as node:
            await node.deployer.deploy(app, "dev")
            # When only get's timeout changes
            write_app(app, TWO_FUNCTIONS.replace("timeout: 5", "timeout: 6"))
            result = await node.deployer.deploy(app, "dev")
            # Then get gets version 2 and list stays at version 1
            outcomes = {f.name: (f.version, f.status) for f in result.functions}
            assert outcomes == {"list": ("1", "unchanged"), "get": ("2", "new")}
            assert (await node.registry.get_version("dev", "get")).timeout_s == 6

    asyncio.run(scenario())


def test_reserved_concurrency_change_updates_without_a_version(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = write_app(tmp_path / "app")
        async with running_node(tmp_path / "data") as node:
            await node.deployer.deploy(app, "dev")
            changed: list[str] = []
            node.registry.subscribe(changed.append)
            write_app(
                app, HELLO.replace("handler.hello\n", "handler.hello\n    reservedConcurrency: 2\n")
            )
            result = await node.deployer.deploy(app, "dev")
            assert [(f.version, f.status) for f in result.functions] == [("1", "updated")]
            assert "update hello: reserved concurrency none -> 2" in result.steps
            assert (await node.registry.get_version("dev", "hello", "1")).reserved_concurrency == 2
            assert changed == ["dev"]

    asyncio.run(scenario())


def test_stages_are_separate_namespaces(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = write_app(tmp_path / "app")
        async with running_node(tmp_path / "data") as node:
            # Given the app in dev at version 2
            await node.deployer.deploy(app, "dev")
            (app / "handler.py").write_text("def hello(event, context):\n    return 2\n")
            await node.deployer.deploy(app, "dev")
            # When the same app goes to prod
            result = await node.deployer.deploy(app, "prod")
            # Then prod has its own version 1, and removing it leaves dev alone
            assert [(f.version, f.status) for f in result.functions] == [("1", "new")]
            assert await node.registry.stages() == ["dev", "prod"]
            await node.deployer.remove("prod", "hello")
            assert await node.registry.stages() == ["dev"]
            assert (await node.registry.get_version("dev", "hello")).version == "2"
            with pytest.raises(NotFound):
                await node.registry.get_version("prod", "hello")

    asyncio.run(scenario())


def test_function_removed_from_the_manifest_is_deleted(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = write_app(tmp_path / "app", TWO_FUNCTIONS)
        async with running_node(tmp_path / "data") as node:
            await node.deployer.deploy(app, "dev")
            # When function get is dropped from the manifest
            write_app(app, TWO_FUNCTIONS.split("  get:")[0])
            result = await node.deployer.deploy(app, "dev")
            # Then it, its versions and its route are gone
            assert "remove get and its 1 version(s)" in result.steps
            assert [f.name for f in await node.registry.list_functions("dev")] == ["list"]
            assert [r.path for r in await node.registry.routes("dev")] == ["/items"]
            assert await node.backend.list("version", "dev/get/") == []

    asyncio.run(scenario())


def test_names_owned_by_another_service_conflict(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path / "data") as node:
            await node.deployer.deploy(write_app(tmp_path / "a"), "dev")
            # When service other deploys a function named hello
            other = write_app(tmp_path / "b", HELLO.replace("service: hello", "service: other"))
            with pytest.raises(Conflict) as function_clash:
                await node.deployer.deploy(other, "dev")
            # And when it routes GET /hello to a function of its own
            renamed = HELLO.replace("service: hello", "service: other").replace("  hello:", "  hi:")
            with pytest.raises(Conflict) as route_clash:
                await node.deployer.deploy(write_app(tmp_path / "b", renamed), "dev")
            # Then both errors name both services, and nothing was written for other
            assert str(function_clash.value) == (
                "function 'hello' in stage 'dev' belongs to service 'hello'; service 'other' "
                "cannot deploy a function of the same name"
            )
            assert str(route_clash.value) == (
                "route GET /hello in stage 'dev' belongs to service 'hello' (function 'hello'); "
                "service 'other' cannot route it to function 'hi'"
            )
            assert await node.backend.get("service", "dev/other") is None
            # But another stage is free
            assert (await node.deployer.deploy(other, "test")).changed

    asyncio.run(scenario())


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = write_app(tmp_path / "app")
        async with running_node(tmp_path / "data") as node:
            result = await node.deployer.deploy(app, "dev", dry_run=True)
            assert result.dry_run and result.changed
            assert result.steps[0].startswith("store code ")
            assert not (tmp_path / "data" / "bundles").exists()
            for kind in ("stage", "service", "function", "version", "routes"):
                assert await node.backend.list(kind) == []
            # And the real deploy performs the same plan
            assert (await node.deployer.deploy(app, "dev")).steps == result.steps

    asyncio.run(scenario())


def test_remove_dry_run_and_unknown_service(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path / "data") as node:
            await node.deployer.deploy(write_app(tmp_path / "app"), "dev")
            preview = await node.deployer.remove("dev", "hello", dry_run=True)
            assert preview.steps == (
                "remove hello and its 1 version(s)",
                "remove the routes of hello",
                "remove service hello from stage dev",
            )
            assert (await node.registry.get_version("dev", "hello")).version == "1"
            with pytest.raises(NotFound) as caught:
                await node.deployer.remove("dev", "nope")
            assert str(caught.value) == "service 'nope' is not deployed in stage 'dev'"

    asyncio.run(scenario())


def test_unknown_function_and_version_are_not_found(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path / "data") as node:
            await node.deployer.deploy(write_app(tmp_path / "app"), "dev")
            with pytest.raises(NotFound) as missing:
                await node.registry.get_version("dev", "nope")
            with pytest.raises(NotFound) as no_version:
                await node.registry.get_version("dev", "hello", "7")
            assert str(missing.value) == (
                "function 'nope' (qualifier '$LATEST') not found in stage 'dev'"
            )
            assert missing.value.hint == "unkai ls --stage dev"
            assert str(no_version.value) == (
                "function 'hello' has no version '7' in stage 'dev' (latest is 1)"
            )

    asyncio.run(scenario())


def test_state_survives_reopening_the_backend(tmp_path: Path) -> None:
    async def deploy() -> None:
        async with running_node(tmp_path / "data") as node:
            await node.deployer.deploy(write_app(tmp_path / "app"), "dev")

    async def reopen() -> None:
        async with running_node(tmp_path / "data") as node:
            assert (await node.registry.get_version("dev", "hello")).version == "1"
            assert [r.path for r in await node.registry.routes("dev")] == ["/hello"]
            assert not (await node.deployer.deploy(tmp_path / "app", "dev")).changed

    asyncio.run(deploy())
    asyncio.run(reopen())


def test_a_deploy_that_lost_a_race_commits_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = write_app(tmp_path / "app")
        from unkai.config.load import load_app

        async with running_node(tmp_path / "data") as node:
            data_dir = (tmp_path / "data").resolve()
            # Given two plans made from the same state
            spec = load_app(app)
            first = await plan_deploy(spec, app.resolve(), "dev", node.registry, data_dir)
            second = await plan_deploy(spec, app.resolve(), "dev", node.registry, data_dir)
            applier = Applier(node.backend, data_dir, node.registry)
            await applier.apply(first)
            # When the second is applied, Then it fails as a whole
            with pytest.raises(ConcurrentDeploy):
                await applier.apply(second)
            assert len(await node.backend.list("version")) == 1

    asyncio.run(scenario())


def test_manifest_errors_surface_through_deploy(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = write_app(
            tmp_path / "app", HELLO.replace("handler.hello", "handler.hello\n    timeout: 0")
        )
        async with running_node(tmp_path / "data") as node:
            with pytest.raises(ConfigError) as caught:
                await node.deployer.deploy(app, "dev")
            assert str(caught.value) == (
                "unkai.yml:5: functions.hello.timeout: must be between 1 and 900, got 0"
            )
            with pytest.raises(ConfigError):
                await node.deployer.deploy(app, "bad/stage")

    asyncio.run(scenario())


def test_a_deploy_returns_once_its_listeners_caught_up(tmp_path: Path) -> None:
    async def scenario() -> None:
        # Given a listener (as the gateway's route compiler) that takes a while to catch up
        app = write_app(tmp_path / "app")
        async with running_node(tmp_path / "data") as node:
            caught_up: list[str] = []

            async def compile_routes(stage: str) -> None:
                await asyncio.sleep(0.2)
                caught_up.append(stage)

            node.registry.subscribe(
                lambda stage: asyncio.get_running_loop().create_task(compile_routes(stage))
            )
            # When an app is deployed, then by the time the deploy returns it has caught up
            await node.deployer.deploy(app, "dev")
            assert caught_up == ["dev"]
            # And a listener that starts nothing does not hold a deploy up
            node.registry.subscribe(lambda stage: None)
            await node.deployer.remove("dev", "hello")
            assert caught_up == ["dev", "dev"]

    asyncio.run(scenario())
