"""JWT authorizers, as API Gateway HTTP APIs run them.

https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html
- The identity source (the `Authorization` header) holds the token alone or prefixed with
  `Bearer `. No token: 401.
- The signature is checked with the issuer's public key whose `kid` matches the token's
  header (a token without `kid`, or with a `kid` not in the key set: 401). The key set comes
  from `jwks_uri`; without one configured, from the issuer's OIDC discovery document
  (`{issuer}/.well-known/openid-configuration`), as API Gateway finds it. "API Gateway can
  cache the public keys for two hours"; when it sees a `kid` it does not know, it fetches the
  key set again (https://docs.aws.amazon.com/apigateway/latest/developerguide/
  rest-api-jwt-authorizer-keys.html).
- Claims: `iss` must equal the issuer. `aud` must contain one of the configured audiences;
  only when the token has no `aud` is `client_id` (Cognito access tokens) compared instead
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-troubleshooting-jwt.html).
  `exp` is required and must be after the current time; `nbf` and `iat`, when present, must
  be before it. Any failure: 401 `{"message":"Unauthorized"}`.
- A route with authorization scopes needs at least one of them in the token's `scope`
  (space-separated string) or `scp` (list, or space-separated string) claim: else 403
  `{"message":"Forbidden"}`. The bodies are `unkai.gateway.errors.UNAUTHORIZED_BODY` and
  `FORBIDDEN_BODY`.
- The function receives `requestContext.authorizer.jwt = {"claims": ..., "scopes": ...}`:
  `JwtDecision.claims` and `JwtDecision.scopes`.

unkai's choices where the docs are silent or AWS does differently:
- Algorithms: API Gateway HTTP APIs accept only RSA keys; unkai also accepts EC (`ES*`) and
  Ed25519 (`EdDSA`) keys from a key set and, for a `static_key`, a PEM public key or an HMAC
  secret (`HS*`), all limited to `JwtAuthorizerConfig.algorithms`. Each key verifies only the
  algorithms of its type (and its JWK `alg`, when given): an RSA public key can never be
  used as an HMAC secret. A key set's symmetric (`oct`), encryption (`use: enc`) and private
  keys are ignored.
- Clock leeway: the docs name none; `leeway_s` defaults to 5 s, so a token minted a moment
  ago by an IdP whose clock runs slightly ahead is not refused for its `iat`/`nbf`.
- Key set: kept `KEYS_TTL_S` (2 h, as API Gateway); fetched again when a token's `kid` is
  unknown or the set is older than that, but at most once per `REFETCH_INTERVAL_S` (30 s),
  so a stream of tokens with made-up `kid`s cannot make the gateway hammer the IdP. A failed
  fetch keeps the previous keys. Concurrent requests wait for one shared fetch. A key gone
  from a refreshed set also drops the cached verifications it made.
- Claim values reach the function as API Gateway delivers them, as strings (the payload 2.0
  events AWS sends carry e.g. `"exp": "1787996002"`): numbers in their JSON form, booleans
  `true`/`false`, arrays as `[a b]` (space-separated, in brackets), objects as JSON text;
  claims whose value is null are left out. The forms of arrays and objects follow observed
  events, not documentation.
- `scopes` is null for a route without authorization scopes; for a route with them it is the
  list of the token's scopes (from `scope` and `scp`).

Performance: verifying an RS256 signature costs tens of microseconds and parsing the token
more, while clients send the same token on every request until it expires. So a successful
verification is cached, keyed by the raw token, until `exp` (plus leeway) in a bounded LRU
(`CACHE_SIZE` tokens): the hot path for a known token is a dict lookup, an `exp` compare and a
scope check, and it returns prebuilt `JwtDecision`s. Caching by the exact token bytes is safe:
any change to the token misses the cache and is verified in full; what was verified (issuer,
audience, signature) does not depend on the time, and the time-dependent `exp` is checked on
every hit (`nbf`/`iat` only move from invalid to valid). Failed verifications are not cached.
The `claims` dict of a decision is shared by every request with that token: treat it as
read-only.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import httpx
import jwt
import orjson
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

log = logging.getLogger("unkai.gateway")

DEFAULT_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "HS256")
CACHE_SIZE = 10_000  # verified tokens kept per authorizer
KEYS_TTL_S = 2 * 3600.0  # "API Gateway can cache the public keys for two hours"
REFETCH_INTERVAL_S = 30.0  # the least time between two key set fetches
FETCH_TIMEOUT_S = 5.0

_RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_EC_ALGORITHMS = {"P-256": ("ES256",), "P-384": ("ES384",), "P-521": ("ES512",)}
_EC_CURVES = {"secp256r1": ("ES256",), "secp384r1": ("ES384",), "secp521r1": ("ES512",)}
_HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
SUPPORTED_ALGORITHMS = frozenset(
    (*_RSA_ALGORITHMS, "ES256", "ES384", "ES512", "EdDSA", *_HMAC_ALGORITHMS)
)


@dataclass(frozen=True, slots=True)
class JwtAuthorizerConfig:
    """An HTTP API's JWT authorizer (`AWS::ApiGatewayV2::Authorizer JwtConfiguration`).

    With neither `jwks_url` nor `static_key`, the key set is found through the issuer's OIDC
    discovery document, as API Gateway does. `static_key` (a PEM public key or certificate,
    or else an HMAC secret) replaces the key set: tokens then need no `kid`.
    """

    issuer: str
    audiences: tuple[str, ...]
    jwks_url: str | None = None
    static_key: str | None = None
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway_s: int = 5

    def __post_init__(self) -> None:
        if not self.issuer:
            raise ValueError("a JWT authorizer needs an issuer")
        if not self.audiences:
            raise ValueError("a JWT authorizer needs at least one audience")
        if self.jwks_url and self.static_key:
            raise ValueError("a JWT authorizer takes a JWKS URL or a static key, not both")
        unknown = sorted(set(self.algorithms) - SUPPORTED_ALGORITHMS)
        if unknown or not self.algorithms:
            raise ValueError(f"unsupported JWT algorithms: {unknown or 'none given'}")
        if self.leeway_s < 0:
            raise ValueError("the JWT clock leeway cannot be negative")

    def to_doc(self) -> dict[str, Any]:
        """JSON-able, with API Gateway's key names where it has them.

        Note that it carries `static_key`, which may be a secret.
        """
        doc: dict[str, Any] = {"issuer": self.issuer, "audience": list(self.audiences)}
        if self.jwks_url is not None:
            doc["jwksUri"] = self.jwks_url
        if self.static_key is not None:
            doc["staticKey"] = self.static_key
        doc["algorithms"] = list(self.algorithms)
        doc["leewaySeconds"] = self.leeway_s
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> JwtAuthorizerConfig:
        """The inverse of `to_doc`; missing optional keys take their defaults."""
        audience = doc.get("audience", ())
        algorithms = doc.get("algorithms")
        return cls(
            issuer=str(doc["issuer"]),
            audiences=(audience,) if isinstance(audience, str) else tuple(audience),
            jwks_url=doc.get("jwksUri"),
            static_key=doc.get("staticKey"),
            algorithms=DEFAULT_ALGORITHMS if algorithms is None else tuple(algorithms),
            leeway_s=int(doc.get("leewaySeconds", 5)),
        )


@dataclass(frozen=True, slots=True)
class JwtDecision:
    """200 (allowed), 401 (no or invalid token) or 403 (no route scope in the token)."""

    status: int
    claims: dict[str, Any] | None = None  # as they reach the function: values are strings
    scopes: list[str] | None = None  # None for a route without authorization scopes
    reason: str = ""  # for logs, never sent to the client
    #: What the client is told in `www-authenticate` (a fixed wording, no internal detail).
    description: str = ""

    def www_authenticate(self, route_scopes: tuple[str, ...]) -> bytes | None:
        """API Gateway's `www-authenticate` for a refusal (RFC 6750's Bearer challenge):
        `Bearer scope="" error="invalid_token" error_description="..."` on a 401, and
        `error="insufficient_scope"` with the route's scopes on a 403."""
        if self.status == 401:
            scope, error = "", "invalid_token"
        elif self.status == 403:
            scope, error = " ".join(route_scopes), "insufficient_scope"
        else:
            return None
        challenge = (
            f'Bearer scope="{_quoted(scope)}" error="{error}" '
            f'error_description="{_quoted(self.description)}"'
        )
        return challenge.encode("latin-1", "replace")


