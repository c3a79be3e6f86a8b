"""Plan a deploy or a remove: read everything, decide, return a `Plan` of frozen steps.

Deploy pipeline: scan and hash the code (`CodeBundle.scan`) and the requirements files ->
read a fresh `StageSnapshot` -> check that no other service owns our names (`ownership.py`)
-> read the latest version of each function -> decide (`build_deploy_plan`, pure):
  StoreBundle          the bundle directory does not exist yet
  InstallRequirements  a deps directory does not exist yet (one step per distinct hash)
  PublishVersion       the function is new or its config hash differs from its latest version
  UpdateFunction       only reserved concurrency or description changed
  RemoveFunction       a function of this service is no longer in the manifest (with its
                       versions and aliases)
  PutRoutes            the service's routes differ from the stored ones
  PutService           anything above changed, or the service record itself did
An unchanged app yields no steps: nothing is copied, installed, published or written.

The plan is data: `Applier` executes it, `DryRunApplier` only describes it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from unkai.backends.base import Write
from unkai.config.checks import requirements_file
from unkai.config.http_api import RouteAuthorizer, ScheduleConfig, canonical_json
from unkai.config.http_spec import RouteAuthorizerSpec
from unkai.config.queue_config import QueueMappingConfig
from unkai.config.spec import AppSpec, ResolvedFunction
from unkai.config.topic_config import SubscriptionConfig
from unkai.deploy import versions as layout
from unkai.deploy.bundle import CodeBundle
from unkai.deploy.ownership import check_ownership
from unkai.deploy.registry import Registry
from unkai.deploy.requirements import Requirements
from unkai.deploy.result import DeployResult, FunctionOutcome
from unkai.deploy.snapshot import (
    StageSnapshot,
    alias_revisions,
    latest_versions,
    version_revisions,
)
from unkai.deploy.steps import (
    InstallRequirements,
    PublishVersion,
    PutRoutes,
    PutService,
    RemoveFunction,
    Step,
    StoreBundle,
    UpdateFunction,
)
from unkai.deploy.versions import (
    SCHEDULE_METHOD,
    SNS_METHOD,
    SQS_METHOD,
    WEBSOCKET_METHOD,
    FunctionRecord,
    FunctionVersion,
    Route,
    ServiceRecord,
)
from unkai.errors import NotFound


@dataclass(frozen=True, slots=True)
class Plan:
    stage: str
    service: str
    steps: tuple[Step, ...]
    functions: tuple[FunctionOutcome, ...]
    routes: tuple[Route, ...]
    #: Revision of the stage document read by the planner: the commit's concurrency guard.
    stage_revision: int
    #: Services of the stage after the plan; empty deletes the stage document.
    stage_services: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.steps)

    def describe(self) -> tuple[str, ...]:
        return tuple(step.describe() for step in self.steps)

    def writes(self) -> list[Write]:
        """Every metadata write of the plan plus the stage guard; [] when nothing is written."""
        writes = [w for step in self.steps for w in step.writes()]
        if writes:
            value = {"services": sorted(self.stage_services)} if self.stage_services else None
            writes.append(
                Write(layout.STAGE, layout.stage_key(self.stage), value, self.stage_revision)
            )
        return writes

    def result(self, *, dry_run: bool) -> DeployResult:
        return DeployResult(
            self.service,
            self.stage,
            self.functions,
            self.routes,
            self.describe(),
            self.changed,
            dry_run,
        )


@dataclass(frozen=True, slots=True)
class DeployFacts:
    """Everything the pure planner needs, gathered by `plan_deploy`."""

    app: AppSpec
    app_dir: Path
    functions: tuple[ResolvedFunction, ...]
    bundle: CodeBundle
    bundle_stored: bool
    requirements: Mapping[str, Requirements | None]
    deps_installed: frozenset[str]
    snapshot: StageSnapshot
    latest: Mapping[str, FunctionVersion]
    removed_versions: Mapping[str, tuple[tuple[str, int], ...]]
    now_ms: int
    #: (key, revision) of the aliases of each removed function.
    removed_aliases: Mapping[str, tuple[tuple[str, int], ...]] = dataclasses.field(
        default_factory=dict
    )


async def plan_deploy(
    app: AppSpec, app_dir: Path, stage: str, registry: Registry, data_dir: Path
) -> Plan:
    """Plan deploying `app` (from `app_dir`) to `stage`. Raises Conflict; writes nothing."""
    functions = tuple(app.resolved_functions())
    bundle = await asyncio.to_thread(CodeBundle.scan, app_dir, exclude=[data_dir])
    requirements = await asyncio.to_thread(_read_requirements, functions, app_dir)
    snapshot = await registry.snapshot(stage)
    check_ownership(app.service, functions, snapshot)
    names = {fn.name for fn in functions}
    removed = [n for n in snapshot.functions_of(app.service) if n not in names]
    facts = DeployFacts(
        app=app,
        app_dir=app_dir,
        functions=functions,
        bundle=bundle,
        bundle_stored=bundle.path_in(data_dir / "bundles").is_dir(),
        requirements=requirements,
        deps_installed=frozenset(
            r.sha256
            for r in requirements.values()
            if r is not None and r.path_in(data_dir / "deps").is_dir()
        ),
        snapshot=snapshot,
        latest=await latest_versions(registry.store, snapshot, names),
        removed_versions={n: await version_revisions(registry.store, stage, n) for n in removed},
        now_ms=int(time.time() * 1000),
        removed_aliases={n: await alias_revisions(registry.store, stage, n) for n in removed},
    )
    return build_deploy_plan(facts)


def build_deploy_plan(facts: DeployFacts) -> Plan:
    """Decide the steps (see the module docstring); pure."""
    steps: list[Step] = [*_file_steps(facts)]
    outcomes: list[FunctionOutcome] = []
    for fn in facts.functions:
        step, outcome = _function_step(facts, fn)
        steps.extend([step] if step is not None else [])
        outcomes.append(outcome)
    for name, versions in facts.removed_versions.items():
        revision = facts.snapshot.functions[name].revision
        aliases = facts.removed_aliases.get(name, ())
        steps.append(RemoveFunction(facts.snapshot.stage, name, revision, versions, aliases))
        outcomes.append(
            FunctionOutcome(name, facts.snapshot.functions[name].value.latest_version, "removed")
        )
    routes = _routes(facts)
    stored_routes = facts.snapshot.routes.get(facts.app.service)
    if routes != (stored_routes.value if stored_routes else ()):
        revision = stored_routes.revision if stored_routes else 0
        steps.append(PutRoutes(facts.snapshot.stage, facts.app.service, routes, revision))
    service_step = _service_step(facts, metadata_changed=any(s.writes() for s in steps))
    steps.extend([service_step] if service_step is not None else [])
    services = {*facts.snapshot.stage_record.value.services, facts.app.service}
    return Plan(
        facts.snapshot.stage,
        facts.app.service,
        tuple(steps),
        tuple(outcomes),
        routes,
        facts.snapshot.stage_record.revision,
        tuple(sorted(services)),
    )


async def plan_remove(stage: str, service: str, registry: Registry) -> Plan:
    """Plan removing `service` from `stage`: its functions, versions, routes and record.

    Raises NotFound when the service is not deployed there.
    """
    snapshot = await registry.snapshot(stage)
    service_doc = snapshot.services.get(service)
    if service_doc is None:
        raise NotFound(
            f"service {service!r} is not deployed in stage {stage!r}",
            hint=f"unkai ls --stage {stage}",
        )
    steps: list[Step] = []
    outcomes: list[FunctionOutcome] = []
    for name in snapshot.functions_of(service):
        record = snapshot.functions[name]
        versions = await version_revisions(registry.store, stage, name)
        aliases = await alias_revisions(registry.store, stage, name)
        steps.append(RemoveFunction(stage, name, record.revision, versions, aliases))
        outcomes.append(FunctionOutcome(name, record.value.latest_version, "removed"))
    routes = snapshot.routes.get(service)
    if routes is not None:
        steps.append(PutRoutes(stage, service, (), routes.revision))
    steps.append(PutService(stage, service, None, service_doc.revision))
    remaining = tuple(sorted(set(snapshot.stage_record.value.services) - {service}))
    return Plan(
        stage, service, tuple(steps), tuple(outcomes), (), snapshot.stage_record.revision, remaining
    )


def _read_requirements(
    functions: tuple[ResolvedFunction, ...], app_dir: Path
) -> dict[str, Requirements | None]:
    """Hash each function's requirements file; each distinct file is read once."""
    by_path: dict[Path, Requirements] = {}
    found: dict[str, Requirements | None] = {}
    default_applies = all(fn.requirements is None for fn in functions)
    for fn in functions:
        path = requirements_file(app_dir, fn.requirements, default_applies=default_applies)
        if path is not None and path not in by_path:
            by_path[path] = Requirements.read(path)
        found[fn.name] = by_path[path] if path is not None else None
    return found


