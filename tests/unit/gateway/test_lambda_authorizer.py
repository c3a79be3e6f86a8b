"""The HTTP API Lambda authorizer's pure logic: identity, event, evaluation and caching."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from unkai.gateway.authorizers.lambda_authorizer import (
    AuthDecision,
    DecisionCache,
    LambdaAuthorizerConfig,
    build_authorizer_event,
    evaluate,
    identity_values,
    route_arn,
)
from unkai.gateway.http1 import Request
from unkai.gateway.routes import Match, RouteTarget

ARN = "arn:aws:execute-api:us-east-1:000000000000:unkai/dev/GET/items/42"
SIMPLE = LambdaAuthorizerConfig("auth")
IAM = LambdaAuthorizerConfig("auth", simple_responses=False)
MATCH = Match(RouteTarget("dev", "hello", "GET /items/{id}"), {"id": "42"})


def request(
    headers: list[tuple[bytes, bytes]] | None = None,
    query: bytes = b"",
    body: bytes = b"",
    method: str = "GET",
) -> Request:
    return Request(
        method,
        b"/items/42",
        query,
        headers if headers is not None else [(b"authorization", b"Bearer t")],
        body,
        "1.1",
        True,
        ("127.0.0.1", 5555),
    )


def policy(*statements: dict[str, Any], principal: Any = "user-1") -> bytes:
    return orjson.dumps(
        {
            "principalId": principal,
            "policyDocument": {"Version": "2012-10-17", "Statement": list(statements)},
            "context": {"user": "ada"},
        }
    )


def statement(effect: str, resource: Any, action: Any = "execute-api:Invoke") -> dict[str, Any]:
    return {"Action": action, "Effect": effect, "Resource": resource}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- event -------------------------------------------------------------------------------------


def test_event_has_the_payload_2_0_authorizer_shape() -> None:
    # Given a request with headers, cookies, a query, a body and stage variables
    req = request(
        headers=[
            (b"host", b"api.local"),
            (b"authorization", b"Bearer t"),
            (b"x-multi", b"1"),
            (b"x-multi", b"2"),
            (b"cookie", b"a=1; b=2"),
        ],
        query=b"token=abc&tag=a&tag=b",
        body=b'{"secret": true}',
        method="POST",
    )
    # When the authorizer event is built
    raw = build_authorizer_event(
        SIMPLE,
        req,
        MATCH,
        route_arn=ARN,
        identity=("Bearer t",),
        stage="dev",
        raw_path="/items/42",
        request_id="rid",
        account_id="000000000000",
        api_id="unkai",
        stage_variables={"env": "test"},
    )
    event = orjson.loads(raw)
    # Then it has the documented fields, and no body
    assert event["version"] == "2.0"
    assert event["type"] == "REQUEST"
    assert event["routeArn"] == ARN
    assert event["identitySource"] == ["Bearer t"]
    assert event["routeKey"] == "GET /items/{id}"
    assert event["rawPath"] == "/items/42"
    assert event["rawQueryString"] == "token=abc&tag=a&tag=b"
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["headers"]["x-multi"] == "1,2"
    assert "cookie" not in event["headers"]
    assert event["queryStringParameters"] == {"token": "abc", "tag": "a,b"}
    assert event["pathParameters"] == {"id": "42"}
    assert event["stageVariables"] == {"env": "test"}
    context = event["requestContext"]
    assert context["http"]["method"] == "POST"
    assert context["http"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"] == "rid"
    assert context["stage"] == "dev"
    assert context["apiId"] == "unkai"
    assert context["accountId"] == "000000000000"
    assert "body" not in event
    assert "isBase64Encoded" not in event


def test_event_omits_absent_parts() -> None:
    # Given a bare request on a route without parameters
    match = Match(RouteTarget("dev", "hello", "$default"), {})
    # When the event is built without stage variables
    event = orjson.loads(
        build_authorizer_event(
            SIMPLE,
            request(),
            match,
            route_arn=ARN,
            identity=("Bearer t",),
            stage="dev",
            raw_path="/items/42",
            request_id="rid",
            account_id="0",
            api_id="unkai",
        )
    )
    # Then the optional parts are missing rather than empty
    for key in ("cookies", "queryStringParameters", "pathParameters", "stageVariables"):
        assert key not in event


def test_route_arn_has_the_execute_api_format() -> None:
    # Given / When a route ARN is made with a lower-case method and a path without a slash
    arn = route_arn("us-east-1", "000000000000", "unkai", "dev", "get", "items/42")
    # Then it has API Gateway's format
    assert arn == ARN


# --- identity ----------------------------------------------------------------------------------


def test_identity_values_read_every_kind_of_source() -> None:
    # Given an authorizer with a header, a query, a context and a stage variable source
    config = LambdaAuthorizerConfig(
        "auth",
        (
            "$request.header.AUTHORIZATION",
            "$request.querystring.token",
            "$context.routeKey",
            "$stageVariables.tenant",
        ),
    )
    req = request(query=b"token=a%20b&token=c")
    # When the identity is read
    values = identity_values(config, req, "GET /items/{id}", {"tenant": "t1"})
    # Then header names are case-insensitive and repeated query values joined
    assert values == ("Bearer t", "a b,c", "GET /items/{id}", "t1")


@pytest.mark.parametrize(
    ("source", "headers", "query", "stage_variables"),
    [
        ("$request.header.Authorization", [], b"", None),
        ("$request.header.Authorization", [(b"authorization", b"")], b"", None),
        ("$request.querystring.token", [], b"Token=x", None),
        ("$request.querystring.token", [], b"token=", None),
        ("$stageVariables.tenant", [], b"", None),
        ("$stageVariables.tenant", [], b"", {"other": "x"}),
    ],
)
def test_identity_is_none_when_a_source_is_missing_or_empty(
    source: str,
    headers: list[tuple[bytes, bytes]],
    query: bytes,
    stage_variables: dict[str, str] | None,
) -> None:
    # Given an authorizer whose identity source the request lacks
    config = LambdaAuthorizerConfig("auth", (source,))
    # When the identity is read
    values = identity_values(config, request(headers, query), "$default", stage_variables)
    # Then there is none (the gateway answers 401 without invoking the authorizer)
    assert values is None


def test_identity_is_empty_without_identity_sources() -> None:
    # Given an authorizer with no identity sources (allowed when caching is off)
    config = LambdaAuthorizerConfig("auth", (), result_ttl_s=0)
    # When / Then every request has the empty identity
    assert identity_values(config, request([]), "$default", None) == ()


# --- simple responses --------------------------------------------------------------------------


def test_simple_response_allows_with_context() -> None:
    # Given a simple response that authorizes, with a context
    result = orjson.dumps({"isAuthorized": True, "context": {"user": "ada", "n": 1}})
    # When it is evaluated
    decision = evaluate(SIMPLE, result, ARN)
    # Then the request is allowed and the context reaches the integration
    assert decision.status == 200
    assert decision.context == {"user": "ada", "n": 1}
    assert decision.integration_authorizer() == {"lambda": {"user": "ada", "n": 1}}


def test_simple_response_denies() -> None:
    # Given / When a simple response that does not authorize is evaluated
    decision = evaluate(SIMPLE, b'{"isAuthorized": false}', ARN)
    # Then the request is forbidden
    assert decision.status == 403
    assert decision.context is None
    assert decision.integration_authorizer() == {"lambda": {}}


@pytest.mark.parametrize(
    "result",
    [
        b"not json",
        b'"yes"',
        b'{"isAuthorized": "true"}',
        b"{}",
        b'{"isAuthorized": true, "context": "x"}',
        policy(statement("Allow", "*")),
    ],
)
def test_malformed_simple_response_is_an_internal_error(result: bytes) -> None:
    # Given / When a result that is not a simple response is evaluated
    decision = evaluate(SIMPLE, result, ARN)
    # Then the gateway answers 500 and logs why
    assert decision.status == 500
    assert decision.reason


# --- IAM policy responses ----------------------------------------------------------------------


def test_iam_allow_with_a_wildcard_resource() -> None:
    # Given a policy allowing every GET of the stage
    result = policy(
        statement("Allow", "arn:aws:execute-api:us-east-1:000000000000:unkai/dev/GET/*")
    )
    # When it is evaluated for GET /items/42
    decision = evaluate(IAM, result, ARN)
    # Then the request is allowed, with the principal and the context
    assert decision.status == 200
    assert decision.principal_id == "user-1"
    assert decision.context == {"user": "ada"}


def test_iam_explicit_deny_wins_over_allow() -> None:
    # Given a policy that allows everything but denies this route, in either order
    allow = statement("Allow", ["arn:aws:execute-api:*"])
    deny = statement("Deny", ARN)
    for statements in ((allow, deny), (deny, allow)):
        # When it is evaluated
        decision = evaluate(IAM, policy(*statements), ARN)
        # Then the deny wins
        assert decision.status == 403


def test_iam_non_matching_resource_is_forbidden() -> None:
    # Given a policy allowing another route only
    result = policy(statement("Allow", ARN.replace("/GET/", "/POST/")))
    # When / Then this route is forbidden
    assert evaluate(IAM, result, ARN).status == 403


def test_iam_resource_question_mark_matches_one_character() -> None:
    # Given a policy whose resource ends with `?` wildcards
    result = policy(statement("Allow", ARN[:-2] + "??"))
    # When / Then it matches exactly two characters there
    assert evaluate(IAM, result, ARN).status == 200
    assert evaluate(IAM, result, ARN + "1").status == 403
    assert evaluate(IAM, result, ARN[:-1]).status == 403


def test_iam_actions_match_with_wildcards_and_resources_case_sensitively() -> None:
    # Given policies with wildcard, other-service and case-changed patterns
    cases = [
        (statement("Allow", ARN, action="execute-api:*"), 200),
        (statement("Allow", ARN, action=["EXECUTE-API:invoke"]), 200),
        (statement("Allow", ARN, action="s3:GetObject"), 403),
        (statement("Allow", ARN.upper()), 403),
        (statement("Deny", "*", action="s3:*"), 403),
    ]
    for item, status in cases:
        # When / Then each is read as IAM reads it
        assert evaluate(IAM, policy(item), ARN).status == status, item


def test_iam_single_statement_object_is_accepted() -> None:
    # Given a policy whose Statement is one object, not a list
    result = orjson.dumps(
        {
            "principalId": "p",
            "policyDocument": {"Version": "2012-10-17", "Statement": statement("Allow", "*")},
        }
    )
    # When / Then it is evaluated like a one-element list
    assert evaluate(IAM, result, ARN).status == 200


@pytest.mark.parametrize(
    "result",
    [
        b"",
        b"[]",
        b'{"isAuthorized": true}',
        policy(statement("Allow", "*"), principal=None),
        policy(statement("Allow", "*"), principal=7),
        orjson.dumps({"principalId": "p", "policyDocument": "Allow"}),
        orjson.dumps({"principalId": "p", "policyDocument": {"Statement": "x"}}),
        policy(statement("allow", "*")),
        policy(statement("Allow", 42)),
        policy({"Effect": "Allow", "Resource": "*"}),
        policy("Allow"),  # type: ignore[arg-type]
        orjson.dumps(
            {
                "principalId": "p",
                "policyDocument": {"Statement": [statement("Allow", "*")]},
                "context": [1],
            }
        ),
    ],
)
def test_malformed_iam_response_is_an_internal_error(result: bytes) -> None:
    # Given / When a result that is not an IAM policy response is evaluated
    decision = evaluate(IAM, result, ARN)
    # Then the gateway answers 500
    assert decision.status == 500
    assert decision.reason


# --- cache -------------------------------------------------------------------------------------


def test_cache_miss_hit_and_expiry() -> None:
    # Given an empty cache on a fake clock
    clock = FakeClock()
    cache = DecisionCache(clock)
    decision = evaluate(SIMPLE, b'{"isAuthorized": true, "context": {"u": 1}}', ARN)
    # When nothing was put / Then it misses
    assert cache.get(("dev", "auth", ("t",)), ARN) is None
    # When a decision is put for 300 s / Then it is returned for any route until then
    cache.put(("dev", "auth", ("t",)), decision, 300)
    clock.now += 299.9
    assert cache.get(("dev", "auth", ("t",)), ARN) == decision
    assert cache.get(("dev", "auth", ("t",)), ARN.replace("GET", "POST")) == decision
    assert cache.get(("dev", "auth", ("other",)), ARN) is None
    # When the TTL has passed / Then it misses and the entry is gone
    clock.now += 0.1
    assert cache.get(("dev", "auth", ("t",)), ARN) is None
    assert len(cache) == 0


def test_cache_evaluates_a_cached_policy_again_for_another_route() -> None:
    # Given a policy allowing GETs only, evaluated and cached for a GET
    cache = DecisionCache(FakeClock())
    result = policy(statement("Allow", "arn:aws:execute-api:*:*:unkai/dev/GET/*"))
    cache.put("k", evaluate(IAM, result, ARN), 300)
    # When the same identity asks for a POST
    post = cache.get("k", ARN.replace("/GET/", "/POST/"))
    # Then the cached policy forbids it, and still allows the GET
    assert post is not None
    assert post.status == 403
    assert post.principal_id == "user-1"
    hit = cache.get("k", ARN)
    assert hit is not None
    assert hit.status == 200


def test_cache_keeps_a_denial_for_another_route_that_the_policy_allows() -> None:
    # Given a policy allowing POSTs only, cached after denying a GET
    cache = DecisionCache(FakeClock())
    post_arn = ARN.replace("/GET/", "/POST/")
    denied = evaluate(IAM, policy(statement("Allow", post_arn)), ARN)
    assert denied.status == 403
    cache.put("k", denied, 60)
    # When / Then the POST is allowed from the cache
    hit = cache.get("k", post_arn)
    assert hit is not None
    assert hit.status == 200


def test_cache_ignores_errors_and_a_zero_ttl() -> None:
    # Given a cache
    cache = DecisionCache(FakeClock())
    # When an error, a 401 and a decision with TTL 0 are put
    cache.put("a", AuthDecision(500, reason="boom"), 300)
    cache.put("b", AuthDecision(401), 300)
    cache.put("c", AuthDecision(200), 0)
    # Then none is kept
    assert len(cache) == 0


def test_cache_drops_the_oldest_entry_when_full() -> None:
    # Given a cache of two entries, full
    cache = DecisionCache(FakeClock(), max_entries=2)
    cache.put("a", AuthDecision(200), 60)
    cache.put("b", AuthDecision(200), 60)
    # When a third is put
    cache.put("c", AuthDecision(403), 60)
    # Then the oldest is gone
    assert cache.get("a", ARN) is None
    assert cache.get("b", ARN) is not None
    assert cache.get("c", ARN) == AuthDecision(403)


# --- config ------------------------------------------------------------------------------------


def test_config_defaults_are_valid_and_round_trip() -> None:
    # Given the default config
    config = LambdaAuthorizerConfig("auth")
    # When / Then it is valid, caches 300 s and survives to_doc/from_doc
    assert config.validate() == []
    assert config.result_ttl_s == 300
    assert LambdaAuthorizerConfig.from_doc(config.to_doc()) == config
    assert LambdaAuthorizerConfig.from_doc({"function": "auth"}) == config


def test_config_from_doc_takes_a_comma_separated_identity_source() -> None:
    # Given an identity source as the AWS CLI takes it
    doc = {"function": "auth", "identitySource": "$request.header.A, $request.querystring.b"}
    # When / Then it is split
    config = LambdaAuthorizerConfig.from_doc(doc)
    assert config.identity_sources == ("$request.header.A", "$request.querystring.b")


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (LambdaAuthorizerConfig(""), "function:"),
        (LambdaAuthorizerConfig("bad name"), "function:"),
        (LambdaAuthorizerConfig("a", ("Authorization",)), "identitySource:"),
        (LambdaAuthorizerConfig("a", ("route.request.header.Auth",)), "identitySource:"),
        (LambdaAuthorizerConfig("a", ("$request.header.bad name",)), "identitySource:"),
        (LambdaAuthorizerConfig("a", ("$context.authorizer.x",)), "identitySource:"),
        (LambdaAuthorizerConfig("a", ("$stageVariables.a-b",)), "identitySource:"),
        (LambdaAuthorizerConfig("a", ()), "identitySource:"),
        (LambdaAuthorizerConfig("a", result_ttl_s=-1), "resultTtlInSeconds:"),
        (LambdaAuthorizerConfig("a", result_ttl_s=3601), "resultTtlInSeconds:"),
        (LambdaAuthorizerConfig.from_doc({"function": "a", "resultTtlInSeconds": "5"}), "result"),
        (LambdaAuthorizerConfig.from_doc({"function": "a", "enableSimpleResponses": "no"}), "en"),
    ],
)
def test_validate_names_the_field_of_each_problem(
    config: LambdaAuthorizerConfig, field: str
) -> None:
    # Given / When an invalid config is validated
    problems = config.validate()
    # Then there is one problem, naming the field first
    assert len(problems) == 1, problems
    assert problems[0].startswith(field)


def test_validate_accepts_every_kind_of_source_and_no_source_without_caching() -> None:
    # Given configs with each kind of identity source, and one without sources or caching
    sources = (
        "$request.header.X-Api-Key",
        "$request.querystring.token",
        "$context.routeKey",
        "$context.identity.sourceIp",
        "$stageVariables.tenant_1",
    )
    # When / Then they are valid
    assert LambdaAuthorizerConfig("auth", sources, 3600, False).validate() == []
    assert LambdaAuthorizerConfig("auth", (), 0).validate() == []
