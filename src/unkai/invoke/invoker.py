"""`Invoker.start` (callbacks) and `Invoker.invoke` (await): the one way anything runs a function.

Pipeline: resolve the target (stage, function, qualifier) to a FunctionVersion and its Pool
(cached; the registry's change notifications drop stale entries; an alias with a routing
configuration resolves to two, and each call draws one by weight), admit it against the
function's reserved concurrency (Lambda throttles at once, it does not queue), acquire an
instance (waiting while the node is at capacity), run one invocation, record its log lines.

Handler and runtime failures come back as an `InvocationResult` with an error; platform
refusals (NotFound, Throttled) are passed to `start`'s callback and raised by `invoke`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unkai.access.aws_keys import FunctionKeys
from unkai.deploy.registry import Registry
from unkai.deploy.versions import Alias, FunctionVersion
from unkai.errors import NotFound, Throttled, UnkaiError
from unkai.invoke.models import Invocation, InvocationMode, InvocationResult, Target
from unkai.invoke.request_ids import new_request_id
from unkai.observe.logs import LogService
from unkai.runtime.instance import Instance
from unkai.runtime.pool import Pool
from unkai.runtime.spec import InstanceSpec
from unkai.runtime.supervisor import Supervisor

LATEST = "$LATEST"


@dataclass(slots=True)
class _Resolved:
    version: FunctionVersion
    spec: InstanceSpec
    pool: Pool
    #: Shared by every qualifier of one function: reserved concurrency is per function.
    concurrency: _Concurrency
    #: An alias's additional version, run by `weight` (0 to 1) of the calls.
    additional: _Resolved | None = None
    weight: float = 0.0

    def version_keys(self) -> set[str]:
        keys = {self.spec.version_key}
        if self.additional is not None:
            keys.add(self.additional.spec.version_key)
        return keys


@dataclass(slots=True)
class _Concurrency:
    reserved: int | None
    in_flight: int = 0


#: Gets the outcome of `Invoker.start`: a result, or the platform's refusal.
InvokeCallback = Callable[[InvocationResult | UnkaiError], None]


class _Call:
    """One invocation in flight through `Invoker.start`, as plain callbacks."""

    __slots__ = (
        "adapter",
        "done",
        "instance",
        "invoker",
        "mode",
        "payload",
        "request_id",
        "resolved",
        "target",
    )

    def __init__(
        self,
        invoker: Invoker,
        resolved: _Resolved,
        target: Target,
        payload: bytes,
        mode: InvocationMode,
        done: InvokeCallback,
        request_id: str | None = None,
        adapter: str = "",
    ) -> None:
        self.request_id = request_id
        self.adapter = adapter
        self.invoker = invoker
        self.resolved = resolved
        self.target = target
        self.payload = payload
        self.mode = mode
        self.done = done
        self.instance: Instance | None = None

    def admit(self) -> None:
        """Lambda throttles at once on reserved concurrency; it does not queue."""
        concurrency = self.resolved.concurrency
        if concurrency.reserved is not None and concurrency.in_flight >= concurrency.reserved:
            self.done(
                Throttled(
                    f"Rate Exceeded. Function {self.target.function} is limited to "
                    f"{concurrency.reserved} concurrent executions (reservedConcurrency)"
                )
            )
            return
        concurrency.in_flight += 1
        self.resolved.pool.lend(time.monotonic() + self.resolved.spec.timeout_s, self.on_instance)

    def on_instance(self, outcome: Instance | UnkaiError) -> None:
        if isinstance(outcome, UnkaiError):
            self.resolved.concurrency.in_flight -= 1
            self.done(outcome)
            return
        self.instance = outcome
        request_id = self.request_id
        if request_id is None:  # kept: a call handed back unstarted keeps its id
            request_id = self.request_id = new_request_id()
        invocation = Invocation(  # positional: keyword arguments cost ~50 ns each
            request_id,
            self.payload,
            time.monotonic() + self.resolved.spec.timeout_s,
            self.mode,
            1,
            None,
            None,
            self.adapter,
        )
        outcome.begin(invocation, self.on_result)

    def on_result(self, result: InvocationResult) -> None:
        instance = self.instance
        assert instance is not None
        resolved = self.resolved
        if not result.started:
            # Queued on an instance that failed before starting it: it never ran, so it
            # waits for another instance as a new call would (it stays admitted).
            resolved.pool.release(instance)
            self.instance = None
            resolved.pool.lend_again(self.on_instance)
            return
        resolved.concurrency.in_flight -= 1
        resolved.pool.release(instance)
        result.executed_version = resolved.spec.version
        # Positional: keyword arguments cost ~50 ns each, and this runs per invocation.
        self.invoker._logs.record_invocation(
            self.target.stage,
            self.target.function,
            instance.log_stream,
            result,
            resolved.spec.version,
        )
        self.done(result)


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
        function_keys: FunctionKeys | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._registry = registry
        #: A uniform number in [0, 1) per call of a weighted alias (a seeded one in tests).
        self._draw = draw
        self._supervisor = supervisor
        self._logs = logs
        self._bundles_dir = data_dir / "bundles"
        self._deps_dir = data_dir / "deps"
        self._region = region
        self._account_id = account_id
        self._targets: dict[Target, _Resolved] = {}
        self._concurrency: dict[tuple[str, str], _Concurrency] = {}
        self._background: set[asyncio.Task[Any]] = set()
        #: Set by `serve` once the platform listens (see InstanceSpec.aws_endpoint).
        self.aws_endpoint = ""
        self._function_keys = function_keys or FunctionKeys()
        registry.subscribe(self._on_stage_changed)

    def start(
        self,
        target: Target,
        payload: bytes,
        done: InvokeCallback,
        *,
        mode: InvocationMode = InvocationMode.SYNC,
        request_id: str | None = None,
        adapter: str = "",
    ) -> None:
        """Run `target` once with `payload` (the JSON event); `done` gets the outcome.
        `request_id` is the id the function sees (an asynchronous event keeps its own).
        With `adapter` (a module, see `unkai.runtime.adapters`) the payload is what it makes
        the event of, and a result's payload is what it made of the handler's result.

        The outcome is an InvocationResult (handler and runtime errors included), or the
        refusal: NotFound for an unknown function or version, Throttled when the function's
        reserved concurrency is used up or no instance frees up within its timeout. With a
        cached target and an idle instance, nothing here awaits: the front doors' hot path
        (a weighted alias adds one random draw).
        """
        resolved = self._targets.get(target)
        if resolved is not None:
            if resolved.additional is not None and self._draw() < resolved.weight:
                resolved = resolved.additional
            _Call(self, resolved, target, payload, mode, done, request_id, adapter).admit()
            return
        task = asyncio.get_running_loop().create_task(self._resolve(target))
        self._background.add(task)

        def resolved_then_start(finished: asyncio.Task[_Resolved]) -> None:
            self._background.discard(task)
            error = finished.exception()
            if error is None:
                resolved = finished.result()
                if resolved.additional is not None and self._draw() < resolved.weight:
                    resolved = resolved.additional
                _Call(self, resolved, target, payload, mode, done, request_id, adapter).admit()
            elif isinstance(error, UnkaiError):
                done(error)
            else:
                raise error

        task.add_done_callback(resolved_then_start)

    async def invoke(
        self, target: Target, payload: bytes, *, mode: InvocationMode = InvocationMode.SYNC
    ) -> InvocationResult:
        """`start` for callers that await; raises the refusals instead of passing them."""
        future: asyncio.Future[InvocationResult | UnkaiError] = (
            asyncio.get_running_loop().create_future()
        )

        def deliver(outcome: InvocationResult | UnkaiError) -> None:
            if not future.done():
                future.set_result(outcome)

        self.start(target, payload, deliver, mode=mode)
        outcome = await future
        if isinstance(outcome, UnkaiError):
            raise outcome
        return outcome

    def function_arn(self, function: str, qualifier: str | None = None) -> str:
        qualified = f":{qualifier}" if qualifier not in (None, LATEST) else ""
        return f"arn:aws:lambda:{self._region}:{self._account_id}:function:{function}{qualified}"

    def known_timeout_s(self, target: Target) -> float | None:
        """The function's timeout if `target` was resolved before (no lookup), else None."""
        resolved = self._targets.get(target)
        return resolved.spec.timeout_s if resolved is not None else None

    async def resolve(self, target: Target) -> FunctionVersion:
        """The version `target` runs (an alias's FunctionVersion); raises NotFound (Lambda's
        DryRun check)."""
        resolved = self._targets.get(target) or await self._resolve(target)
        return resolved.version

    async def _resolve(self, target: Target) -> _Resolved:
        """An alias resolves to its FunctionVersion and, with a routing configuration, its
        additional version and weight; the versions' pools are those of the versions."""
        alias = await self._alias(target)
        qualifier = alias.function_version if alias is not None else target.qualifier
        resolved = await self._resolve_version(target.stage, target.function, qualifier)
        if alias is not None and alias.additional_version is not None:
            additional = await self._resolve_version(
                target.stage, target.function, alias.additional_version
            )
            resolved = dataclasses.replace(
                resolved, additional=additional, weight=alias.additional_weight
            )
        self._targets[target] = resolved
        return resolved

    async def _alias(self, target: Target) -> Alias | None:
        qualifier = target.qualifier
        if qualifier is None or qualifier == LATEST or qualifier.isdigit():
            return None
        return await self._registry.get_alias(target.stage, target.function, qualifier)

    async def _resolve_version(self, stage: str, function: str, qualifier: str | None) -> _Resolved:
        version = await self._registry.get_version(stage, function, qualifier)
        label = LATEST if qualifier in (None, LATEST) else version.version
        spec = self.instance_spec(version, label)
        key = (stage, function)
        concurrency = self._concurrency.get(key)
        if concurrency is None or concurrency.reserved != version.reserved_concurrency:
            concurrency = _Concurrency(reserved=version.reserved_concurrency)
            self._concurrency[key] = concurrency
        return _Resolved(version, spec, self._supervisor.pool_for(spec), concurrency)

    def instance_spec(self, version: FunctionVersion, label: str) -> InstanceSpec:
        """The runtime's view of a version; `label` is what the function sees as its version."""
        qualified = "" if label == LATEST else f":{label}"
        key = self._function_keys.key_for(version.stage, version.name)
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
            aws_endpoint=self.aws_endpoint,
            aws_credentials=(key.access_key_id, key.secret_access_key),
        )

    def _on_stage_changed(self, stage: str) -> asyncio.Task[None] | None:
        """A deploy or remove in `stage`: re-resolve its targets, retire pools of old code.

        Targets whose version is unchanged resolve to the same version key, so their warm
        instances survive a deploy of other functions.
        """
        stale = {t: self._targets.pop(t) for t in list(self._targets) if t.stage == stage}
        if stale:
            task = asyncio.get_running_loop().create_task(self._refresh(stale))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return task
        return None

    async def _refresh(self, stale: dict[Target, _Resolved]) -> None:
        for target in stale:
            if target not in self._targets:
                with contextlib.suppress(NotFound):
                    await self._resolve(target)
        current = {key for r in self._targets.values() for key in r.version_keys()}
        for old in {key for r in stale.values() for key in r.version_keys()} - current:
            await self._supervisor.retire(old)