def _file_steps(facts: DeployFacts) -> list[Step]:
    steps: list[Step] = []
    names = tuple(fn.name for fn in facts.functions)
    if names and not facts.bundle_stored:
        steps.append(StoreBundle(facts.bundle, names))
    pending: dict[str, list[str]] = {}
    files: dict[str, Requirements] = {}
    for name, req in facts.requirements.items():
        if req is not None and req.sha256 not in facts.deps_installed:
            pending.setdefault(req.sha256, []).append(name)
            files[req.sha256] = req
    for sha, users in pending.items():
        steps.append(InstallRequirements(files[sha], facts.app_dir, tuple(users)))
    return steps


def _function_step(facts: DeployFacts, fn: ResolvedFunction) -> tuple[Step | None, FunctionOutcome]:
    stored = facts.snapshot.functions.get(fn.name)
    latest = facts.latest.get(fn.name)
    candidate = _version_of(facts, fn, "0")
    if latest is None or stored is None or latest.config_sha256 != candidate.config_sha256:
        number = str(int(stored.value.latest_version) + 1) if stored is not None else "1"
        version = dataclasses.replace(candidate, version=number)
        revision = stored.revision if stored is not None else 0
        return PublishVersion(version, revision), FunctionOutcome(fn.name, number, "new")
    record = FunctionRecord(
        facts.app.service, latest.version, fn.reserved_concurrency, fn.description, fn.async_config
    )
    if record == stored.value:
        return None, FunctionOutcome(fn.name, latest.version, "unchanged")
    step = UpdateFunction(
        facts.snapshot.stage,
        fn.name,
        record,
        stored.revision,
        _settings_change(stored.value, record),
    )
    return step, FunctionOutcome(fn.name, latest.version, "updated")