def _quoted(text: str) -> str:
    """Text inside a quoted-string of a header: no quote, backslash or control character."""
    return "".join(c for c in text if c >= " " and c not in '"\\\x7f')


INVALID = "the token is invalid"
_MISSING = JwtDecision(
    401, reason="no token in the Authorization header", description="the token is missing"
)
_EXPIRED = JwtDecision(401, reason="the token has expired", description="the token has expired")
_FORBIDDEN = JwtDecision(
    403,
    reason="the token has none of the route's scopes",
    description="the token does not have a valid scope",
)


def _deny(reason: str, description: str = INVALID) -> JwtDecision:
    return JwtDecision(401, reason=reason, description=description)


@dataclass(frozen=True, slots=True)
class _Key:
    key: Any  # a cryptography public key, or an HMAC secret's bytes
    algorithms: tuple[str, ...]  # what it may verify, within the config's algorithms


@dataclass(frozen=True, slots=True)
class _Verified:
    """A token whose signature and claims passed, until `expires`."""

    expires: float  # exp + leeway
    kid: str | None
    scopes: frozenset[str]
    unscoped: JwtDecision  # the answer for a route without scopes
    scoped: JwtDecision  # for a route with scopes the token has


class JwtAuthorizer:
    """Decides requests for one JWT authorizer; keeps its key set and verified tokens."""

    def __init__(
        self,
        config: JwtAuthorizerConfig,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._http = http
        self._clock = clock
        self._audiences = frozenset(config.audiences)
        self._allowed = frozenset(config.algorithms)
        self._jws = jwt.PyJWS()
        self._cache: OrderedDict[bytes, _Verified] = OrderedDict()
        self._static = (
            None if config.static_key is None else _static_key(config.static_key, self._allowed)
        )
        self._jwks_url = config.jwks_url
        self._keys: dict[str, _Key] | None = None  # None until a key set was fetched
        self._keys_at = -math.inf
        self._last_fetch = -math.inf  # when the last fetch started
        self._fetch_error = ""
        self._fetching: asyncio.Task[None] | None = None

    def decide_cached(
        self, authorization: bytes | None, scopes: tuple[str, ...]
    ) -> JwtDecision | None:
        """The decision, or None when the key set must be fetched first (then use `decide`)."""
        return self._decide(authorization, scopes, may_fetch=True)

    async def decide(self, authorization: bytes | None, scopes: tuple[str, ...]) -> JwtDecision:
        """The decision, fetching the key set first when the token needs it."""
        decision = self._decide(authorization, scopes, may_fetch=True)
        if decision is not None:
            return decision
        await self._refresh()
        decision = self._decide(authorization, scopes, may_fetch=False)
        return decision if decision is not None else _deny("no key set")

    # The hot path

    def _decide(
        self, authorization: bytes | None, scopes: tuple[str, ...], may_fetch: bool
    ) -> JwtDecision | None:
        token = _token(authorization)
        if not token:
            return _MISSING
        now = self._clock()
        cache = self._cache
        verified = cache.get(token)
        if verified is None:
            return self._verify(token, scopes, now, may_fetch)
        if now >= verified.expires:
            del cache[token]
            return _EXPIRED
        cache.move_to_end(token)
        return _scoped(verified, scopes)

    # A token not seen yet

    def _verify(
        self, token: bytes, scopes: tuple[str, ...], now: float, may_fetch: bool
    ) -> JwtDecision | None:
        try:
            header = self._jws.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            return _deny(f"malformed token: {exc}")
        key = self._key_for(header, now, may_fetch)
        if not isinstance(key, _Key):
            return key  # a refusal, or None: fetch the key set first
        try:
            payload = self._jws.decode_complete(token, key.key, algorithms=key.algorithms)
            claims = orjson.loads(payload["payload"])
        except (jwt.PyJWTError, ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
            return _deny(f"invalid token: {exc}")
        if not isinstance(claims, dict):
            return _deny("the token's payload is not a JSON object")
        problem, description = self._claims_problem(claims, now)
        if problem:
            return _deny(problem, description)
        kid = header["kid"] if self._static is None else None
        verified = _verified(claims, kid, self._config.leeway_s)
        self._cache[token] = verified
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return _scoped(verified, scopes)

    def _key_for(
        self, header: dict[str, Any], now: float, may_fetch: bool
    ) -> _Key | JwtDecision | None:
        """The key to verify the token with, a refusal, or None when the key set is needed."""
        key = self._static
        if key is None:
            kid = header.get("kid")
            if not isinstance(kid, str):
                return _deny("the token has no kid")
            if may_fetch and self._should_fetch(kid, now):
                return None
            if self._keys is None:
                return _deny(f"no key set: {self._fetch_error or 'not fetched'}")
            key = self._keys.get(kid)
            if key is None:
                return _deny(f"no key with the token's kid {kid!r}")
        alg = header.get("alg")
        if alg not in key.algorithms:
            return _deny(f"algorithm {alg!r} not allowed for the key")
        return key

    def _claims_problem(self, claims: dict[str, Any], now: float) -> tuple[str, str]:
        """Why the claims fail and what the client is told, or ("", "") when they pass."""
        if claims.get("iss") != self._config.issuer:
            return "iss does not match the issuer", "the token does not have a valid issuer"
        audience = "the token does not have a valid audience"
        if "aud" in claims:
            aud = claims["aud"]
            values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if not any(isinstance(value, str) and value in self._audiences for value in values):
                return "aud has none of the audiences", audience
        else:
            client_id = claims.get("client_id")
            if not isinstance(client_id, str) or client_id not in self._audiences:
                return "no aud, and client_id is none of the audiences", audience
        return _times_problem(claims, now, self._config.leeway_s)

    # The key set

    def _should_fetch(self, kid: str, now: float) -> bool:
        """Whether the token's key needs a fetch that may happen (or is happening) now."""
        keys = self._keys
        if keys is not None and kid in keys and now - self._keys_at < KEYS_TTL_S:
            return False
        fetching = self._fetching
        if fetching is not None and not fetching.done():
            return True
        return now - self._last_fetch >= REFETCH_INTERVAL_S

    async def _refresh(self) -> None:
        """Fetch the key set, or wait for the fetch under way."""
        loop = asyncio.get_running_loop()
        task = self._fetching
        if task is None or task.done() or task.get_loop() is not loop:
            self._last_fetch = self._clock()
            task = loop.create_task(self._fetch())
            self._fetching = task
        # A cancelled request must not cancel the fetch others wait for
        await asyncio.shield(task)

    async def _fetch(self) -> None:
        try:
            if self._http is not None:
                keys = await self._load(self._http)
            else:
                # Fetches are rare (at most one per REFETCH_INTERVAL_S): a client per fetch
                # needs no closing and is bound to no event loop.
                async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S) as http:
                    keys = await self._load(http)
        except (httpx.HTTPError, ValueError, TypeError) as exc:
            self._fetch_error = f"fetching the key set failed: {exc!r}"
            log.warning("JWT authorizer for %s: %s", self._config.issuer, self._fetch_error)
            return
        self._install(keys)

    async def _load(self, http: httpx.AsyncClient) -> dict[str, _Key]:
        url = self._jwks_url
        if url is None:
            issuer = self._config.issuer.rstrip("/")
            discovery = await _get_json(http, f"{issuer}/.well-known/openid-configuration")
            url = discovery.get("jwks_uri")
            if not isinstance(url, str):
                raise ValueError("the OIDC discovery document has no jwks_uri")
            self._jwks_url = url
        doc = await _get_json(http, url)
        entries = doc.get("keys")
        if not isinstance(entries, list):
            raise ValueError("the key set has no keys list")
        keys: dict[str, _Key] = {}
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("kid"), str):
                key = _jwk_key(entry, self._allowed)
                if key is not None:
                    keys[entry["kid"]] = key
        return keys

    def _install(self, keys: dict[str, _Key]) -> None:
        gone = set(self._keys or ()) - set(keys)
        if gone:
            # Tokens verified with a withdrawn key are verified again (and refused)
            for token, verified in list(self._cache.items()):
                if verified.kid in gone:
                    del self._cache[token]
        self._keys = keys
        self._keys_at = self._clock()
        self._fetch_error = ""


