"""Execute a `Plan`: `Applier` does it, `DryRunApplier` only reports it.

Order: file steps first (bundle copy, pip install); they are content-addressed, so a failure
later leaves nothing wrong behind, only a directory a later deploy reuses. Then every metadata
write in ONE `commit` whose expected revisions (the stage document's above all) make a deploy
that raced with another fail as a whole with `ConcurrentDeploy`. Then the registry is
invalidated, which notifies the gateway and the invoker.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from unkai.backends.base import MetadataStore, Write
from unkai.deploy.plan import Plan
from unkai.deploy.registry import Registry
from unkai.deploy.requirements import RequirementsInstaller
from unkai.deploy.result import DeployResult
from unkai.deploy.steps import InstallRequirements, StoreBundle
from unkai.errors import Conflict


class ConcurrentDeploy(Conflict):
    """The stage changed between planning and commit; planning again resolves it."""


class Applier:
    def __init__(
        self,
        store: MetadataStore,
        data_dir: Path,
        registry: Registry,
        *,
        installer: RequirementsInstaller | None = None,
    ) -> None:
        self._store = store
        self._bundles_dir = data_dir / "bundles"
        self._registry = registry
        self._installer = installer or RequirementsInstaller(data_dir / "deps")

    async def apply(self, plan: Plan) -> DeployResult:
        """Run the plan. Raises ConfigError (files, pip) or ConcurrentDeploy (nothing committed)."""
        for step in plan.steps:
            if isinstance(step, StoreBundle):
                await asyncio.to_thread(step.bundle.store, self._bundles_dir)
            elif isinstance(step, InstallRequirements):
                await self._installer.install(step.requirements, step.app_dir)
        writes = plan.writes()
        if writes:
            await asyncio.shield(self._commit(plan, writes))
        return plan.result(dry_run=False)

    async def _commit(self, plan: Plan, writes: list[Write]) -> None:
        try:
            await self._store.commit(writes)
        except Conflict as exc:
            raise ConcurrentDeploy(
                f"stage {plan.stage!r} changed while deploying {plan.service!r}: {exc.message}",
                hint="another deploy or remove finished first; run the command again",
            ) from exc
        self._registry.invalidate(plan.stage)


class DryRunApplier:
    """The same plan, described and not executed: writes no file and no document."""

    async def apply(self, plan: Plan) -> DeployResult:
        return plan.result(dry_run=True)
