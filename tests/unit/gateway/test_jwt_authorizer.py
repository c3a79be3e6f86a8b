"""JWT authorizers as API Gateway HTTP APIs run them, against a real JWKS server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
from collections import Counter
from collections.abc import Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from unkai.gateway.authorizers.jwt import (
    REFETCH_INTERVAL_S,
    JwtAuthorizer,
    JwtAuthorizerConfig,
    JwtDecision,
)

ISSUER = "https://idp.example.com/pool-1"
AUDIENCE = "my-api"
NOW = 1_800_000_000.0
SECRET = "an-hmac-secret-of-at-least-thirty-two-bytes"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@cache
def private_key(name: str) -> rsa.RSAPrivateKey:
    """One RSA key per name, generated once per test run."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(name: str, kid: str) -> dict[str, Any]:
    doc: dict[str, Any] = RSAAlgorithm.to_jwk(private_key(name).public_key(), as_dict=True)
    return {**doc, "kid": kid, "use": "sig", "alg": "RS256"}


def mint(kid: str = "k1", key: str = "a", **overrides: Any) -> bytes:
    """A token valid at NOW for ISSUER and AUDIENCE; `overrides` with None drop a claim."""
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": int(NOW) - 10,
        "exp": int(NOW) + 3600,
    }
    claims.update(overrides)
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, private_key(key), algorithm="RS256", headers={"kid": kid}).encode()


