"""The route table: compiled once per deploy into a segment trie, matched without regex.

Precedence follows API Gateway HTTP APIs
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html):
a literal segment beats `{param}`, which beats a greedy `{proxy+}`; a route with the request's
method beats `ANY`. A path that exists with other methods only is a 405, otherwise a 404.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from unkai.config.http_api import (
    CorsConfig,
    IpRules,
    RouteAuthorizer,
    ThrottleConfig,
    UsagePlanConfig,
)
from unkai.invoke.models import Target


@dataclass(frozen=True, slots=True)
class RouteTarget:
    stage: str
    function: str
    #: "GET /items/{id}": the routeKey the event carries.
    route_key: str
    #: The Lambda proxy payload format: "2.0" (HTTP API) or "1.0" (REST proxy shape).
    payload: str = "2.0"
    cors: CorsConfig | None = None
    throttle: ThrottleConfig | None = None
    api_key_required: bool = False
    usage_plans: tuple[tuple[str, UsagePlanConfig], ...] = ()
    #: A dict, built once per deploy; the events carry it as is. Not part of the hash.
    stage_variables: dict[str, str] | None = field(default=None, hash=False, compare=False)
    ip_rules: IpRules | None = None
    authorizer: RouteAuthorizer | None = None
    #: The access log format of the route's service, and the service (the log's name).
    access_log: str | None = None
    service: str = ""
    stage_throttle: ThrottleConfig | None = None
    #: What a request of this route invokes, made once per deploy rather than per request.
    invoke_target: Target = field(init=False, repr=False, compare=False, hash=False)
    #: An API key, a usage plan or a throttle applies: the gateway's admission step runs.
    needs_admission: bool = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "invoke_target", Target(self.stage, self.function))
        object.__setattr__(
            self,
            "needs_admission",
            self.api_key_required or self.throttle is not None or self.stage_throttle is not None,
        )

    def usage_plan(self, name: str) -> UsagePlanConfig | None:
        for plan_name, plan in self.usage_plans:
            if plan_name == name:
                return plan
        return None


@dataclass(frozen=True, slots=True)
class Match:
    target: RouteTarget
    path_parameters: dict[str, str]


@dataclass(slots=True)
class _Node:
    literals: dict[str, _Node] = field(default_factory=dict)
    param: tuple[str, _Node] | None = None
    greedy: tuple[str, dict[str, RouteTarget]] | None = None
    methods: dict[str, RouteTarget] = field(default_factory=dict)


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


class RouteTable:
    """Immutable after `compile`; `match` is what the hot path calls."""

    def __init__(self) -> None:
        self._root = _Node()
        self._static: dict[tuple[str, str], RouteTarget] = {}
        #: The `$default` route: what no other route matches, whatever the method.
        self._default: RouteTarget | None = None
        #: Each route's own parameter names, in path order: routes that share a trie node
        #: (`/items/{id}` and `/items/{itemId}/tags`) share its first name, not their own.
        self._names: dict[RouteTarget, tuple[str, ...]] = {}

    @classmethod
    def compile(cls, routes: Iterable[tuple[str, str, RouteTarget]]) -> RouteTable:
        """Build from (method, path, target) triples; later duplicates replace earlier ones."""
        table = cls()
        for method, path, target in routes:
            table._add(method.upper(), path, target)
        return table

    def _add(self, method: str, path: str, target: RouteTarget) -> None:
        if path == "$default":
            self._default = target
            return
        node = self._root
        segments = _segments(path)
        self._names[target] = tuple(
            s.strip("{}").removesuffix("+") for s in segments if s.startswith("{")
        )
        if all(not s.startswith("{") for s in segments):
            self._static[(method, "/" + "/".join(segments))] = target
        for index, segment in enumerate(segments):
            if segment.startswith("{") and segment.endswith("+}"):
                if index != len(segments) - 1:
                    raise ValueError(f"greedy {segment} must be the last segment of {path}")
                name = segment[1:-2]
                if node.greedy is None:
                    node.greedy = (name, {})
                node.greedy[1][method] = target
                return
            if segment.startswith("{") and segment.endswith("}"):
                if node.param is None:
                    node.param = (segment[1:-1], _Node())
                node = node.param[1]
            else:
                node = node.literals.setdefault(segment, _Node())
        node.methods[method] = target

    def match(self, method: str, path: str) -> Match | None:
        """The best route for the request, or None (see `allows_path` for 404 vs 405)."""
        target = self._static.get((method, path)) or self._static.get(("ANY", path))
        if target is not None:
            return Match(target, {})
        found = self._walk(self._root, _segments(path), 0, method, {})
        if found is None:
            return Match(self._default, {}) if self._default is not None else None
        names = self._names.get(found.target, ())
        if tuple(found.path_parameters) != names:
            return Match(
                found.target, dict(zip(names, found.path_parameters.values(), strict=False))
            )
        return found

    def targets(self) -> list[RouteTarget]:
        """Every route's target (for bookkeeping after a compile, not the hot path)."""
        found: list[RouteTarget] = list(self._static.values())
        if self._default is not None:
            found.append(self._default)
        stack = [self._root]
        while stack:
            node = stack.pop()
            found.extend(node.methods.values())
            if node.greedy is not None:
                found.extend(node.greedy[1].values())
            stack.extend(node.literals.values())
            if node.param is not None:
                stack.append(node.param[1])
        return found

    def allows_path(self, path: str) -> bool:
        """True when some method has a route for `path` (so a miss is a 405, not a 404)."""
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"):
            if self._walk(self._root, _segments(path), 0, method, {}) is not None:
                return True
        return False

    def _walk(
        self, node: _Node, segments: list[str], index: int, method: str, params: dict[str, str]
    ) -> Match | None:
        if index == len(segments):
            target = node.methods.get(method) or node.methods.get("ANY")
            if target is not None:
                return Match(target, params)
            return self._greedy(node, segments, index, method, params)
        child = node.literals.get(segments[index])
        if child is not None:
            found = self._walk(child, segments, index + 1, method, params)
            if found is not None:
                return found
        if node.param is not None:
            name, child = node.param
            found = self._walk(
                child, segments, index + 1, method, {**params, name: segments[index]}
            )
            if found is not None:
                return found
        return self._greedy(node, segments, index, method, params)

    @staticmethod
    def _greedy(
        node: _Node, segments: list[str], index: int, method: str, params: dict[str, str]
    ) -> Match | None:
        if node.greedy is None or index == len(segments):
            return None
        name, methods = node.greedy
        target = methods.get(method) or methods.get("ANY")
        if target is None:
            return None
        return Match(target, {**params, name: "/".join(segments[index:])})
