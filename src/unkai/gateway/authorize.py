"""`Authorizers`: runs a route's authorizer, JWT or function (Lambda REQUEST), for the gateway.

Both answer through callbacks so that the common case (a token seen before, a cached function
decision) costs no task and no loop turn: `allow(authorizer_context)` continues the request,
`refuse(status, body, headers)` answers it. Only a JWKS fetch or a call of the authorizer function
waits, and then only that request does.

The authorizer function is run with `Invoker.start`, like any function of the stage: its logs,
limits and reserved concurrency apply. Its failures (error, timeout, a malformed answer) are
500s, as API Gateway answers them, and are not cached.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from unkai.config.http_api import RouteAuthorizer
from unkai.errors import UnkaiError
from unkai.gateway.authorizers import lambda_authorizer as fn_auth
from unkai.gateway.http1 import Headers, Request
from unkai.gateway.routes import Match, RouteTarget
from unkai.invoke.invoker import Invoker
from unkai.invoke.models import InvocationResult, Target
from unkai.invoke.request_ids import new_request_id

if TYPE_CHECKING:
    from unkai.gateway.authorizers.jwt import JwtAuthorizer, JwtDecision

log = logging.getLogger("unkai.gateway")

Allow = Callable[[dict[str, Any] | None], None]
#: (status, body, extra headers) of a refusal.
Refuse = Callable[[int, bytes, Headers], None]

_JWT_BODIES = {401: fn_auth.UNAUTHORIZED_BODY, 403: fn_auth.FORBIDDEN_BODY}


class Authorizers:
    def __init__(self, invoker: Invoker, *, region: str, account_id: str, api_id: str) -> None:
        self._invoker = invoker
        self._region = region
        self._account_id = account_id
        self._api_id = api_id
        #: By (stage, name, settings): a redeploy with other settings gets a new one.
        self._jwt: dict[tuple[str, str, str], JwtAuthorizer] = {}
        self._functions: dict[str, fn_auth.LambdaAuthorizerConfig] = {}
        self._decisions = fn_auth.DecisionCache()
        self._tasks: set[asyncio.Task[None]] = set()

    def forget(self, in_use: set[tuple[str, str, str]]) -> None:
        """Drop the authorizers no route uses any more, (stage, name, settings) each: every
        redeploy with other settings makes new ones, and a JWT authorizer holds its key set
        and up to CACHE_SIZE verified tokens."""
        for key in [k for k in self._jwt if k not in in_use]:
            del self._jwt[key]
        settings = {key[2] for key in in_use}
        for json_key in [k for k in self._functions if k not in settings]:
            del self._functions[json_key]

    def authorize(
        self,
        stage: str,
        stage_path: str,
        request: Request,
        match: Match,
        allow: Allow,
        refuse: Refuse,
    ) -> None:
        route = match.target
        authorizer = route.authorizer
        assert authorizer is not None
        if authorizer.type == "jwt":
            self._jwt_authorize(stage, authorizer, request, allow, refuse)
        else:
            self._function_authorize(stage, stage_path, route, request, match, allow, refuse)

    # -- JWT ----------------------------------------------------------------------------------

    def _jwt_authorize(
        self,
        stage: str,
        authorizer: RouteAuthorizer,
        request: Request,
        allow: Allow,
        refuse: Refuse,
    ) -> None:
        key = (stage, authorizer.name, authorizer.settings_json)
        jwt = self._jwt.get(key)
        if jwt is None:
            # Imported on first use: PyJWT and cryptography cost ~20 MiB of resident memory,
            # which a platform without JWT routes should not pay.
            from unkai.gateway.authorizers import jwt as jwt_module

            config = jwt_module.JwtAuthorizerConfig.from_doc(json.loads(authorizer.settings_json))
            jwt = self._jwt[key] = jwt_module.JwtAuthorizer(config)
        header = request.header(b"authorization")
        decision = jwt.decide_cached(header, authorizer.scopes)
        if decision is not None:
            _finish_jwt(decision, authorizer.scopes, allow, refuse)
            return

        async def fetch_then_decide() -> None:
            try:
                decision = await jwt.decide(header, authorizer.scopes)
            except Exception:  # boundary: a failed key fetch is a 500, never a hung request
                log.exception("jwt authorizer %s failed", authorizer.name)
                refuse(500, fn_auth.INTERNAL_ERROR_BODY, [])
                return
            _finish_jwt(decision, authorizer.scopes, allow, refuse)

        self._spawn(fetch_then_decide())

    # -- function (Lambda REQUEST) ------------------------------------------------------------

    def _function_authorize(
        self,
        stage: str,
        stage_path: str,
        route: RouteTarget,
        request: Request,
        match: Match,
        allow: Allow,
        refuse: Refuse,
    ) -> None:
        authorizer = route.authorizer
        assert authorizer is not None
        config = self._functions.get(authorizer.settings_json)
        if config is None:
            config = fn_auth.LambdaAuthorizerConfig.from_doc(json.loads(authorizer.settings_json))
            self._functions[authorizer.settings_json] = config
        identity = fn_auth.identity_values(config, request, route.route_key, route.stage_variables)
        if identity is None:
            refuse(401, fn_auth.UNAUTHORIZED_BODY, [])
            return
        arn = fn_auth.route_arn(
            self._region, self._account_id, self._api_id, stage, request.method, stage_path
        )
        cache_key = (stage, authorizer.name, authorizer.settings_json, identity)
        cached = self._decisions.get(cache_key, arn)
        if cached is not None:
            _finish_function(cached, allow, refuse)
            return
        event = fn_auth.build_authorizer_event(
            config,
            request,
            match,
            route_arn=arn,
            identity=identity,
            stage=stage,
            raw_path=request.path,
            request_id=new_request_id(),
            account_id=self._account_id,
            api_id=self._api_id,
            stage_variables=route.stage_variables,
        )

        def decided(outcome: InvocationResult | UnkaiError) -> None:
            decision = _function_decision(config, outcome, arn)
            if decision.status != 500:
                self._decisions.put(cache_key, decision, config.result_ttl_s)
            else:
                log.warning("authorizer %s failed: %s", config.function, decision.reason)
            _finish_function(decision, allow, refuse)

        self._invoker.start(Target(stage, config.function), event, decided)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _finish_jwt(
    decision: JwtDecision, route_scopes: tuple[str, ...], allow: Allow, refuse: Refuse
) -> None:
    if decision.status == 200:
        allow({"jwt": {"claims": decision.claims, "scopes": decision.scopes}})
        return
    challenge = decision.www_authenticate(route_scopes)
    refuse(
        decision.status,
        _JWT_BODIES.get(decision.status, fn_auth.UNAUTHORIZED_BODY),
        [(b"www-authenticate", challenge)] if challenge is not None else [],
    )


def _function_decision(
    config: fn_auth.LambdaAuthorizerConfig, outcome: InvocationResult | UnkaiError, arn: str
) -> fn_auth.AuthDecision:
    if isinstance(outcome, UnkaiError):
        return fn_auth.AuthDecision(500, reason=f"{outcome.code}: {outcome.message}")
    if outcome.error is not None or outcome.payload is None:
        error = outcome.error
        reason = f"{error.error_type}: {error.error_message}" if error else "no result"
        return fn_auth.AuthDecision(500, reason=reason)
    return fn_auth.evaluate(config, outcome.payload, arn)


def _finish_function(decision: fn_auth.AuthDecision, allow: Allow, refuse: Refuse) -> None:
    if decision.status == 200:
        allow(decision.integration_authorizer())
    else:
        refuse(
            decision.status,
            fn_auth.BODY_BY_STATUS.get(decision.status, fn_auth.INTERNAL_ERROR_BODY),
            [],
        )