def _version_of(facts: DeployFacts, fn: ResolvedFunction, number: str) -> FunctionVersion:
    req = facts.requirements.get(fn.name)
    deps = req.sha256 if req is not None else None
    config = layout.config_sha256(
        code_sha256=facts.bundle.sha256,
        deps_sha256=deps,
        handler=fn.handler,
        runtime=fn.runtime,
        memory_size_mb=fn.memory_size_mb,
        timeout_s=fn.timeout_s,
        environment=fn.environment,
    )
    return FunctionVersion(
        stage=facts.snapshot.stage,
        name=fn.name,
        service=facts.app.service,
        version=number,
        handler=fn.handler,
        runtime=fn.runtime,
        memory_size_mb=fn.memory_size_mb,
        timeout_s=fn.timeout_s,
        environment=dict(fn.environment),
        reserved_concurrency=fn.reserved_concurrency,
        code_sha256=facts.bundle.sha256,
        deps_sha256=deps,
        config_sha256=config,
        description=fn.description,
        created_ms=facts.now_ms,
        async_config=fn.async_config,
    )


def _settings_change(old: FunctionRecord, new: FunctionRecord) -> str:
    changes = []
    if old.reserved_concurrency != new.reserved_concurrency:
        changes.append(
            f"reserved concurrency {_or_none(old.reserved_concurrency)} -> "
            f"{_or_none(new.reserved_concurrency)}"
        )
    if old.description != new.description:
        changes.append(f"description {new.description!r}")
    if old.async_config != new.async_config:
        changes.append("asynchronous invocation settings")
    return ", ".join(changes)


def _or_none(value: int | None) -> str:
    return "none" if value is None else str(value)


