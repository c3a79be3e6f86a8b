"""The pure logic of an API Gateway HTTP API Lambda (REQUEST) authorizer, payload format 2.0:
which identity a request carries, the event the authorizer function gets, what its result
means, and how long that meaning is kept. Invoking the function is the caller's job; this module
takes the function's JSON result as bytes, so it stays testable without a runtime.

Semantics, from https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html
(and, for the integration side, .../http-api-develop-integrations-lambda.html):
- Identity sources (`$request.header.X`, `$request.querystring.x`, `$context.x`,
  `$stageVariables.x`): if any is missing (or empty, as REST APIs document) from the request,
  API Gateway answers 401 without invoking the authorizer. Header names are case-insensitive,
  query string names case-sensitive; repeated values are joined with commas as in the event.
- Simple responses (`enableSimpleResponses`): `{"isAuthorized": bool, "context": {...}}`.
  The answer holds for every route the authorizer guards, cached or not.
- IAM policy responses: `{"principalId", "policyDocument", "context"}`. The request is allowed
  when some `Allow` statement for `execute-api:Invoke` matches the route ARN and no `Deny`
  does (an explicit deny wins); `*` and `?` are wildcards in actions and resources, as in IAM.
- An authorizer that fails or returns something of the wrong shape means 500.
- Caching (`authorizerResultTtlInSeconds`, 0 to 3600, default 300, 0 = off; at least one
  identity source needed): the key is the identity source values, so one answer serves every
  route. That is why the cache keeps a parsed IAM policy, not just its verdict: a policy cached
  for `GET /a` is evaluated again against the ARN of `POST /b` (`AuthDecision.for_route`).
  Add `$context.routeKey` to the identity sources to cache per route, as the docs advise.
- The integration sees the context as `requestContext.authorizer.lambda` (payload 2.0).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

import orjson

from unkai.config.http_api import (
    IDENTITY_CONTEXT,
    IDENTITY_CONTEXT_VARIABLES,
    IDENTITY_HEADER,
    IDENTITY_QUERY,
    IDENTITY_STAGE_VARIABLE,
    identity_source_problem,
)
from unkai.config.spec_base import NAME_PATTERN
from unkai.gateway.http1 import Request
from unkai.gateway.mapping import event_of, request_parts
from unkai.gateway.routes import Match

DEFAULT_TTL_S = 300
DEFAULT_IDENTITY_SOURCES = ("$request.header.Authorization",)
MAX_TTL_S = 3600
INVOKE_ACTION = "execute-api:Invoke"

#: API Gateway's fixed bodies for the authorizer's answers; details go to the log only.
UNAUTHORIZED_BODY = b'{"message":"Unauthorized"}'
FORBIDDEN_BODY = b'{"message":"Forbidden"}'
INTERNAL_ERROR_BODY = b'{"message":"Internal Server Error"}'
BODY_BY_STATUS: dict[int, bytes] = {
    401: UNAUTHORIZED_BODY,
    403: FORBIDDEN_BODY,
    500: INTERNAL_ERROR_BODY,
}

_HEADER = IDENTITY_HEADER
_QUERY = IDENTITY_QUERY
_CONTEXT = IDENTITY_CONTEXT
_STAGE_VARIABLE = IDENTITY_STAGE_VARIABLE


def _header_text(request: Request, name: bytes) -> str:
    values = [value for key, value in request.headers if key == name]
    return b",".join(values).decode("latin-1")


#: The `$context` variables an identity source may name: those known before routing is done.
_CONTEXT_VALUES: dict[str, Callable[[Request, str], str]] = {
    "routeKey": lambda request, route_key: route_key,
    "httpMethod": lambda request, route_key: request.method,
    "protocol": lambda request, route_key: "HTTP/" + request.http_version,
    "domainName": lambda request, route_key: _header_text(request, b"host"),
    "identity.sourceIp": lambda request, route_key: request.client[0] if request.client else "",
    "identity.userAgent": lambda request, route_key: _header_text(request, b"user-agent"),
}
assert tuple(_CONTEXT_VALUES) == IDENTITY_CONTEXT_VARIABLES  # validated at deploy from there


@dataclass(frozen=True, slots=True)
class LambdaAuthorizerConfig:
    """One Lambda authorizer: the function (same stage) and how its answers are read and kept."""

    function: str
    identity_sources: tuple[str, ...] = DEFAULT_IDENTITY_SOURCES
    result_ttl_s: int = DEFAULT_TTL_S
    simple_responses: bool = True

    def validate(self) -> list[str]:
        """Human-readable problems, each naming its field; empty when the config is fine."""
        problems: list[str] = []
        if not isinstance(self.function, str) or not NAME_PATTERN.match(self.function):
            problems.append(
                f"function: {self.function!r} must be a function name "
                "(1 to 64 letters, digits, '-' or '_')"
            )
        problems.extend(
            f"identitySource: {problem}"
            for source in self.identity_sources
            if (problem := identity_source_problem(source))
        )
        ttl = self.result_ttl_s
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL_S:
            problems.append(
                f"resultTtlInSeconds: must be an integer from 0 to {MAX_TTL_S}, got {ttl!r}"
            )
        elif ttl > 0 and not self.identity_sources:
            problems.append(
                "identitySource: caching (resultTtlInSeconds > 0) needs at least one identity "
                "source; add one or set resultTtlInSeconds: 0"
            )
        if not isinstance(self.simple_responses, bool):
            problems.append(
                f"enableSimpleResponses: must be true or false, got {self.simple_responses!r}"
            )
        return problems

    def to_doc(self) -> dict[str, Any]:
        """JSON-able, with API Gateway's camelCase names."""
        return {
            "function": self.function,
            "identitySource": list(self.identity_sources),
            "resultTtlInSeconds": self.result_ttl_s,
            "enableSimpleResponses": self.simple_responses,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> LambdaAuthorizerConfig:
        """The inverse of `to_doc`; missing keys take their defaults, and `identitySource` may
        also be one comma-separated string, as the AWS CLI takes it. Values are not coerced, so
        that `validate` can name a wrong type instead of hiding it."""
        sources = doc.get("identitySource", DEFAULT_IDENTITY_SOURCES)
        if isinstance(sources, str):
            sources = [s.strip() for s in sources.split(",") if s.strip()]
        return cls(
            function=doc.get("function", ""),
            identity_sources=tuple(sources),
            result_ttl_s=doc.get("resultTtlInSeconds", DEFAULT_TTL_S),
            simple_responses=doc.get("enableSimpleResponses", True),
        )


@dataclass(frozen=True, slots=True)
class Statement:
    """One parsed IAM policy statement: `Effect`, `Action` and `Resource` patterns."""

    allow: bool
    actions: tuple[str, ...]
    resources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuthDecision:
    """What the authorizer decided for one route. `policy` is set for IAM policy responses so
    that a cached decision can be evaluated again for another route (`for_route`). Treat
    `context` as read-only: a cached decision shares it between requests."""

    status: int
    context: dict[str, Any] | None = None
    principal_id: str | None = None
    reason: str = ""
    policy: tuple[Statement, ...] | None = field(default=None, repr=False)

    def for_route(self, route_arn: str) -> AuthDecision:
        """This decision for the route `route_arn`: simple responses hold for every route, an
        IAM policy is evaluated again."""
        if self.policy is None:
            return self
        status, reason = _policy_status(self.policy, route_arn)
        if status == self.status:
            return self
        return replace(self, status=status, reason=reason)

    def integration_authorizer(self) -> dict[str, Any]:
        """`requestContext.authorizer` of the payload 2.0 integration event: the context under
        `lambda` (an empty object when the authorizer returned none)."""
        return {"lambda": self.context if self.context is not None else {}}


MISSING_IDENTITY = AuthDecision(401, reason="an identity source is missing from the request")


def identity_values(
    config: LambdaAuthorizerConfig,
    request: Request,
    route_key: str,
    stage_variables: dict[str, str] | None,
) -> tuple[str, ...] | None:
    """The request's value for each identity source, in order; None when one is missing or
    empty (API Gateway answers 401 then, without invoking the authorizer)."""
    values: list[str] = []
    query: dict[str, str] | None = None
    for source in config.identity_sources:
        kind, name = _parse_source(source)
        if kind == "header":
            value = _header_text(request, name.encode("latin-1"))
        elif kind == "query":
            if query is None:
                query = _query(request.query_string)
            value = query.get(name, "")
        elif kind == "context":
            value = _CONTEXT_VALUES[name](request, route_key)
        elif kind == "stage":
            value = (stage_variables or {}).get(name, "")
        else:
            value = ""
        if not value:
            return None
        values.append(value)
    return tuple(values)


@lru_cache(maxsize=256)
def _parse_source(source: str) -> tuple[str, str]:
    """(kind, name) of an identity source; kind "" for one `validate` refuses."""
    if match := _HEADER.match(source):
        return "header", match.group(1).lower()
    if match := _QUERY.match(source):
        return "query", match.group(1)
    if (match := _CONTEXT.match(source)) and match.group(1) in _CONTEXT_VALUES:
        return "context", match.group(1)
    if match := _STAGE_VARIABLE.match(source):
        return "stage", match.group(1)
    return "", ""


def _query(raw: bytes) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    return params


def route_arn(region: str, account_id: str, api_id: str, stage: str, method: str, path: str) -> str:
    """The `routeArn` of a request, which IAM policy resources are matched against:
    `arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{METHOD}{path}`, `path` being the
    request's path (not the route's template), as in the docs' example event."""
    if not path.startswith("/"):
        path = "/" + path
    return f"arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/{method.upper()}{path}"


def build_authorizer_event(
    config: LambdaAuthorizerConfig,
    request: Request,
    match: Match,
    *,
    route_arn: str,
    identity: tuple[str, ...],
    stage: str,
    raw_path: str,
    request_id: str,
    account_id: str,
    api_id: str,
    stage_variables: dict[str, str] | None = None,
) -> bytes:
    """The authorizer's payload 2.0 event, JSON-encoded: the integration event's request parts
    (built by `mapping.event_of`, so headers, cookies and query are read the same way) plus
    `type`, `routeArn` and `identitySource`, without the body, which authorizers do not get.
    `config` is unused while 2.0 is the only authorizer payload format; it keeps call sites
    stable for 1.0."""
    bodiless = Request(
        request.method,
        request.raw_path,
        request.query_string,
        request.headers,
        b"",
        request.http_version,
        request.keep_alive,
        request.client,
    )
    base = event_of(request_parts(bodiless, match, request_id, stage, raw_path, api_id, account_id))
    event: dict[str, Any] = {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": route_arn,
        "identitySource": list(identity),
        "routeKey": base["routeKey"],
        "rawPath": base["rawPath"],
        "rawQueryString": base["rawQueryString"],
    }
    for key in ("cookies", "headers", "queryStringParameters", "requestContext", "pathParameters"):
        if key in base:
            event[key] = base[key]
    if stage_variables:
        event["stageVariables"] = dict(stage_variables)
    return orjson.dumps(event)


class _Malformed(Exception):
    """The authorizer's result is not of the configured response type (API Gateway: 500)."""


def evaluate(config: LambdaAuthorizerConfig, result: bytes, route_arn: str) -> AuthDecision:
    """The decision for `route_arn` from the authorizer function's result: 200 or 403, or 500
    when the result is not of the shape the config's response type asks for."""
    try:
        doc = orjson.loads(result)
        if not isinstance(doc, dict):
            raise _Malformed(f"the result must be a JSON object, got {type(doc).__name__}")
        if config.simple_responses:
            return _simple(doc)
        return _iam(doc, route_arn)
    except orjson.JSONDecodeError as exc:
        return AuthDecision(500, reason=f"authorizer result is not JSON: {exc}")
    except _Malformed as exc:
        return AuthDecision(500, reason=f"malformed authorizer result: {exc}")


def _context(doc: dict[str, Any]) -> dict[str, Any] | None:
    context = doc.get("context")
    if context is not None and not isinstance(context, dict):
        raise _Malformed("context must be an object")
    return context


def _simple(doc: dict[str, Any]) -> AuthDecision:
    authorized = doc.get("isAuthorized")
    if not isinstance(authorized, bool):
        raise _Malformed(f"isAuthorized must be true or false, got {authorized!r}")
    if authorized:
        return AuthDecision(200, _context(doc), reason="isAuthorized: true")
    return AuthDecision(403, _context(doc), reason="isAuthorized: false")


def _iam(doc: dict[str, Any], route_arn: str) -> AuthDecision:
    principal = doc.get("principalId")
    if not isinstance(principal, str):
        raise _Malformed(f"principalId must be a string, got {principal!r}")
    policy = _policy(doc.get("policyDocument"))
    context = _context(doc)
    status, reason = _policy_status(policy, route_arn)
    return AuthDecision(status, context, principal, reason, policy)


def _policy(document: Any) -> tuple[Statement, ...]:
    if not isinstance(document, dict):
        raise _Malformed("policyDocument must be an object")
    raw = document.get("Statement")
    if isinstance(raw, dict):  # IAM allows one statement without the list
        raw = [raw]
    if not isinstance(raw, list):
        raise _Malformed("policyDocument.Statement must be a list of statements")
    return tuple(_statement(item) for item in raw)


def _statement(item: Any) -> Statement:
    if not isinstance(item, dict):
        raise _Malformed("each policy statement must be an object")
    effect = item.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise _Malformed(f"Effect must be 'Allow' or 'Deny', got {effect!r}")
    return Statement(effect == "Allow", _patterns(item, "Action"), _patterns(item, "Resource"))


def _patterns(item: dict[str, Any], key: str) -> tuple[str, ...]:
    value = item.get(key)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _Malformed(f"{key} must be a string or a list of strings, got {value!r}")


def _policy_status(policy: tuple[Statement, ...], route_arn: str) -> tuple[int, str]:
    allowed = False
    for statement in policy:
        if not _any_match(statement.actions, INVOKE_ACTION, ignore_case=True):
            continue
        if not _any_match(statement.resources, route_arn, ignore_case=False):
            continue
        if not statement.allow:
            return 403, f"an explicit Deny matches {route_arn}"
        allowed = True
    if allowed:
        return 200, f"an Allow matches {route_arn}"
    return 403, f"no Allow statement matches {route_arn}"


def _any_match(patterns: tuple[str, ...], value: str, *, ignore_case: bool) -> bool:
    return any(_glob(pattern, ignore_case).fullmatch(value) for pattern in patterns)


@lru_cache(maxsize=1024)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM wildcards: `*` is any run of characters (`/` and `:` included), `?` any one.
    Action names compare case-insensitively, resource ARNs exactly, as IAM does."""
    regex = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile(regex, flags)


class DecisionCache:
    """Authorizer decisions kept for their TTL, keyed by what the caller passes: the identity
    values plus whatever names the authorizer, e.g. `(stage, function, identity)`, so two
    authorizers never share an entry. `get` takes the route ARN because an IAM policy is cached
    whole and evaluated again per route; a simple response is returned as it was.

    Only answers of the authorizer are kept (200 and 403), never its failures (500), so that
    a function fixed or recovered is asked again at once. When full, the oldest entry goes (in
    the gateway's use, usually one that expired anyway). Not thread-safe: the gateway uses it
    from its event loop only.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000
    ) -> None:
        self._clock = clock
        self._max_entries = max(1, max_entries)
        self._entries: dict[Hashable, tuple[float, AuthDecision]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, route_arn: str) -> AuthDecision | None:
        """The cached decision for the route `route_arn`, or None when absent or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, decision = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        return decision.for_route(route_arn)

    def put(self, key: Hashable, decision: AuthDecision, ttl_s: int) -> None:
        """Keep `decision` for `ttl_s` seconds; a TTL of 0 (caching off) or a 500 is ignored."""
        if ttl_s <= 0 or decision.status not in (200, 403):
            return
        self._entries.pop(key, None)
        while len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (self._clock() + ttl_s, decision)

    def clear(self) -> None:
        """Forget everything, e.g. when a deploy changes the authorizer."""
        self._entries.clear()
