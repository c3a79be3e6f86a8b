"""CORS as API Gateway HTTP APIs do it: preflights answered by the gateway, headers added."""

from __future__ import annotations

import pytest

from unkai.config.http_api import CorsConfig
from unkai.gateway.cors import add_cors_headers, is_preflight, preflight_response
from unkai.gateway.http1 import Headers, Request

APP = "https://app.example.com"

CONFIG = CorsConfig(
    allow_origins=(APP, "https://admin.example.com"),
    allow_methods=("GET", "POST"),
    allow_headers=("Content-Type", "X-Api-Key"),
    expose_headers=("x-request-id", "date"),
    allow_credentials=True,
    max_age=300,
)


def request(method: str = "GET", **headers: str) -> Request:
    pairs = [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return Request(method, b"/items", b"", pairs, b"", "1.1", True, ("127.0.0.1", 5555))


def preflight(origin: str = APP, method: str = "POST", asked: str | None = None) -> Request:
    headers = {"origin": origin, "access_control_request_method": method}
    if asked is not None:
        headers["access_control_request_headers"] = asked
    return request("OPTIONS", **headers)


def cors_part(headers: Headers) -> dict[bytes, bytes]:
    return {name: value for name, value in headers if name.startswith(b"access-control-")}


# -- is_preflight ------------------------------------------------------------------------------


def test_preflight_needs_options_origin_and_requested_method() -> None:
    # Given requests that have only some of a preflight's parts
    # Then only the one with all three is a preflight
    assert is_preflight(preflight())
    assert not is_preflight(request("OPTIONS", origin=APP))
    assert not is_preflight(request("OPTIONS", access_control_request_method="GET"))
    assert not is_preflight(request("GET", origin=APP, access_control_request_method="GET"))


# -- preflight_response ------------------------------------------------------------------------


def test_allowed_preflight_gets_204_and_every_header() -> None:
    # Given a preflight from an allowed origin for an allowed method and headers
    # When the gateway answers it
    status, headers, body = preflight_response(CONFIG, preflight(asked="content-type, x-api-key"))
    # Then it is a 204 without body, carrying the configured CORS headers
    assert status == 204 and body == b""
    assert cors_part(headers) == {
        b"access-control-allow-origin": APP.encode(),
        b"access-control-allow-credentials": b"true",
        b"access-control-allow-methods": b"GET,POST",
        b"access-control-allow-headers": b"content-type,x-api-key",
        b"access-control-max-age": b"300",
    }
    assert (b"vary", b"origin") in headers


def test_max_age_is_left_out_when_not_configured_and_zero_is_kept() -> None:
    # Given configs without max age and with a max age of 0
    base = CorsConfig(allow_origins=(APP,), allow_methods=("POST",))
    zero = CorsConfig(allow_origins=(APP,), allow_methods=("POST",), max_age=0)
    # Then only the second preflight answer names one
    assert b"access-control-max-age" not in cors_part(preflight_response(base, preflight())[1])
    assert cors_part(preflight_response(zero, preflight())[1])[b"access-control-max-age"] == b"0"


def test_star_origin_answers_star_without_vary() -> None:
    # Given any origin allowed, without credentials
    config = CorsConfig(allow_origins=("*",), allow_methods=("POST",))
    # When some origin sends a preflight
    _, headers, _ = preflight_response(config, preflight(origin="https://anyone.test"))
    # Then the answer allows `*` and does not vary by origin
    part = cors_part(headers)
    assert part[b"access-control-allow-origin"] == b"*"
    assert b"access-control-allow-credentials" not in part
    assert (b"vary", b"origin") not in headers


def test_scheme_wildcard_origin_echoes_matching_origins_only() -> None:
    # Given origins allowed by scheme, as `https://*`
    config = CorsConfig(allow_origins=("https://*",), allow_methods=("POST",))
    # Then an https origin is echoed and an http one gets no CORS headers
    https = cors_part(preflight_response(config, preflight(origin="https://x.test"))[1])
    assert https[b"access-control-allow-origin"] == b"https://x.test"
    assert cors_part(preflight_response(config, preflight(origin="http://x.test"))[1]) == {}


def test_disallowed_origin_preflight_gets_204_without_cors_headers() -> None:
    # Given a preflight from an origin that is not listed
    status, headers, body = preflight_response(CONFIG, preflight(origin="https://evil.test"))
    # Then it is still a 204, but nothing allows it
    assert status == 204 and body == b""
    assert cors_part(headers) == {}
    assert headers == [(b"vary", b"origin")]


def test_origin_match_is_exact_not_a_prefix_or_suffix() -> None:
    for origin in (
        APP + ".evil.test",
        "https://evil.test/" + APP,
        APP + ":8443",
        "http://app.example.com",
    ):
        assert cors_part(preflight_response(CONFIG, preflight(origin=origin))[1]) == {}


def test_disallowed_method_preflight_gets_no_cors_headers() -> None:
    # Given a preflight for a method the config does not allow
    status, headers, _ = preflight_response(CONFIG, preflight(method="DELETE"))
    # Then it gets no CORS headers
    assert status == 204 and cors_part(headers) == {}


def test_star_methods_echo_the_requested_method() -> None:
    # Given all methods allowed
    config = CorsConfig(allow_origins=(APP,), allow_methods=("*",))
    # When a preflight asks for DELETE
    _, headers, _ = preflight_response(config, preflight(method="DELETE"))
    # Then DELETE is what is allowed (a literal `*` would fail with credentials)
    assert cors_part(headers)[b"access-control-allow-methods"] == b"DELETE"


def test_allowed_headers_compare_case_insensitively() -> None:
    # Given allowHeaders in mixed case and a preflight asking in other cases
    _, headers, _ = preflight_response(CONFIG, preflight(asked="X-API-KEY,Content-type"))
    # Then they are allowed
    assert cors_part(headers)[b"access-control-allow-origin"] == APP.encode()


def test_a_header_not_allowed_fails_the_whole_preflight() -> None:
    # Given a preflight asking for one allowed and one unknown header
    _, headers, _ = preflight_response(CONFIG, preflight(asked="content-type, x-other"))
    # Then it gets no CORS headers
    assert cors_part(headers) == {}


def test_star_headers_allow_and_echo_any_requested_headers() -> None:
    # Given all headers allowed
    config = CorsConfig(allow_origins=(APP,), allow_methods=("POST",), allow_headers=("*",))
    # When a preflight asks for arbitrary headers
    _, headers, _ = preflight_response(config, preflight(asked="X-One, x-two"))
    # Then exactly those are allowed
    assert cors_part(headers)[b"access-control-allow-headers"] == b"x-one,x-two"


def test_no_allow_headers_header_when_none_configured_or_asked() -> None:
    config = CorsConfig(allow_origins=(APP,), allow_methods=("POST",))
    assert b"access-control-allow-headers" not in cors_part(
        preflight_response(config, preflight())[1]
    )


# -- add_cors_headers --------------------------------------------------------------------------


def test_response_gets_origin_credentials_and_expose_headers() -> None:
    # Given a function response to an allowed origin
    out = add_cors_headers(CONFIG, request(origin=APP), [(b"content-type", b"text/plain")])
    # Then the actual-request CORS headers are added, and no preflight-only ones
    assert cors_part(out) == {
        b"access-control-allow-origin": APP.encode(),
        b"access-control-allow-credentials": b"true",
        b"access-control-expose-headers": b"x-request-id,date",
    }
    assert (b"content-type", b"text/plain") in out and (b"vary", b"origin") in out


def test_ours_override_the_functions_cors_headers_and_keep_the_rest() -> None:
    # Given a function that set its own CORS headers
    function_headers: Headers = [
        (b"content-type", b"application/json"),
        (b"access-control-allow-origin", b"*"),
        (b"Access-Control-Allow-Methods", b"DELETE"),
        (b"x-custom", b"1"),
    ]
    # When the gateway adds the configured ones
    out = add_cors_headers(CONFIG, request(origin=APP), function_headers)
    # Then only the configured CORS headers remain, other headers stay in order, input unchanged
    assert [pair for pair in out if pair[0] == b"access-control-allow-origin"] == [
        (b"access-control-allow-origin", APP.encode())
    ]
    assert b"access-control-allow-methods" not in {name.lower() for name, _ in out}
    assert out[:2] == [(b"content-type", b"application/json"), (b"x-custom", b"1")]
    assert len(function_headers) == 4


def test_functions_cors_headers_are_dropped_for_a_disallowed_origin() -> None:
    # Given a function that allows everyone, called from an origin the config does not allow
    out = add_cors_headers(
        CONFIG, request(origin="https://evil.test"), [(b"access-control-allow-origin", b"*")]
    )
    # Then the response carries no CORS headers at all
    assert cors_part(out) == {}
    assert out == [(b"vary", b"origin")]


def test_no_origin_leaves_the_response_unchanged() -> None:
    # Given a request without Origin (not a CORS request)
    headers: Headers = [(b"content-type", b"text/plain"), (b"x-a", b"1")]
    out = add_cors_headers(CONFIG, request(), headers)
    # Then the headers are the function's, in a new list
    assert out == headers and out is not headers


def test_star_origin_response_has_no_vary() -> None:
    config = CorsConfig(allow_origins=("*",))
    out = add_cors_headers(config, request(origin="https://x.test"), [])
    assert out == [(b"access-control-allow-origin", b"*")]


def test_existing_vary_origin_is_not_repeated() -> None:
    out = add_cors_headers(CONFIG, request(origin=APP), [(b"vary", b"Accept, Origin")])
    assert [pair for pair in out if pair[0] == b"vary"] == [(b"vary", b"Accept, Origin")]


# -- validate / to_doc / from_doc --------------------------------------------------------------


def test_a_sound_config_has_no_problems() -> None:
    assert CONFIG.validate() == []
    assert CorsConfig(allow_origins=("*", "https://*"), allow_methods=("*",)).validate() == []


def test_star_origin_with_credentials_is_refused() -> None:
    config = CorsConfig(allow_origins=("*",), allow_credentials=True)
    assert config.validate() == ["allowOrigins: '*' cannot be used with allowCredentials: true"]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (CorsConfig(allow_origins=("https://app.example.com/",)), "allowOrigins"),
        (CorsConfig(allow_origins=("app.example.com",)), "allowOrigins"),
        (CorsConfig(allow_origins=("https://*.example.com",)), "allowOrigins"),
        (CorsConfig(allow_origins=("",)), "allowOrigins"),
        (CorsConfig(allow_methods=("FETCH",)), "allowMethods"),
        (CorsConfig(allow_headers=("bad header",)), "allowHeaders"),
        (CorsConfig(expose_headers=("x:y",)), "exposeHeaders"),
        (CorsConfig(max_age=-1), "maxAge"),
        (CorsConfig(max_age=86401), "maxAge"),
    ],
)
def test_invalid_fields_are_named(config: CorsConfig, field: str) -> None:
    # Given a config with one bad field
    problems = config.validate()
    # Then there is one problem and it names the field
    assert len(problems) == 1 and problems[0].startswith(f"{field}: ")


def test_max_age_bounds_are_inclusive() -> None:
    assert CorsConfig(max_age=0).validate() == []
    assert CorsConfig(max_age=86400).validate() == []


def test_doc_round_trip() -> None:
    # Given a full config
    doc = CONFIG.to_doc()
    # Then its document is camelCase and reads back to an equal config
    assert doc == {
        "allowOrigins": [APP, "https://admin.example.com"],
        "allowMethods": ["GET", "POST"],
        "allowHeaders": ["Content-Type", "X-Api-Key"],
        "exposeHeaders": ["x-request-id", "date"],
        "allowCredentials": True,
        "maxAge": 300,
    }
    assert CorsConfig.from_doc(doc) == CONFIG
    assert CorsConfig.from_doc(CorsConfig().to_doc()) == CorsConfig()
    assert CorsConfig.from_doc({}) == CorsConfig()
