"""`Deployer`: the one deploy and remove entry point for every front door.

deploy: load the manifest (`load_app`, so the CLI, the control API and `unkai up` all report
the same errors) -> plan -> apply (or describe, for a dry run). A commit that lost a race with
another deploy to the same stage is planned again, up to `max_attempts` times: the new plan
sees the other deploy's result, and since bundles are content-addressed, nothing is copied
twice. Deploys within one process are serialized by a lock, so only other processes race.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from unkai.backends.base import MetadataStore
from unkai.config.load import app_dir_of, load_app
from unkai.config.spec import AppSpec
from unkai.config.spec_base import NAME_PATTERN
from unkai.deploy.apply import Applier, ConcurrentDeploy, DryRunApplier
from unkai.deploy.plan import Plan, plan_deploy, plan_remove
from unkai.deploy.registry import Registry
from unkai.deploy.requirements import RequirementsInstaller
from unkai.deploy.result import DeployResult
from unkai.errors import ConfigError

DEFAULT_MAX_ATTEMPTS = 3
PlanFactory = Callable[[], Awaitable[Plan]]


class Resources(Protocol):
    """Platform-wide things an app declares (queues): made to exist before its plan applies,
    since its mappings name them. Returns what it did (or would do, in a dry run)."""

    async def provision(self, app: AppSpec, *, dry_run: bool) -> list[str]: ...


class Deployer:
    def __init__(
        self,
        store: MetadataStore,
        registry: Registry,
        data_dir: Path,
        *,
        installer: RequirementsInstaller | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        resources: Resources | None = None,
    ) -> None:
        self._registry = registry
        self._data_dir = data_dir
        self._applier = Applier(store, data_dir, registry, installer=installer)
        self._dry_run = DryRunApplier()
        self._max_attempts = max_attempts
        self._lock = asyncio.Lock()
        self._resources = resources

    async def deploy(self, app_dir: Path, stage: str, dry_run: bool = False) -> DeployResult:
        """Deploy the app at `app_dir` (directory or manifest file) to `stage`.

        Raises ConfigError (manifest, files, pip), Conflict (a name owned by another service,
        or a race lost `max_attempts` times). Idempotent: an unchanged app changes nothing.
        """
        _check_name(stage, "stage")
        app = await asyncio.to_thread(load_app, app_dir)
        directory = (await asyncio.to_thread(app_dir_of, app_dir)).resolve()
        data_dir = self._data_dir.resolve()
        async with self._lock:
            provisioned = (
                await self._resources.provision(app, dry_run=dry_run)
                if self._resources is not None
                else []
            )
            result = await self._run(
                lambda: plan_deploy(app, directory, stage, self._registry, data_dir), dry_run
            )
        if not provisioned:
            return result
        return dataclasses.replace(result, steps=(*provisioned, *result.steps), changed=True)

    async def remove(self, stage: str, service: str, dry_run: bool = False) -> DeployResult:
        """Remove `service` from `stage`. Raises NotFound when it is not deployed there."""
        _check_name(stage, "stage")
        _check_name(service, "service")
        async with self._lock:
            return await self._run(lambda: plan_remove(stage, service, self._registry), dry_run)

    async def _run(self, make_plan: PlanFactory, dry_run: bool) -> DeployResult:
        attempt = 1
        while True:
            plan = await make_plan()
            if dry_run:
                return await self._dry_run.apply(plan)
            try:
                result = await self._applier.apply(plan)
            except ConcurrentDeploy:
                if attempt >= self._max_attempts:
                    raise
                attempt += 1
                continue
            # Return once the new routes serve and the event sources run: a client that
            # deploys and then calls must not get the old routes (or a 404).
            await self._registry.settled()
            return result


def _check_name(value: str, field: str) -> None:
    if not NAME_PATTERN.match(value):
        raise ConfigError(
            f"must be 1 to 64 letters, digits, '-' or '_', got {value!r}", field=field
        )
