"""CORS for HTTP APIs, as API Gateway HTTP APIs do it.

https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-cors.html
- With CORS configured, the gateway answers preflight requests (`OPTIONS` with `Origin` and
  `Access-Control-Request-Method`) itself, without invoking a function, even when no OPTIONS
  route exists.
- It adds the configured CORS headers to a function's responses and ignores the CORS
  (`access-control-*`) headers the function returned.
- CORS headers are returned only to a request with an `Origin` header.
- `allowOrigins` entries are origins (`https://www.example.com`), `*` (any origin) or a scheme
  wildcard (`https://*`, `http://*`: any origin with that scheme). `allowMethods` and
  `allowHeaders` may be `*`. Header names compare case-insensitively.
Config fields: https://docs.aws.amazon.com/apigateway/latest/developerguide/
api-gateway-swagger-extensions-cors-configuration.html

unkai's choices where the docs are silent:
- A preflight always gets `204` and no body. When its origin, method or any of its requested
  headers is not allowed, it gets no CORS headers (so the browser refuses the real request).
- `*` methods or headers answer a preflight with the method or headers it asked for, which
  browsers accept with credentials too (a literal `*` there they do not).
- An allowed origin other than through a bare `*` is echoed back, with `vary: origin`; any
  response to a request with an Origin carries `vary: origin` unless origins are just `*`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from unkai.config.http_api import CorsConfig
from unkai.gateway.http1 import Headers, Request

PREFLIGHT_STATUS = 204

_PREFIX = b"access-control-"
_VARY_ORIGIN = (b"vary", b"origin")


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A config in the forms the hot path compares and writes."""

    any_origin: bool
    origins: frozenset[bytes]  # lower case
    origin_prefixes: tuple[bytes, ...]  # lower-case "https://" of a "https://*" entry
    vary: bool  # whether the answer depends on the origin (origins are not just "*")
    any_method: bool
    methods: frozenset[bytes]  # upper case
    any_header: bool
    headers: frozenset[bytes]  # lower case
    allow_methods: bytes  # the header values, b"" when there is none
    allow_headers: bytes
    expose_headers: bytes
    max_age: bytes
    credentials: bool


def _join(values: Iterable[str]) -> bytes:
    return ",".join(values).encode("latin-1")


@lru_cache(maxsize=256)
def _compile(config: CorsConfig) -> _Compiled:
    origins = [origin.lower() for origin in config.allow_origins]
    methods = [method.upper() for method in config.allow_methods]
    headers = [name.lower() for name in config.allow_headers]
    prefixes = [o for o in origins if o.endswith("://*")]
    exact = [o for o in origins if o != "*" and o not in prefixes]
    return _Compiled(
        any_origin="*" in origins,
        origins=frozenset(o.encode("latin-1") for o in exact),
        origin_prefixes=tuple(o[:-1].encode("latin-1") for o in prefixes),
        vary=bool(exact or prefixes or "*" not in origins),
        any_method="*" in methods,
        methods=frozenset(m.encode("latin-1") for m in methods),
        any_header="*" in headers,
        headers=frozenset(h.encode("latin-1") for h in headers),
        allow_methods=_join(methods),
        allow_headers=_join(headers),
        expose_headers=_join(config.expose_headers),
        max_age=b"" if config.max_age is None else str(config.max_age).encode(),
        credentials=config.allow_credentials,
    )


def _allow_origin(compiled: _Compiled, origin: bytes) -> bytes | None:
    """The `access-control-allow-origin` value for `origin`, None when it is not allowed."""
    lowered = origin.lower()
    if lowered in compiled.origins or any(map(lowered.startswith, compiled.origin_prefixes)):
        return origin
    if compiled.any_origin:
        return b"*"
    return None


def is_preflight(request: Request) -> bool:
    """An `OPTIONS` request with `Origin` and `Access-Control-Request-Method` headers."""
    return (
        request.method == "OPTIONS"
        and request.header(b"origin") is not None
        and request.header(b"access-control-request-method") is not None
    )


def _requested_headers(request: Request) -> list[bytes]:
    raw = request.header(b"access-control-request-headers")
    if not raw:
        return []
    return [name for name in (part.strip().lower() for part in raw.split(b",")) if name]


def preflight_response(config: CorsConfig, request: Request) -> tuple[int, Headers, bytes]:
    """The gateway's own answer to a preflight: 204, with CORS headers when it is allowed."""
    compiled = _compile(config)
    origin = request.header(b"origin") or b""
    method = (request.header(b"access-control-request-method") or b"").strip().upper()
    asked = _requested_headers(request)
    headers: Headers = []
    if compiled.vary:
        headers.append(_VARY_ORIGIN)
    allow_origin = _allow_origin(compiled, origin)
    if (
        allow_origin is None
        or not (compiled.any_method or method in compiled.methods)
        or not (compiled.any_header or all(name in compiled.headers for name in asked))
    ):
        return PREFLIGHT_STATUS, headers, b""
    headers.append((b"access-control-allow-origin", allow_origin))
    if compiled.credentials:
        headers.append((b"access-control-allow-credentials", b"true"))
    headers.append(
        (b"access-control-allow-methods", method if compiled.any_method else compiled.allow_methods)
    )
    allow_headers = b",".join(asked) if compiled.any_header else compiled.allow_headers
    if allow_headers:
        headers.append((b"access-control-allow-headers", allow_headers))
    if compiled.max_age:
        headers.append((b"access-control-max-age", compiled.max_age))
    return PREFLIGHT_STATUS, headers, b""


def add_cors_headers(config: CorsConfig, request: Request, headers: Headers) -> Headers:
    """`headers` without the function's `access-control-*` ones, plus ours when the request's
    Origin is allowed. Returns a new list; `headers` is not changed."""
    out = [pair for pair in headers if not pair[0].lower().startswith(_PREFIX)]
    origin = request.header(b"origin")
    if origin is None:
        return out
    compiled = _compile(config)
    if compiled.vary and not any(
        name.lower() == b"vary" and (b"origin" in value.lower() or value.strip() == b"*")
        for name, value in out
    ):
        out.append(_VARY_ORIGIN)
    allow_origin = _allow_origin(compiled, origin)
    if allow_origin is None:
        return out
    out.append((b"access-control-allow-origin", allow_origin))
    if compiled.credentials:
        out.append((b"access-control-allow-credentials", b"true"))
    if compiled.expose_headers:
        out.append((b"access-control-expose-headers", compiled.expose_headers))
    return out