def _routes(facts: DeployFacts) -> tuple[Route, ...]:
    stage, service = facts.snapshot.stage, facts.app.service
    api = facts.app.provider.http_api
    cors = api.cors.config() if api.cors is not None else None
    plans = tuple((name, plan.config()) for name, plan in sorted(api.usage_plans.items()))
    variables = tuple(sorted(api.stage_variables.items()))
    ip_rules = api.ip_rules() if api.ip_allow or api.ip_deny else None
    routes = []
    for fn in facts.functions:
        for event in fn.http_events:
            throttle = event.throttle or api.throttle
            routes.append(
                Route(
                    stage,
                    service,
                    event.method,
                    event.path,
                    fn.name,
                    event.payload or api.payload,
                    cors,
                    throttle.config() if throttle is not None else None,
                    api.api_key_required
                    if event.api_key_required is None
                    else event.api_key_required,
                    plans,
                    variables,
                    ip_rules,
                    _route_authorizer(facts, event.authorizer),
                    api.access_logs.format if api.access_logs is not None else None,
                    api.stage_throttle.config() if api.stage_throttle is not None else None,
                )
            )
    selection = facts.app.provider.websockets_api_route_selection_expression
    for fn in facts.functions:
        for ws in fn.websocket_events:
            routes.append(
                Route(
                    stage,
                    service,
                    WEBSOCKET_METHOD,
                    ws.route,
                    fn.name,
                    ip_rules=ip_rules,
                    route_response=ws.route_response_selection_expression is not None,
                    selection_expression=selection,
                )
            )
    routes.extend(_event_routes(facts))
    return tuple(sorted(routes))


def _event_routes(facts: DeployFacts) -> list[Route]:
    """Schedules, queue mappings and topic subscriptions: stored as routes of their stage."""
    stage, service = facts.snapshot.stage, facts.app.service
    routes: list[Route] = []
    for fn in facts.functions:
        for index, sched in enumerate(fn.schedule_events):
            routes.append(
                Route(
                    stage,
                    service,
                    SCHEDULE_METHOD,
                    sched.name or f"{fn.name}-schedule-{index + 1}",
                    fn.name,
                    schedule=ScheduleConfig(
                        sched.rate,
                        sched.timezone,
                        canonical_json(sched.input) if sched.input is not None else None,
                        sched.enabled,
                    ),
                )
            )
    for fn in facts.functions:
        for sqs in fn.sqs_events:
            routes.append(
                Route(
                    stage,
                    service,
                    SQS_METHOD,
                    sqs.queue_name,
                    fn.name,
                    mapping=QueueMappingConfig(
                        sqs.batch_size,
                        sqs.maximum_batching_window,
                        sqs.function_response_type == "ReportBatchItemFailures",
                        sqs.maximum_concurrency,
                        sqs.enabled,
                    ),
                )
            )
    for fn in facts.functions:
        for sns in fn.sns_events:
            routes.append(
                Route(
                    stage,
                    service,
                    SNS_METHOD,
                    sns.topic_name,
                    fn.name,
                    subscription=SubscriptionConfig(
                        canonical_json(sns.filter_policy)
                        if sns.filter_policy is not None
                        else None,
                        sns.filter_policy_scope,
                        _name_of(sns.dead_letter_queue) if sns.dead_letter_queue else None,
                    ),
                )
            )
    return routes


def _name_of(target: str) -> str:
    return target.rsplit(":", 1)[-1] if target.startswith("arn:") else target


def _route_authorizer(
    facts: DeployFacts, named: RouteAuthorizerSpec | None
) -> RouteAuthorizer | None:
    if named is None:
        return None
    spec = facts.app.provider.http_api.authorizers[named.name]  # checked at load
    return RouteAuthorizer(
        named.name, spec.type, canonical_json(spec.settings()), tuple(named.scopes)
    )


def _service_step(facts: DeployFacts, *, metadata_changed: bool) -> Step | None:
    service = facts.app.service
    stored = facts.snapshot.services.get(service)
    record = ServiceRecord(
        tuple(fn.name for fn in facts.functions), str(facts.app_dir), facts.now_ms
    )
    same = stored is not None and (stored.value.functions, stored.value.app_dir) == (
        record.functions,
        record.app_dir,
    )
    if same and not metadata_changed:
        return None
    return PutService(facts.snapshot.stage, service, record, stored.revision if stored else 0)
