"""`Invoker.invoke`: the one way anything runs a function.

Pipeline: resolve the target (stage, function, qualifier) to a FunctionVersion and its Pool
(cached; the registry's change notifications drop stale entries), admit it against the
function's reserved concurrency (Lambda throttles at once, it does not queue), acquire an
instance (waiting while the node is at capacity), run one invocation, record its log lines.

Handler and runtime failures come back as an `InvocationResult` with an error; only platform
refusals (NotFound, Throttled) raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from unkai.deploy.registry import Registry
from unkai.deploy.versions import FunctionVersion
from unkai.errors import NotFound, Throttled
from unkai.invoke.models import Invocation, InvocationMode, InvocationResult
from unkai.invoke.request_ids import new_request_id
from unkai.observe.logs import LogService
from unkai.runtime.pool import Pool
from unkai.runtime.spec import InstanceSpec
from unkai.runtime.supervisor import Supervisor

LATEST = "$LATEST"


@dataclass(frozen=True, slots=True)
class Target:
    """What to run: a function of a stage, optionally a version number (`qualifier`)."""

    stage: str
    function: str
    qualifier: str | None = None


@dataclass(slots=True)
class _Resolved:
    version: FunctionVersion
    spec: InstanceSpec
    pool: Pool
    #: Shared by every qualifier of one function: reserved concurrency is per function.
    concurrency: _Concurrency


@dataclass(slots=True)
class _Concurrency:
    reserved: int | None
    in_flight: int = 0


class Invoker:
    def __init__(
        self,
        registry: Registry,
        supervisor: Supervisor,
        logs: LogService,
        *,
        data_dir: Path,
        region: str,
        account_id: str,
    ) -> None:
        self._registry = registry
        self._supervisor = supervisor
        self._logs = logs
        self._bundles_dir = data_dir / "bundles"
        self._deps_dir = data_dir / "deps"
        self._region = region
        self._account_id = account_id
        self._targets: dict[Target, _Resolved] = {}
        self._concurrency: dict[tuple[str, str], _Concurrency] = {}
        self._background: set[asyncio.Task[None]] = set()
        registry.subscribe(self._on_stage_changed)

    async def invoke(
        self, target: Target, payload: bytes, *, mode: InvocationMode = InvocationMode.SYNC
    ) -> InvocationResult:
        """Run `target` once with `payload` (the JSON event).

        Raises NotFound for an unknown function or version and Throttled when the function's
        reserved concurrency is used up or no instance frees up within its timeout.
        """
        resolved = self._targets.get(target) or await self._resolve(target)
        concurrency = resolved.concurrency
        if concurrency.reserved is not None and concurrency.in_flight >= concurrency.reserved:
            raise Throttled(
                f"Rate Exceeded. Function {target.function} is limited to "
                f"{concurrency.reserved} concurrent executions (reservedConcurrency)"
            )
        concurrency.in_flight += 1
        try:
            timeout_s = resolved.spec.timeout_s
            async with resolved.pool.acquire(time.monotonic() + timeout_s) as instance:
                invocation = Invocation(
                    request_id=new_request_id(),
                    payload=payload,
                    deadline=time.monotonic() + timeout_s,
                    mode=mode,
                )
                result = await instance.invoke(invocation)
                result.executed_version = resolved.spec.version
                self._logs.record_invocation(
                    stage=target.stage,
                    function=target.function,
                    stream=instance.log_stream,
                    version=resolved.spec.version,
                    result=result,
                )
                return result
        finally:
            concurrency.in_flight -= 1

    async def resolve(self, target: Target) -> FunctionVersion:
        """The version `target` runs; raises NotFound (Lambda's DryRun check)."""
        resolved = self._targets.get(target) or await self._resolve(target)
        return resolved.version

    async def _resolve(self, target: Target) -> _Resolved:
        version = await self._registry.get_version(target.stage, target.function, target.qualifier)
        label = LATEST if target.qualifier in (None, LATEST) else version.version
        spec = self.instance_spec(version, label)
        key = (target.stage, target.function)
        concurrency = self._concurrency.get(key)
        if concurrency is None or concurrency.reserved != version.reserved_concurrency:
            concurrency = _Concurrency(reserved=version.reserved_concurrency)
            self._concurrency[key] = concurrency
        resolved = _Resolved(version, spec, self._supervisor.pool_for(spec), concurrency)
        self._targets[target] = resolved
        return resolved

    def instance_spec(self, version: FunctionVersion, label: str) -> InstanceSpec:
        """The runtime's view of a version; `label` is what the function sees as its version."""
        qualified = "" if label == LATEST else f":{label}"
        return InstanceSpec(
            version_key=f"{version.stage}/{version.name}:{label}#{version.config_sha256[:16]}",
            function_name=version.name,
            version=label,
            handler=version.handler,
            task_root=self._bundles_dir / version.code_sha256,
            deps_dir=self._deps_dir / version.deps_sha256 if version.deps_sha256 else None,
            memory_size_mb=version.memory_size_mb,
            timeout_s=version.timeout_s,
            environment=dict(version.environment),
            function_arn=(
                f"arn:aws:lambda:{self._region}:{self._account_id}:function:"
                f"{version.name}{qualified}"
            ),
            log_group=f"/aws/lambda/{version.name}",
            region=self._region,
            runtime=version.runtime,
            stage=version.stage,
        )

    def _on_stage_changed(self, stage: str) -> None:
        """A deploy or remove in `stage`: re-resolve its targets, retire pools of old code.

        Targets whose version is unchanged resolve to the same version key, so their warm
        instances survive a deploy of other functions.
        """
        stale = {t: self._targets.pop(t) for t in list(self._targets) if t.stage == stage}
        if stale:
            task = asyncio.get_running_loop().create_task(self._refresh(stale))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _refresh(self, stale: dict[Target, _Resolved]) -> None:
        for target in stale:
            if target not in self._targets:
                with contextlib.suppress(NotFound):
                    await self._resolve(target)
        current = {r.spec.version_key for r in self._targets.values()}
        for old in {r.spec.version_key for r in stale.values()} - current:
            await self._supervisor.retire(old)