class JwksServer:
    """Serves `keys` as a JWKS and an OIDC discovery document; counts the requests per path."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = [jwk("a", "k1")]
        self.hits: Counter[str] = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits[self.path] += 1
                if self.path == "/jwks.json":
                    body = json.dumps({"keys": outer.keys}).encode()
                elif self.path == "/.well-known/openid-configuration":
                    body = json.dumps({"issuer": outer.url, "jwks_uri": outer.jwks_url}).encode()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.jwks_url = f"{self.url}/jwks.json"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def idp() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


def authorizer(idp: JwksServer, clock: Clock | None = None, **config: Any) -> JwtAuthorizer:
    settings: dict[str, Any] = {
        "issuer": ISSUER,
        "audiences": (AUDIENCE,),
        "jwks_url": idp.jwks_url,
    }
    settings.update(config)
    return JwtAuthorizer(JwtAuthorizerConfig(**settings), clock=clock or Clock())


def decide(auth: JwtAuthorizer, header: bytes | None, scopes: tuple[str, ...] = ()) -> JwtDecision:
    return asyncio.run(auth.decide(header, scopes))


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> bytes:
    """A token signed by hand: PyJWT refuses to use a public key as an HMAC secret."""

    def part(doc: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=")

    signing_input = part(header) + b"." + part(claims)
    mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")


def bearer(token: bytes) -> bytes:
    return b"Bearer " + token


# -- allowed -----------------------------------------------------------------------------------


def test_a_valid_token_is_allowed_with_its_claims_as_strings_and_scopes(idp: JwksServer) -> None:
    # Given an authorizer over the IdP's key set and a token with two scopes
    auth = authorizer(idp)
    token = mint(scope="orders/read orders/write", groups=["admin", "ops"], email_verified=True)
    # When a route that needs orders/read gets it
    decision = decide(auth, bearer(token), ("orders/read",))
    # Then it is allowed; the claims are as API Gateway passes them: strings
    assert decision.status == 200
    assert decision.claims == {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": str(int(NOW) - 10),
        "exp": str(int(NOW) + 3600),
        "scope": "orders/read orders/write",
        "groups": "[admin ops]",
        "email_verified": "true",
    }
    assert decision.scopes == ["orders/read", "orders/write"]
    # And a route without scopes gets null scopes
    assert decide(auth, bearer(token)).scopes is None


def test_the_token_may_come_without_the_bearer_prefix(idp: JwksServer) -> None:
    # Given a token sent alone, and one with a lower-case prefix and extra spaces
    auth = authorizer(idp)
    token = mint()
    # When each is decided / Then both are allowed
    assert decide(auth, token).status == 200
    assert decide(auth, b"  bearer  " + token + b" ").status == 200


def test_a_cognito_access_token_without_aud_passes_on_its_client_id(idp: JwksServer) -> None:
    # Given an access token with no aud but a client_id among the audiences
    auth = authorizer(idp)
    token = mint(aud=None, client_id=AUDIENCE, token_use="access")
    # When it is decided / Then it is allowed
    assert decide(auth, bearer(token)).status == 200


def test_aud_as_a_list_needs_one_configured_audience(idp: JwksServer) -> None:
    # Given a token for two audiences, one of them ours
    auth = authorizer(idp)
    # When it is decided / Then it is allowed, and one for two others is not
    assert decide(auth, bearer(mint(aud=["other", AUDIENCE]))).status == 200
    assert decide(auth, bearer(mint(aud=["other", "another"]))).status == 401


# -- 401 ---------------------------------------------------------------------------------------


def test_no_authorization_header_is_401(idp: JwksServer) -> None:
    # Given an authorizer
    auth = authorizer(idp)
    # When a request has no token / Then 401, before the key set is even fetched
    for header in (None, b"", b"Bearer ", b"   "):
        decision = auth.decide_cached(header, ())
        assert decision is not None and decision.status == 401
    assert idp.hits["/jwks.json"] == 0
    # And garbage is 401 too
    assert decide(auth, b"Bearer not-a-jwt").status == 401


def test_an_expired_token_is_401_and_exp_is_required(idp: JwksServer) -> None:
    # Given a token that expired a minute ago, and one with no exp
    auth = authorizer(idp)
    # When each is decided / Then 401
    expired = decide(auth, bearer(mint(exp=int(NOW) - 60)))
    assert (expired.status, expired.reason) == (401, "the token has expired")
    assert decide(auth, bearer(mint(exp=None))).status == 401


def test_a_token_expiring_while_cached_is_refused_from_then_on(idp: JwksServer) -> None:
    # Given a token allowed (and cached) ten seconds before it expires
    clock = Clock()
    auth = authorizer(idp, clock)
    token = mint(exp=int(NOW) + 10)
    assert decide(auth, bearer(token)).status == 200
    # When the clock passes exp plus the leeway
    clock.now += 10 + 5
    # Then the cached token is refused
    decision = auth.decide_cached(bearer(token), ())
    assert decision is not None and decision.status == 401


def test_nbf_or_iat_in_the_future_is_401(idp: JwksServer) -> None:
    # Given tokens valid only from a minute from now, or issued a minute from now
    auth = authorizer(idp)
    # When each is decided / Then 401
    assert decide(auth, bearer(mint(nbf=int(NOW) + 60))).status == 401
    assert decide(auth, bearer(mint(iat=int(NOW) + 60))).status == 401
    # And within the 5 s leeway they pass (an IdP clock a little ahead)
    assert decide(auth, bearer(mint(nbf=int(NOW) + 3, iat=int(NOW) + 3))).status == 200


def test_another_issuer_is_401(idp: JwksServer) -> None:
    # Given a token from another issuer, signed by a key the authorizer trusts
    auth = authorizer(idp)
    # When it is decided / Then 401
    decision = decide(auth, bearer(mint(iss="https://evil.example.com")))
    assert (decision.status, decision.reason) == (401, "iss does not match the issuer")


def test_another_audience_is_401_and_client_id_counts_only_without_aud(idp: JwksServer) -> None:
    # Given a token for another audience, even with a matching client_id
    auth = authorizer(idp)
    token = mint(aud="someone-else", client_id=AUDIENCE)
    # When it is decided / Then 401: aud is present, so client_id is not looked at
    assert decide(auth, bearer(token)).status == 401
    # And a client_id that is not an audience is refused too
    assert decide(auth, bearer(mint(aud=None, client_id="someone-else"))).status == 401


def test_a_bad_signature_is_401(idp: JwksServer) -> None:
    # Given a token with the published kid but signed by another key
    auth = authorizer(idp)
    forged = mint(kid="k1", key="mallory")
    # When it is decided / Then 401
    assert decide(auth, bearer(forged)).status == 401
    # And a token whose payload was swapped is 401 too
    header, _, signature = mint().split(b".")
    payload = mint(sub="admin").split(b".")[1]
    assert decide(auth, bearer(b".".join((header, payload, signature)))).status == 401


def test_alg_none_and_hmac_with_the_public_key_are_refused(idp: JwksServer) -> None:
    # Given an unsigned token, and one "signed" with HS256 using the public key as secret
    auth = authorizer(idp)
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(NOW) + 60}
    unsigned = jwt.encode(claims, "", algorithm="none", headers={"kid": "k1"}).encode()
    # When each is decided / Then 401
    assert decide(auth, bearer(unsigned)).status == 401
    pem = (
        private_key("a")
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    confused = hs256({"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims, pem)
    assert decide(auth, bearer(confused)).status == 401


# -- scopes: 403 -------------------------------------------------------------------------------


def test_a_token_without_any_route_scope_is_403(idp: JwksServer) -> None:
    # Given a token with only orders/read
    auth = authorizer(idp)
    token = mint(scope="orders/read")
    # When a route that needs admin or orders/write gets it / Then 403
    decision = decide(auth, bearer(token), ("admin", "orders/write"))
    assert (decision.status, decision.claims) == (403, None)
    # And a token with no scope claim at all is 403 on that route too
    assert decide(auth, bearer(mint()), ("admin",)).status == 403


def test_scopes_may_come_as_an_scp_list(idp: JwksServer) -> None:
    # Given a token with its scopes in scp, as a list (Okta, Entra ID)
    auth = authorizer(idp)
    token = mint(scp=["orders/read", "admin"])
    # When a route that needs admin gets it / Then it is allowed
    decision = decide(auth, bearer(token), ("admin",))
    assert (decision.status, decision.scopes) == (200, ["orders/read", "admin"])


# -- the key set -------------------------------------------------------------------------------


def test_the_key_set_is_fetched_once_and_verified_tokens_are_cached(idp: JwksServer) -> None:
    # Given an authorizer whose first decision needs the key set
    auth = authorizer(idp)
    token = mint()
    assert auth.decide_cached(bearer(token), ()) is None
    first = decide(auth, bearer(token))
    assert first.status == 200 and idp.hits["/jwks.json"] == 1
    # When the same token comes again
    again = auth.decide_cached(bearer(token), ())
    # Then it is decided synchronously, from the cache, with the very same decision
    assert again is first
    # And another token with the known kid needs no fetch either
    other = auth.decide_cached(bearer(mint(sub="user-2")), ())
    assert other is not None and other.status == 200
    assert idp.hits["/jwks.json"] == 1


def test_an_unknown_kid_refetches_the_key_set_at_most_once_per_interval(idp: JwksServer) -> None:
    # Given an authorizer that fetched the key set with k1 only
    clock = Clock()
    auth = authorizer(idp, clock)
    assert decide(auth, bearer(mint())).status == 200
    assert idp.hits["/jwks.json"] == 1
    # When the IdP rotates in k2 and, later, a token signed with it comes
    idp.keys.append(jwk("b", "k2"))
    clock.now += REFETCH_INTERVAL_S
    rotated = mint(kid="k2", key="b")
    # Then the key set is fetched once more and the token is allowed
    assert auth.decide_cached(bearer(rotated), ()) is None
    assert decide(auth, bearer(rotated)).status == 200
    assert idp.hits["/jwks.json"] == 2
    # And a made-up kid right after is refused without another fetch (rate limited)
    made_up = auth.decide_cached(bearer(mint(kid="k3")), ())
    assert made_up is not None and made_up.status == 401
    assert decide(auth, bearer(mint(kid="k3"))).status == 401
    assert idp.hits["/jwks.json"] == 2


def test_concurrent_requests_share_one_fetch(idp: JwksServer) -> None:
    # Given a cold authorizer and twenty requests at once
    auth = authorizer(idp)
    token = mint()

    async def burst() -> list[JwtDecision]:
        return await asyncio.gather(*(auth.decide(bearer(token), ()) for _ in range(20)))

    # When they are decided / Then all are allowed after one fetch
    assert {d.status for d in asyncio.run(burst())} == {200}
    assert idp.hits["/jwks.json"] == 1


def test_a_withdrawn_key_stops_its_cached_tokens(idp: JwksServer) -> None:
    # Given a token verified with k1, and later a refetch of a key set without k1
    clock = Clock()
    auth = authorizer(idp, clock)
    token = mint()
    assert decide(auth, bearer(token)).status == 200
    idp.keys = [jwk("b", "k2")]
    clock.now += REFETCH_INTERVAL_S
    assert decide(auth, bearer(mint(kid="k2", key="b"))).status == 200
    # When the k1 token comes again / Then it is refused
    assert decide(auth, bearer(token)).status == 401


def test_an_unreachable_key_set_is_401_and_retried_only_after_the_interval() -> None:
    # Given an authorizer whose JWKS URL answers nothing
    clock = Clock()
    server = JwksServer()
    url = server.jwks_url
    server.close()
    auth = JwtAuthorizer(JwtAuthorizerConfig(ISSUER, (AUDIENCE,), url), clock=clock)
    # When a token comes / Then 401, and the next one does not wait for another fetch
    decision = decide(auth, bearer(mint()))
    assert decision.status == 401 and "fetching the key set failed" in decision.reason
    again = auth.decide_cached(bearer(mint()), ())
    assert again is not None and again.status == 401
    # And after the interval a fetch is tried again
    clock.now += REFETCH_INTERVAL_S
    assert auth.decide_cached(bearer(mint()), ()) is None


def test_without_a_jwks_url_the_key_set_is_found_by_oidc_discovery(idp: JwksServer) -> None:
    # Given an authorizer with only the issuer (the IdP's base URL) and a shared client
    async def run() -> JwtDecision:
        async with httpx.AsyncClient() as http:
            config = JwtAuthorizerConfig(idp.url, (AUDIENCE,))
            auth = JwtAuthorizer(config, http=http, clock=Clock())
            return await auth.decide(bearer(mint(iss=idp.url)), ())

    # When a token comes / Then the discovery document, then the key set, are fetched
    assert asyncio.run(run()).status == 200
    assert idp.hits == {"/.well-known/openid-configuration": 1, "/jwks.json": 1}


# -- static keys -------------------------------------------------------------------------------


def test_a_static_hmac_secret_verifies_hs256_tokens_without_a_kid() -> None:
    # Given an authorizer with a shared secret and no key set
    config = JwtAuthorizerConfig(ISSUER, (AUDIENCE,), static_key=SECRET)
    auth = JwtAuthorizer(config, clock=Clock())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(NOW) + 60, "scope": "a b"}
    token = jwt.encode(claims, SECRET, algorithm="HS256").encode()
    # When a token signed with it comes / Then it is decided synchronously and allowed
    decision = auth.decide_cached(bearer(token), ("b",))
    assert decision is not None and (decision.status, decision.scopes) == (200, ["a", "b"])
    # And one signed with another secret is 401
    forged = jwt.encode(claims, SECRET + "x", algorithm="HS256").encode()
    refused = auth.decide_cached(bearer(forged), ())
    assert refused is not None and refused.status == 401


def test_a_static_pem_public_key_verifies_rs256_but_not_hs256() -> None:
    # Given an authorizer with a PEM public key
    pem = (
        private_key("a")
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    config = JwtAuthorizerConfig(ISSUER, (AUDIENCE,), static_key=pem.decode())
    auth = JwtAuthorizer(config, clock=Clock())
    # When an RS256 token comes / Then it is allowed
    assert decide(auth, bearer(mint())).status == 200
    # And an HS256 token "signed" with the PEM text is 401
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(NOW) + 60}
    confused = jwt.encode(claims, SECRET, algorithm="HS256").encode()
    assert decide(auth, bearer(confused)).status == 401


# -- config ------------------------------------------------------------------------------------


def test_the_config_round_trips_through_its_document() -> None:
    # Given a config with every field set
    config = JwtAuthorizerConfig(
        ISSUER, ("a", "b"), jwks_url="https://idp/jwks", algorithms=("RS256",), leeway_s=0
    )
    # When it goes to a document and back / Then it is the same
    doc = config.to_doc()
    assert doc == {
        "issuer": ISSUER,
        "audience": ["a", "b"],
        "jwksUri": "https://idp/jwks",
        "algorithms": ["RS256"],
        "leewaySeconds": 0,
    }
    assert JwtAuthorizerConfig.from_doc(doc) == config
    # And a minimal document takes the defaults
    minimal = JwtAuthorizerConfig.from_doc({"issuer": ISSUER, "audience": "a"})
    assert minimal == JwtAuthorizerConfig(ISSUER, ("a",))


@pytest.mark.parametrize(
    "settings",
    [
        {"issuer": "", "audiences": ("a",)},
        {"issuer": ISSUER, "audiences": ()},
        {"issuer": ISSUER, "audiences": ("a",), "jwks_url": "https://x", "static_key": "s"},
        {"issuer": ISSUER, "audiences": ("a",), "algorithms": ("none",)},
    ],
)
def test_invalid_configs_are_refused(settings: dict[str, Any]) -> None:
    # Given / When a config without issuer or audience, with two key sources or alg none
    # Then it is refused
    with pytest.raises(ValueError):
        JwtAuthorizerConfig(**settings)
