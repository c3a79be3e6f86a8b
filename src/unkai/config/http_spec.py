"""The manifest's HTTP side: `http` and `websocket` events and `provider.httpApi` (CORS,
throttles, usage plans, authorizers, access logs), validated into the gateway's configs."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from unkai.config.http_api import (
    DEFAULT_ACCESS_LOG_FORMAT,
    QUOTA_PERIODS,
    CorsConfig,
    IpRules,
    ThrottleConfig,
    UsagePlanConfig,
    identity_source_problem,
    unknown_access_log_variables,
)
from unkai.config.spec_base import (
    DEFAULT_ROUTE,
    PATH_PATTERN,
    Environment,
    Name,
    Spec,
    between,
    http_method,
    matching,
)


def _payload_version(value: Any) -> Any:
    """YAML reads an unquoted `1.0` as a float; the payload version is a string."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{float(value):.1f}"
    return value


PayloadVersion = Annotated[Literal["1.0", "2.0"], BeforeValidator(_payload_version)]


class ThrottleSpec(Spec):
    """Token bucket: `rate` requests per second, bursts of up to `burst` (API Gateway's)."""

    rate: Annotated[float, Field(gt=0, le=100_000)]
    burst: Annotated[int, Field(strict=True), between(1, 100_000)]

    def config(self) -> ThrottleConfig:
        return ThrottleConfig(self.rate, self.burst)


def _quota_period(value: str) -> str:
    period = value.upper()
    if period not in QUOTA_PERIODS:
        raise ValueError(f"must be one of {', '.join(QUOTA_PERIODS)}, got {value!r}")
    return period


def _cors_shorthand(value: Any) -> Any:
    """`cors: true` allows every origin, method and header (serverless.yml's shorthand)."""
    if value is True:
        return {"allowOrigins": ["*"], "allowMethods": ["*"], "allowHeaders": ["*"]}
    if value is False:
        return None
    return value


class CorsSpec(Spec):
    """API Gateway HTTP API's CorsConfiguration."""

    allow_origins: list[str] = Field(default_factory=list, alias="allowOrigins")
    allow_methods: list[str] = Field(default_factory=list, alias="allowMethods")
    allow_headers: list[str] = Field(default_factory=list, alias="allowHeaders")
    expose_headers: list[str] = Field(default_factory=list, alias="exposeHeaders")
    allow_credentials: bool = Field(default=False, alias="allowCredentials")
    max_age: Annotated[int, Field(strict=True), between(0, 86400)] | None = Field(
        default=None, alias="maxAge"
    )

    @model_validator(mode="after")
    def _consistent(self) -> CorsSpec:
        problems = self.config().validate()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def config(self) -> CorsConfig:
        return CorsConfig(
            allow_origins=tuple(self.allow_origins),
            allow_methods=tuple(m.upper() for m in self.allow_methods),
            allow_headers=tuple(self.allow_headers),
            expose_headers=tuple(self.expose_headers),
            allow_credentials=self.allow_credentials,
            max_age=self.max_age,
        )


class QuotaSpec(Spec):
    """Requests allowed per key per period (UTC day, ISO week from Monday, calendar month)."""

    limit: Annotated[int, Field(strict=True), between(1, 1_000_000_000)]
    period: Annotated[str, AfterValidator(_quota_period)] = "DAY"


class UsagePlanSpec(Spec):
    throttle: ThrottleSpec | None = None
    quota: QuotaSpec | None = None

    def config(self) -> UsagePlanConfig:
        return UsagePlanConfig(
            self.throttle.config() if self.throttle is not None else None,
            self.quota.limit if self.quota is not None else None,
            self.quota.period if self.quota is not None else "DAY",
        )


class AuthorizerSpec(Spec):
    """`provider.httpApi.authorizers.<name>`: a JWT authorizer (`type: jwt`) or a function
    (Lambda REQUEST) authorizer (`type: request`), with API Gateway's settings."""

    type: Literal["jwt", "request"]
    issuer: str | None = None
    audience: list[str] = Field(default_factory=list)
    jwks_url: str | None = Field(default=None, alias="jwksUrl")
    key: str | None = None
    leeway_seconds: Annotated[int, Field(strict=True), between(0, 300)] = Field(
        default=5, alias="leewaySeconds"
    )
    function_name: Name | None = Field(default=None, alias="functionName")
    identity_source: list[str] = Field(
        default_factory=lambda: ["$request.header.Authorization"], alias="identitySource"
    )
    result_ttl_in_seconds: Annotated[int, Field(strict=True), between(0, 3600)] = Field(
        default=300, alias="resultTtlInSeconds"
    )
    enable_simple_responses: bool = Field(default=True, alias="enableSimpleResponses")

    @model_validator(mode="after")
    def _complete(self) -> AuthorizerSpec:
        problem = self._jwt_problem() if self.type == "jwt" else self._request_problem()
        if problem:
            raise ValueError(problem)
        return self

    def _jwt_problem(self) -> str:
        if not self.issuer:
            return "a jwt authorizer needs 'issuer'"
        if not self.audience:
            return "a jwt authorizer needs 'audience' (a list of client ids)"
        if (self.jwks_url is None) == (self.key is None):
            return "a jwt authorizer needs exactly one of 'jwksUrl' and 'key'"
        key = (self.key or "").lstrip()
        if self.key is None or key.startswith("-----BEGIN"):
            return ""
        # Not PEM, so it is taken as an HMAC secret: a short one, or a pasted public JWK,
        # would let anyone who knows it sign tokens.
        if key.startswith("{"):
            return "key: give a PEM public key, not a JWK (or use jwksUrl)"
        if len(key) < 32:
            return "key: an HMAC secret needs at least 32 characters; a public key must be PEM"
        return ""

    def _request_problem(self) -> str:
        if self.function_name is None:
            return "a request authorizer needs 'functionName'"
        problems = [p for p in map(identity_source_problem, self.identity_source) if p]
        if problems:
            return "identitySource: " + "; ".join(problems)
        if self.result_ttl_in_seconds > 0 and not self.identity_source:
            return (
                "caching (resultTtlInSeconds > 0) needs an identitySource; add one or set "
                "resultTtlInSeconds: 0"
            )
        return ""

    def settings(self) -> dict[str, Any]:
        """The document the gateway's authorizer class reads (`from_doc`)."""
        if self.type == "jwt":
            doc: dict[str, Any] = {
                "issuer": self.issuer,
                "audience": self.audience,
                "leewaySeconds": self.leeway_seconds,
            }
            if self.jwks_url is not None:
                doc["jwksUri"] = self.jwks_url
            if self.key is not None:
                doc["staticKey"] = self.key
            return doc
        return {
            "function": self.function_name,
            "identitySource": self.identity_source,
            "resultTtlInSeconds": self.result_ttl_in_seconds,
            "enableSimpleResponses": self.enable_simple_responses,
        }


