"""The gateway keeps an authorizer per (stage, name, settings) only while a route uses it:
each redeploy with other settings makes new ones, and a JWT authorizer holds its key set and
up to 10,000 verified tokens."""

from __future__ import annotations

import asyncio
import json

from unkai.config.http_api import RouteAuthorizer
from unkai.gateway.authorize import Authorizers
from unkai.gateway.authorizers.jwt import JwtAuthorizerConfig
from unkai.gateway.http1 import Request
from unkai.gateway.routes import Match, RouteTarget

SECRET = "an-hmac-secret-of-at-least-thirty-two-bytes"


def _route(issuer: str) -> RouteTarget:
    settings = JwtAuthorizerConfig(issuer, ("api",), static_key=SECRET).to_doc()
    authorizer = RouteAuthorizer("tokens", "jwt", json.dumps(settings, sort_keys=True))
    return RouteTarget("dev", "fn", "GET /x", authorizer=authorizer)


def _call(authorizers: Authorizers, route: RouteTarget) -> list[int]:
    refused: list[int] = []
    request = Request("GET", b"/x", b"", [], b"", "1.1", True, ("127.0.0.1", 1))
    authorizers.authorize(
        "dev",
        "/x",
        request,
        Match(route, {}),
        lambda _context: None,
        lambda status, _body, _headers: refused.append(status),
    )
    return refused


def test_authorizers_no_route_uses_are_dropped() -> None:
    async def main() -> tuple[int, int, list[int]]:
        authorizers = Authorizers(None, region="us-east-1", account_id="0", api_id="a")  # type: ignore[arg-type]
        # Given two deploys of a JWT route with different settings, both called
        first, second = _route("https://one.example"), _route("https://two.example")
        assert _call(authorizers, first) == [401]  # no token
        assert _call(authorizers, second) == [401]
        held = len(authorizers._jwt)
        # When routes are compiled and only the second deploy's route is in use
        assert second.authorizer is not None
        authorizers.forget({("dev", "tokens", second.authorizer.settings_json)})
        # Then the first one's authorizer is gone, and the route in use still works
        return held, len(authorizers._jwt), _call(authorizers, second)

    held, kept, refused = asyncio.run(main())
    assert (held, kept, refused) == (2, 1, [401])
