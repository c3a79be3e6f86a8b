"""The HTTP API options a service's manifest gives its routes: plain values, stored with the
routes (deploy/versions.py: Route) and acted on by the gateway (gateway/cors.py, throttle.py).

They live here, with the manifest models, because both the core (deploy) and a front door
(gateway) use them, and calls only go down the layers.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_AGE_MIN_S, MAX_AGE_MAX_S = 0, 86400
CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_ORIGIN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#*\s]+$")
_SCHEME_WILDCARD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\*$")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 header name


@dataclass(frozen=True, slots=True)
class ThrottleConfig:
    """Steady-state `rate` (requests/s, > 0) and `burst` (bucket size, >= 1)."""

    rate: float
    burst: int

    def to_doc(self) -> dict[str, float | int]:
        return {"rate": self.rate, "burst": self.burst}

    @classmethod
    def from_doc(cls, doc: dict[str, float | int]) -> ThrottleConfig:
        return cls(float(doc["rate"]), int(doc["burst"]))


@dataclass(frozen=True, slots=True)
class CorsConfig:
    """An HTTP API's CorsConfiguration (CloudFormation `AWS::ApiGatewayV2::Api Cors`)."""

    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    allow_credentials: bool = False
    max_age: int | None = None

    def validate(self) -> list[str]:
        """Human-readable problems, each naming its field; empty when the config is fine."""
        problems: list[str] = []
        for origin in self.allow_origins:
            if origin != "*" and not (_ORIGIN.match(origin) or _SCHEME_WILDCARD.match(origin)):
                problems.append(
                    f"allowOrigins: {origin!r} must be '*', 'scheme://*' or an origin such as "
                    "'https://www.example.com' (scheme://host[:port], no path)"
                )
        if self.allow_credentials and "*" in self.allow_origins:
            problems.append("allowOrigins: '*' cannot be used with allowCredentials: true")
        for method in self.allow_methods:
            if method != "*" and method.upper() not in CORS_METHODS:
                problems.append(
                    f"allowMethods: {method!r} must be '*' or one of {', '.join(CORS_METHODS)}"
                )
        for field, names in (
            ("allowHeaders", self.allow_headers),
            ("exposeHeaders", self.expose_headers),
        ):
            for name in names:
                if not _TOKEN.match(name):
                    problems.append(f"{field}: {name!r} is not a header name")
        if self.max_age is not None and (
            isinstance(self.max_age, bool)
            or not isinstance(self.max_age, int)
            or not MAX_AGE_MIN_S <= self.max_age <= MAX_AGE_MAX_S
        ):
            problems.append(
                f"maxAge: must be between {MAX_AGE_MIN_S} and {MAX_AGE_MAX_S} seconds, "
                f"got {self.max_age!r}"
            )
        return problems

    def to_doc(self) -> dict[str, Any]:
        """JSON-able, with the camelCase keys of the manifest and of API Gateway."""
        doc: dict[str, Any] = {
            "allowOrigins": list(self.allow_origins),
            "allowMethods": list(self.allow_methods),
            "allowHeaders": list(self.allow_headers),
            "exposeHeaders": list(self.expose_headers),
            "allowCredentials": self.allow_credentials,
        }
        if self.max_age is not None:
            doc["maxAge"] = self.max_age
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> CorsConfig:
        """The inverse of `to_doc`; missing keys take their defaults."""
        max_age = doc.get("maxAge")
        return cls(
            allow_origins=_strings(doc.get("allowOrigins")),
            allow_methods=_strings(doc.get("allowMethods")),
            allow_headers=_strings(doc.get("allowHeaders")),
            expose_headers=_strings(doc.get("exposeHeaders")),
            allow_credentials=bool(doc.get("allowCredentials", False)),
            max_age=None if max_age is None else int(max_age),
        )


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(item) for item in value)


QUOTA_PERIODS = ("DAY", "WEEK", "MONTH")


@dataclass(frozen=True, slots=True)
class UsagePlanConfig:
    """A usage plan, as API Gateway's: a throttle for each API key on it and a quota of
    requests per period (UTC day, ISO week from Monday, calendar month)."""

    throttle: ThrottleConfig | None = None
    quota_limit: int | None = None
    quota_period: str = "DAY"

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"quotaPeriod": self.quota_period}
        if self.throttle is not None:
            doc["throttle"] = self.throttle.to_doc()
        if self.quota_limit is not None:
            doc["quotaLimit"] = self.quota_limit
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> UsagePlanConfig:
        throttle = doc.get("throttle")
        return cls(
            ThrottleConfig.from_doc(throttle) if throttle is not None else None,
            doc.get("quotaLimit"),
            doc.get("quotaPeriod", "DAY"),
        )


