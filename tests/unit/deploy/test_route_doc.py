"""A route with every HTTP API option survives its stored document unchanged."""

from __future__ import annotations

from unkai.config.http_api import (
    CorsConfig,
    IpRules,
    RouteAuthorizer,
    ThrottleConfig,
    UsagePlanConfig,
    canonical_json,
)
from unkai.deploy.versions import Route


def test_route_options_round_trip_through_the_document() -> None:
    route = Route(
        "prod",
        "shop",
        "GET",
        "/items/{id}",
        "get_item",
        "1.0",
        CorsConfig(allow_origins=("https://a.example",), max_age=60),
        ThrottleConfig(5.0, 10),
        True,
        (("gold", UsagePlanConfig(ThrottleConfig(1.0, 2), 100, "WEEK")),),
        (("TABLE", "items"),),
        IpRules(allow=("10.0.0.0/8",)),
        RouteAuthorizer("users", "jwt", canonical_json({"issuer": "i"}), ("read",)),
        "$context.requestId",
        ThrottleConfig(100.0, 200),
    )
    again = Route.from_doc("prod", "shop", route.to_doc())
    assert again == route
    # Equality covers the options: a changed one is a changed route (a deploy rewrites it)
    assert again != Route.from_doc("prod", "shop", {**route.to_doc(), "accessLog": "x"})


def test_a_plain_route_stores_only_method_path_and_function() -> None:
    route = Route("dev", "svc", "POST", "/x", "f")
    assert route.to_doc() == {"method": "POST", "path": "/x", "function": "f"}
    assert Route.from_doc("dev", "svc", route.to_doc()) == route