def _token(authorization: bytes | None) -> bytes:
    """The token in the identity source: alone, or after `Bearer `."""
    if not authorization:
        return b""
    value = authorization.strip()
    if value[:7].lower() == b"bearer ":
        value = value[7:].lstrip()
    return value


def _scoped(verified: _Verified, scopes: tuple[str, ...]) -> JwtDecision:
    if not scopes:
        return verified.unscoped
    if verified.scopes.isdisjoint(scopes):
        return _FORBIDDEN
    return verified.scoped


def _times_problem(claims: dict[str, Any], now: float, leeway: int) -> tuple[str, str]:
    """`exp` must be after now; `nbf` and `iat`, when present, before it."""
    exp = claims.get("exp")
    if not _is_time(exp):
        return "exp is missing or not a number", INVALID
    if now >= exp + leeway:
        return "the token has expired", "the token has expired"
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is None:
            continue
        if not _is_time(value):
            return f"{name} is not a number", INVALID
        if value > now + leeway:
            return f"{name} is in the future", "the token is not valid yet"
    return "", ""


def _is_time(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _verified(claims: dict[str, Any], kid: str | None, leeway_s: int) -> _Verified:
    scopes = _token_scopes(claims)
    wire = _wire_claims(claims)
    return _Verified(
        expires=float(claims["exp"]) + leeway_s,
        kid=kid,
        scopes=frozenset(scopes),
        unscoped=JwtDecision(200, wire, None),
        scoped=JwtDecision(200, wire, scopes),
    )


def _token_scopes(claims: dict[str, Any]) -> list[str]:
    """The token's scopes, from `scope` (a space-separated string) and `scp` (list or string)."""
    scopes: list[str] = []
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            scopes.extend(value.split())
        elif isinstance(value, list):
            scopes.extend(item for item in value if isinstance(item, str))
    return list(dict.fromkeys(scopes))


def _wire_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """The claims as API Gateway passes them to a function: string values, no nulls."""
    return {name: _wire(value) for name, value in claims.items() if value is not None}


def _wire(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(_wire(item) for item in value) + "]"
    # Numbers in their JSON form, true/false, objects as JSON text
    return orjson.dumps(value).decode()


def _jwk_key(jwk: dict[str, Any], allowed: frozenset[str]) -> _Key | None:
    """A key set entry's public key, or None for a key unkai does not verify with."""
    if jwk.get("use", "sig") != "sig" or "d" in jwk:
        return None  # an encryption key, or private material that has no place here
    kty = jwk.get("kty")
    try:
        if kty == "RSA":
            key: Any = RSAAlgorithm.from_jwk(jwk)
            algorithms: tuple[str, ...] = _RSA_ALGORITHMS
        elif kty == "EC":
            algorithms = _EC_ALGORITHMS.get(str(jwk.get("crv")), ())
            key = ECAlgorithm.from_jwk(jwk)
        elif kty == "OKP" and jwk.get("crv") == "Ed25519":
            key = OKPAlgorithm.from_jwk(jwk)
            algorithms = ("EdDSA",)
        else:
            return None  # "oct": a published key set carries no shared secrets
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None
    alg = jwk.get("alg")
    return _Key(key, tuple(a for a in algorithms if a in allowed and alg in (None, a)))


def _static_key(secret: str, allowed: frozenset[str]) -> _Key:
    """A PEM public key or certificate, or else an HMAC secret."""
    text = secret.strip()
    if not text.startswith("-----BEGIN"):
        algorithms = tuple(a for a in _HMAC_ALGORITHMS if a in allowed)
        return _Key(secret.encode(), algorithms)
    data = text.encode()
    if text.startswith("-----BEGIN CERTIFICATE"):
        key: Any = x509.load_pem_x509_certificate(data).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if isinstance(key, rsa.RSAPublicKey):
        candidates: tuple[str, ...] = _RSA_ALGORITHMS
    elif isinstance(key, ec.EllipticCurvePublicKey):
        candidates = _EC_CURVES.get(key.curve.name, ())
    elif isinstance(key, ed25519.Ed25519PublicKey):
        candidates = ("EdDSA",)
    else:
        raise ValueError(f"unsupported static key type {type(key).__name__}")
    return _Key(key, tuple(a for a in candidates if a in allowed))


async def _get_json(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await http.get(url, timeout=FETCH_TIMEOUT_S)
    response.raise_for_status()
    doc = orjson.loads(response.content)
    if not isinstance(doc, dict):
        raise ValueError(f"{url} did not return a JSON object")
    return doc