@dataclass(frozen=True, slots=True)
class IpRules:
    """An API's IP allow and deny lists (CIDR). Deny wins; with an allow list, an address
    must be in it. Parsed once per deploy; checked per request only when set."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    def validate(self) -> list[str]:
        problems = []
        for field_name, cidrs in (("ipAllow", self.allow), ("ipDeny", self.deny)):
            for cidr in cidrs:
                try:
                    ipaddress.ip_network(cidr, strict=False)
                except ValueError as exc:
                    problems.append(f"{field_name}: {exc}")
        return problems

    def permits(self, address: str) -> bool:
        return _ip_permits(self, address)

    def to_doc(self) -> dict[str, list[str]]:
        return {"allow": list(self.allow), "deny": list(self.deny)}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> IpRules:
        return cls(tuple(doc.get("allow", ())), tuple(doc.get("deny", ())))


@functools.lru_cache(maxsize=256)
def _networks(
    cidrs: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _ip_permits(rules: IpRules, address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # an IPv4 client of a dual-stack listener
    if any(ip in net for net in _networks(rules.deny)):
        return False
    return not rules.allow or any(ip in net for net in _networks(rules.allow))


@dataclass(frozen=True, slots=True)
class RouteAuthorizer:
    """The authorizer a route names: its manifest `name`, its `type` (`jwt` or `request`),
    its settings as canonical JSON (hashable, and read by the gateway's authorizer classes),
    and the scopes the route requires (JWT)."""

    name: str
    type: str
    settings_json: str
    scopes: tuple[str, ...] = ()

    def to_doc(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "settings": json.loads(self.settings_json),
            "scopes": list(self.scopes),
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> RouteAuthorizer:
        return cls(
            doc["name"],
            doc["type"],
            canonical_json(doc["settings"]),
            tuple(doc.get("scopes", ())),
        )


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


#: API Gateway's default-like format: CLF fields plus the request id.
DEFAULT_ACCESS_LOG_FORMAT = (
    '$context.identity.sourceIp - - [$context.requestTime] "$context.httpMethod '
    '$context.routeKey $context.protocol" $context.status $context.responseLength '
    "$context.requestId"
)
ACCESS_LOG_VARIABLES = frozenset(
    {
        "apiId",
        "domainName",
        "error.message",
        "httpMethod",
        "identity.sourceIp",
        "identity.userAgent",
        "integrationLatency",
        "integrationStatus",
        "path",
        "protocol",
        "requestId",
        "requestTime",
        "requestTimeEpoch",
        "responseLatency",
        "responseLength",
        "routeKey",
        "stage",
        "status",
        "authorizer.principalId",
        "identity.apiKeyId",
    }
)
ACCESS_LOG_VARIABLE = re.compile(r"\$context\.([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*)")


def unknown_access_log_variables(text: str) -> list[str]:
    """The `$context.x` names in `text` that access logs do not know, for a deploy error."""
    return sorted({m.group(1) for m in ACCESS_LOG_VARIABLE.finditer(text)} - ACCESS_LOG_VARIABLES)


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """A schedule event as deployed (stored with the routes under the method `SCHEDULE`)."""

    expression: str
    timezone: str = "UTC"
    input_json: str | None = None
    enabled: bool = True

    def to_doc(self) -> dict[str, Any]:
        return {
            "expression": self.expression,
            "timezone": self.timezone,
            "input": self.input_json,
            "enabled": self.enabled,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> ScheduleConfig:
        return cls(
            doc["expression"],
            doc.get("timezone", "UTC"),
            doc.get("input"),
            doc.get("enabled", True),
        )


# Identity sources of a function authorizer (checked at deploy, read by the gateway).
IDENTITY_HEADER = re.compile(r"^\$request\.header\.([!#$%&'*+.^_`|~0-9A-Za-z-]+)$")
IDENTITY_QUERY = re.compile(r"^\$request\.querystring\.(.+)$")
IDENTITY_CONTEXT = re.compile(r"^\$context\.(.+)$")
IDENTITY_STAGE_VARIABLE = re.compile(r"^\$stageVariables\.([A-Za-z0-9_]+)$")
#: The `$context` variables an identity source may name: those known before routing is done.
IDENTITY_CONTEXT_VARIABLES = (
    "routeKey",
    "httpMethod",
    "protocol",
    "domainName",
    "identity.sourceIp",
    "identity.userAgent",
)


def identity_source_problem(source: Any) -> str:
    """What is wrong with one identity source expression; empty when it is fine."""
    if not isinstance(source, str):
        return f"{source!r} must be a string"
    if source.startswith("route.request."):
        return f"{source!r} is a WebSocket API expression; HTTP APIs use '$request.header.X'"
    if (
        IDENTITY_HEADER.match(source)
        or IDENTITY_QUERY.match(source)
        or IDENTITY_STAGE_VARIABLE.match(source)
    ):
        return ""
    context = IDENTITY_CONTEXT.match(source)
    if context is not None:
        if context.group(1) in IDENTITY_CONTEXT_VARIABLES:
            return ""
        names = ", ".join(f"$context.{name}" for name in IDENTITY_CONTEXT_VARIABLES)
        return f"{source!r}: the context variables an identity source can use are {names}"
    return (
        f"{source!r} must be $request.header.<name>, $request.querystring.<name>, "
        "$context.<variable> or $stageVariables.<name>"
    )
