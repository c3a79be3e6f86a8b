"""Names are per stage: a function name or a route belongs to one service in a stage.

Lambda function names are unique per account and region, and an API Gateway route is unique
per API; a stage here plays both roles. Deploying service B must not silently take over a
function or route of service A, so the planner raises `Conflict` naming both.
"""

from __future__ import annotations

from collections.abc import Sequence

from unkai.config.checks import route_shape
from unkai.config.spec import ResolvedFunction
from unkai.deploy.snapshot import StageSnapshot
from unkai.deploy.versions import WEBSOCKET_METHOD, Route
from unkai.errors import Conflict


def check_ownership(
    service: str, functions: Sequence[ResolvedFunction], snapshot: StageSnapshot
) -> None:
    """Raise Conflict when another service of the stage owns a function name or a route."""
    stage = snapshot.stage
    for fn in functions:
        record = snapshot.functions.get(fn.name)
        if record is not None and record.value.service != service:
            owner = record.value.service
            raise Conflict(
                f"function {fn.name!r} in stage {stage!r} belongs to service {owner!r}; "
                f"service {service!r} cannot deploy a function of the same name",
                hint=f"rename the function, or remove the other service first: "
                f"unkai remove --service {owner} --stage {stage}",
            )
    taken = _routes_of_others(service, snapshot)
    for fn in functions:
        for ws in fn.websocket_events:
            other = taken.get((WEBSOCKET_METHOD, ws.route))
            if other is not None:
                raise Conflict(
                    f"websocket route {ws.route} in stage {stage!r} belongs to service "
                    f"{other.service!r} (function {other.function!r})",
                    hint="use another route key, or deploy to another stage with --stage",
                )
        for event in fn.http_events:
            other = taken.get((event.method, route_shape(event.path)))
            if other is not None:
                raise Conflict(
                    f"route {event.method} {event.path} in stage {stage!r} belongs to service "
                    f"{other.service!r} (function {other.function!r}); service {service!r} "
                    f"cannot route it to function {fn.name!r}",
                    hint="change the path, or deploy the service to another stage with --stage",
                )


def _routes_of_others(service: str, snapshot: StageSnapshot) -> dict[tuple[str, str], Route]:
    return {
        (route.method, route_shape(route.path)): route
        for owner, stored in snapshot.routes.items()
        if owner != service
        for route in stored.value
    }
