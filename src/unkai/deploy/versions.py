"""Deployed state records and THE metadata layout: every kind and key deploy/ uses is here.

MetadataStore layout (JSON documents; stage, service and function names match
`[A-Za-z0-9_-]{1,64}`, so '/' separates key parts unambiguously and prefix listing works):

  kind      key                          value
  stage     <stage>                      {services: [..]}                      StageRecord
            Written by every deploy/remove that changes the stage, with an expected revision,
            so two concurrent deploys to one stage cannot interleave (one gets Conflict);
            deleted with the stage's last service.
  service   <stage>/<service>            {functions: [..], app_dir, deployed_ms} ServiceRecord
  function  <stage>/<name>               {service, latest_version, reserved_concurrency,
                                          description}                        FunctionRecord
            Reserved concurrency and description belong to the function, not to a version
            (as in Lambda's PutFunctionConcurrency), so changing them publishes nothing.
  version   <stage>/<name>/<00000003>    FunctionVersion.to_doc(); immutable once written.
            Zero-padded to 8 digits so that key order is version order.
  routes    <stage>/<service>            {routes: [{method, path, function}, ..]} Route
  alias     <stage>/<name>/<alias>       {name, function_version, description,
                                          additional_version, additional_weight,
                                          revision_id}                        Alias
            Written by `Aliases` (aliases.py) together with an unchanged rewrite of the
            function document, so an alias write and a deploy or remove of its function
            cannot interleave; deleted with the function (RemoveFunction).

Files (content-addressed, immutable, written before the metadata commit):
  <data_dir>/bundles/<code_sha256>/     the app's code (bundle.py)
  <data_dir>/deps/<deps_sha256>/        `pip install --target` output (requirements.py)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from unkai.config.async_config import AsyncConfig
from unkai.config.http_api import (
    CorsConfig,
    IpRules,
    RouteAuthorizer,
    ScheduleConfig,
    ThrottleConfig,
    UsagePlanConfig,
)
from unkai.config.queue_config import QueueMappingConfig
from unkai.config.topic_config import SubscriptionConfig

STAGE, SERVICE, FUNCTION, VERSION, ROUTES = "stage", "service", "function", "version", "routes"
ALIAS = "alias"
LATEST = "$LATEST"
VERSION_DIGITS = 8


def stage_key(stage: str) -> str:
    return stage


def service_key(stage: str, service: str) -> str:
    return f"{stage}/{service}"


def function_key(stage: str, name: str) -> str:
    return f"{stage}/{name}"


def version_key(stage: str, name: str, version: str) -> str:
    return f"{stage}/{name}/{int(version):0{VERSION_DIGITS}d}"


def versions_prefix(stage: str, name: str) -> str:
    return f"{stage}/{name}/"


def alias_key(stage: str, name: str, alias: str) -> str:
    return f"{stage}/{name}/{alias}"


def aliases_prefix(stage: str, name: str) -> str:
    return f"{stage}/{name}/"


def routes_key(stage: str, service: str) -> str:
    return f"{stage}/{service}"


def stage_prefix(stage: str) -> str:
    """Prefix of every per-stage key (service, function, version, routes) of `stage`."""
    return f"{stage}/"


def config_sha256(
    *,
    code_sha256: str,
    deps_sha256: str | None,
    handler: str,
    runtime: str,
    memory_size_mb: int,
    timeout_s: int,
    environment: Mapping[str, str],
) -> str:
    """Hash of everything that defines a version's behaviour; equal hash -> no new version."""
    canonical = json.dumps(
        {
            "code": code_sha256,
            "deps": deps_sha256,
            "handler": handler,
            "runtime": runtime,
            "memory_size_mb": memory_size_mb,
            "timeout_s": timeout_s,
            "environment": dict(environment),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class FunctionVersion:
    """One published version: immutable code and configuration (Lambda's PublishVersion)."""

    stage: str
    name: str
    service: str
    #: "1", "2", ...: Lambda's version numbers are strings too.
    version: str
    handler: str
    runtime: str
    memory_size_mb: int
    timeout_s: int
    environment: Mapping[str, str]
    #: Per function, not per version: the registry fills in the function's current value.
    reserved_concurrency: int | None
    code_sha256: str
    deps_sha256: str | None
    config_sha256: str
    description: str
    created_ms: int
    #: Per function, like reserved_concurrency; not stored with the version.
    async_config: AsyncConfig = field(default_factory=AsyncConfig)

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["environment"] = dict(self.environment)
        doc.pop("async_config")
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> FunctionVersion:
        known = {k: v for k, v in doc.items() if k != "async_config"}
        return cls(**{**known, "environment": dict(doc["environment"])})


@dataclass(frozen=True, slots=True)
class FunctionRecord:
    """The `function` document: who owns the name, which version is latest."""

    service: str
    latest_version: str
    reserved_concurrency: int | None
    description: str
    async_config: AsyncConfig = field(default_factory=AsyncConfig)

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["async_config"] = self.async_config.to_doc()
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> FunctionRecord:
        return cls(**{**doc, "async_config": AsyncConfig.from_doc(doc.get("async_config"))})


@dataclass(frozen=True, slots=True)
class Alias:
    """The `alias` document: a name for one version, or for two with the share of
    invocations the second one gets (Lambda's alias with a routing configuration,
    https://docs.aws.amazon.com/lambda/latest/dg/configuring-alias-routing.html)."""

    name: str
    #: A version number, or `$LATEST` (only without an additional version).
    function_version: str
    description: str
    #: The canary version, run by `additional_weight` (0 to 1) of the invocations.
    additional_version: str | None
    additional_weight: float
    #: Changes with every write (Lambda's RevisionId, for UpdateAlias' optimistic check).
    revision_id: str

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Alias:
        return cls(**doc)


#: The method of a WebSocket API route; its path is the route key (`$connect`, `sendMessage`).
WEBSOCKET_METHOD = "WEBSOCKET"
#: The method of a schedule; its path is the schedule's name.
SCHEDULE_METHOD = "SCHEDULE"
#: The method of a queue -> function mapping; its path is the queue's name.
SQS_METHOD = "SQS"
#: The method of a function's topic subscription; its path is the topic's name.
SNS_METHOD = "SNS"
#: Methods of routes that are not HTTP routes (the gateway leaves them out).
EVENT_METHODS = frozenset({WEBSOCKET_METHOD, SCHEDULE_METHOD, SQS_METHOD, SNS_METHOD})


@dataclass(frozen=True, slots=True, order=True)
class Route:
    """An HTTP route of a stage: `method path` -> `function`, owned by `service`, with the
    gateway options its service's manifest gave it (payload format, CORS, throttle)."""

    stage: str
    service: str
    method: str
    path: str
    function: str
    payload: str = "2.0"
    cors: CorsConfig | None = field(default=None, compare=False)
    throttle: ThrottleConfig | None = field(default=None, compare=False)
    api_key_required: bool = False
    #: The service's usage plans by name: an API key works on this route only if its plan is
    #: one of them (API Gateway associates plans with API stages).
    usage_plans: tuple[tuple[str, UsagePlanConfig], ...] = field(default=(), compare=False)
    stage_variables: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    ip_rules: IpRules | None = field(default=None, compare=False)
    authorizer: RouteAuthorizer | None = field(default=None, compare=False)
    access_log: str | None = field(default=None, compare=False)
    #: One bucket for every route of the service in the stage (API Gateway's stage throttle).
    stage_throttle: ThrottleConfig | None = field(default=None, compare=False)
    #: WebSocket routes (method `WEBSOCKET`, path the route key): send the answer back, and the
    #: service's route selection expression.
    route_response: bool = field(default=False, compare=False)
    selection_expression: str | None = field(default=None, compare=False)
    schedule: ScheduleConfig | None = field(default=None, compare=False)
    mapping: QueueMappingConfig | None = field(default=None, compare=False)
    subscription: SubscriptionConfig | None = field(default=None, compare=False)

    def __eq__(self, other: object) -> bool:
        # The options are left out of ordering (configs do not order) but not out of equality:
        # a deploy that only changes CORS or a throttle must still rewrite the routes.
        if not isinstance(other, Route):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[object, ...]:
        return (
            self.stage,
            self.service,
            self.method,
            self.path,
            self.function,
            self.payload,
            self.cors,
            self.throttle,
            self.api_key_required,
            self.usage_plans,
            self.stage_variables,
            self.ip_rules,
            self.authorizer,
            self.access_log,
            self.stage_throttle,
            self.route_response,
            self.selection_expression,
            self.schedule,
            self.mapping,
            self.subscription,
        )

    def to_doc(self) -> dict[str, Any]:
        """Stage and service are in the routes document's key, so not repeated per route;
        options left at their defaults are left out."""
        options: dict[str, Any] = {
            "payload": self.payload if self.payload != "2.0" else None,
            "cors": self.cors.to_doc() if self.cors is not None else None,
            "throttle": self.throttle.to_doc() if self.throttle is not None else None,
            "apiKeyRequired": True if self.api_key_required else None,
            "usagePlans": {name: plan.to_doc() for name, plan in self.usage_plans} or None,
            "stageVariables": dict(self.stage_variables) or None,
            "ipRules": self.ip_rules.to_doc() if self.ip_rules is not None else None,
            "authorizer": self.authorizer.to_doc() if self.authorizer is not None else None,
            "accessLog": self.access_log,
            "stageThrottle": (
                self.stage_throttle.to_doc() if self.stage_throttle is not None else None
            ),
            "routeResponse": True if self.route_response else None,
            "selectionExpression": self.selection_expression,
            "schedule": self.schedule.to_doc() if self.schedule is not None else None,
            "mapping": self.mapping.to_doc() if self.mapping is not None else None,
            "subscription": (self.subscription.to_doc() if self.subscription is not None else None),
        }
        doc: dict[str, Any] = {"method": self.method, "path": self.path, "function": self.function}
        doc.update((key, value) for key, value in options.items() if value is not None)
        return doc

    @classmethod
    def from_doc(cls, stage: str, service: str, doc: Mapping[str, Any]) -> Route:
        cors, throttle = doc.get("cors"), doc.get("throttle")
        return cls(
            stage,
            service,
            doc["method"],
            doc["path"],
            doc["function"],
            doc.get("payload", "2.0"),
            CorsConfig.from_doc(cors) if cors is not None else None,
            ThrottleConfig.from_doc(throttle) if throttle is not None else None,
            bool(doc.get("apiKeyRequired", False)),
            tuple(
                (name, UsagePlanConfig.from_doc(plan))
                for name, plan in sorted(doc.get("usagePlans", {}).items())
            ),
            tuple(sorted(doc.get("stageVariables", {}).items())),
            IpRules.from_doc(doc["ipRules"]) if "ipRules" in doc else None,
            RouteAuthorizer.from_doc(doc["authorizer"]) if "authorizer" in doc else None,
            doc.get("accessLog"),
            ThrottleConfig.from_doc(doc["stageThrottle"]) if "stageThrottle" in doc else None,
            bool(doc.get("routeResponse", False)),
            doc.get("selectionExpression"),
            ScheduleConfig.from_doc(doc["schedule"]) if "schedule" in doc else None,
            QueueMappingConfig.from_doc(doc["mapping"]) if "mapping" in doc else None,
            SubscriptionConfig.from_doc(doc["subscription"]) if "subscription" in doc else None,
        )


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    """The `service` document: the functions one manifest deployed to a stage."""

    functions: tuple[str, ...]
    app_dir: str
    deployed_ms: int

    def to_doc(self) -> dict[str, Any]:
        return {
            "functions": list(self.functions),
            "app_dir": self.app_dir,
            "deployed_ms": self.deployed_ms,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> ServiceRecord:
        return cls(tuple(doc["functions"]), doc["app_dir"], doc["deployed_ms"])


@dataclass(frozen=True, slots=True)
class StageRecord:
    """The `stage` document: the services deployed to it (and the stage's write guard)."""

    services: tuple[str, ...] = field(default_factory=tuple)

    def to_doc(self) -> dict[str, Any]:
        return {"services": sorted(self.services)}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> StageRecord:
        return cls(tuple(doc["services"]))