class RouteAuthorizerSpec(Spec):
    """An event's `authorizer: {name, scopes}` (or just the name)."""

    name: Name
    scopes: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data


def _access_log_shorthand(value: Any) -> Any:
    """`accessLogs: true` logs in the default format."""
    if value is True:
        return {}
    if value is False:
        return None
    return value


class AccessLogSpec(Spec):
    """`provider.httpApi.accessLogs`: a line per request in a `$context` format."""

    format: str = DEFAULT_ACCESS_LOG_FORMAT

    @model_validator(mode="after")
    def _known(self) -> AccessLogSpec:
        unknown = unknown_access_log_variables(self.format)
        if unknown:
            names = ", ".join(f"$context.{name}" for name in unknown)
            raise ValueError(f"unknown variables {names} (see docs/routing.md)")
        return self


class HttpApiSpec(Spec):
    """`provider.httpApi`: options for every route of the service (its HTTP API)."""

    payload: PayloadVersion = "2.0"
    cors: Annotated[CorsSpec | None, BeforeValidator(_cors_shorthand)] = None
    throttle: ThrottleSpec | None = None
    stage_throttle: ThrottleSpec | None = Field(default=None, alias="stageThrottle")
    api_key_required: bool = Field(default=False, alias="apiKeyRequired")
    usage_plans: dict[Name, UsagePlanSpec] = Field(default_factory=dict, alias="usagePlans")
    stage_variables: Environment = Field(default_factory=dict, alias="stageVariables")
    ip_allow: list[str] = Field(default_factory=list, alias="ipAllow")
    ip_deny: list[str] = Field(default_factory=list, alias="ipDeny")
    authorizers: dict[Name, AuthorizerSpec] = Field(default_factory=dict)
    access_logs: Annotated[AccessLogSpec | None, BeforeValidator(_access_log_shorthand)] = Field(
        default=None, alias="accessLogs"
    )

    @model_validator(mode="after")
    def _cidrs(self) -> HttpApiSpec:
        problems = self.ip_rules().validate()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def ip_rules(self) -> IpRules:
        return IpRules(tuple(self.ip_allow), tuple(self.ip_deny))


class HttpEventSpec(Spec):
    """`events: - http: {method, path}`; the string form `GET /hello` is accepted too.
    `payload` and `throttle` override the service's `provider.httpApi` for this route."""

    #: Upper-cased on validation, so `get` and `GET` are one route.
    method: Annotated[str, AfterValidator(http_method)]
    path: Annotated[str, matching(PATH_PATTERN, "a path starting with '/' (or '$default')")]
    payload: PayloadVersion | None = None
    throttle: ThrottleSpec | None = None
    api_key_required: bool | None = Field(default=None, alias="apiKeyRequired")
    authorizer: RouteAuthorizerSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            if data.strip() == DEFAULT_ROUTE:
                return {"method": "ANY", "path": DEFAULT_ROUTE}
            parts = data.split()
            if len(parts) != 2:
                raise ValueError(f"must be 'METHOD /path' or '$default', got {data!r}")
            return {"method": parts[0], "path": parts[1]}
        if isinstance(data, dict) and data.get("path") == DEFAULT_ROUTE:
            data = {"method": "ANY", **data}
        return data


WEBSOCKET_ROUTE_PATTERN = re.compile(r"^(\$connect|\$disconnect|\$default|[A-Za-z0-9_.:-]{1,128})$")


class WebsocketEventSpec(Spec):
    """`events: - websocket: {route: $connect}` (or just `- websocket: $connect`): a route of the
    stage's WebSocket API. `routeResponseSelectionExpression: $default` sends the function's
    answer back to the client (a two-way route), as serverless.yml spells it."""

    route: Annotated[
        str,
        matching(WEBSOCKET_ROUTE_PATTERN, "'$connect', '$disconnect', '$default' or a route key"),
    ]
    route_response_selection_expression: Literal["$default"] | None = Field(
        default=None, alias="routeResponseSelectionExpression"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_route(cls, data: Any) -> Any:
        return {"route": data} if isinstance(data, str) else data
