"""JWT and function (Lambda REQUEST) authorizers through the real platform: tokens minted with
PyJWT, keys served as a JWKS on loopback, an authorizer function deployed beside the route."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.integration.platform_process import PlatformProcess, write_app

ISSUER = "https://issuer.test/pool"

APP = """
calls = 0

def echo(event, context):
    answer = {"authorizer": event["requestContext"].get("authorizer")}
    if event.get("version") == "1.0":
        import json
        return {"statusCode": 200, "body": json.dumps(answer)}
    return answer

def auth(event, context):
    global calls
    calls += 1
    token = event["headers"].get("authorization", "")
    if token == "let-me-in":
        return {"isAuthorized": True, "context": {"user": "ada", "calls": calls}}
    return {"isAuthorized": False}

def auth_broken(event, context):
    raise RuntimeError("authorizer bug")
"""

MANIFEST = """
service: authz
provider:
  httpApi:
    authorizers:
      tokens:
        type: jwt
        issuer: {issuer}
        audience: [client-a]
        jwksUrl: {jwks}
      fn:
        type: request
        functionName: auth
        identitySource: [$request.header.Authorization]
        resultTtlInSeconds: 300
      broken:
        type: request
        functionName: auth_broken
functions:
  echo:
    handler: app.echo
    events:
      - http: {{method: GET, path: /jwt, authorizer: {{name: tokens, scopes: [read]}}}}
      - http: {{method: GET, path: /fn, authorizer: fn}}
      - http: {{method: GET, path: /broken, authorizer: broken}}
      - http: {{method: GET, path: /v1, payload: '1.0', authorizer: fn}}
  auth:
    handler: app.auth
  auth_broken:
    handler: app.auth_broken
"""


class Jwks:
    """A JWKS endpoint on 127.0.0.1 that counts its hits."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        self.document = json.dumps({"keys": [{**public, "kid": "k1", "alg": "RS256"}]}).encode()
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(outer.document)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": "client-a",
            "sub": "user-1",
            "exp": now + 300,
            "iat": now,
            "scope": "read write",
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    server = Jwks()
    yield server
    server.server.shutdown()
    server.server.server_close()


def deploy(platform: PlatformProcess, root: Path, stage: str, jwks: Jwks) -> None:
    write_app(root, MANIFEST.format(issuer=ISSUER, jwks=jwks.url), {"app.py": APP})
    platform.cli("deploy", str(root), "--stage", stage, check=True)


def test_jwt_authorizer_allows_denies_and_passes_claims(
    platform: PlatformProcess, apps: Path, stage: str, jwks: Jwks
) -> None:
    deploy(platform, apps / "a", stage, jwks)
    now = int(time.time())
    invalid = 'Bearer scope="" error="invalid_token" error_description='
    cases = {
        "missing": (None, 401, invalid + '"the token is missing"'),
        "expired": (
            jwks.token(exp=now - 600, iat=now - 900),
            401,
            invalid + '"the token has expired"',
        ),
        "wrong audience": (
            jwks.token(aud="someone-else"),
            401,
            invalid + '"the token does not have a valid audience"',
        ),
        "wrong issuer": (
            jwks.token(iss="https://evil.test"),
            401,
            invalid + '"the token does not have a valid issuer"',
        ),
        "no scope": (
            jwks.token(scope="write"),
            403,
            'Bearer scope="read" error="insufficient_scope" '
            'error_description="the token does not have a valid scope"',
        ),
    }
    with platform.client() as http:
        good = http.get(f"/{stage}/jwt", headers={"authorization": f"Bearer {jwks.token()}"})
        again = http.get(f"/{stage}/jwt", headers={"authorization": f"Bearer {jwks.token()}"})
        statuses = {
            name: http.get(
                f"/{stage}/jwt", headers={"authorization": f"Bearer {token}"} if token else {}
            )
            for name, (token, _, _) in cases.items()
        }
    assert good.status_code == 200
    claims = good.json()["authorizer"]["jwt"]
    assert claims["claims"]["sub"] == "user-1" and "read" in claims["scopes"]
    assert again.status_code == 200
    assert "www-authenticate" not in good.headers
    for name, (_, status, challenge) in cases.items():
        assert statuses[name].status_code == status, name
        expected = "Unauthorized" if status == 401 else "Forbidden"
        assert statuses[name].json() == {"message": expected}, name
        # As API Gateway does, the refusal says why in www-authenticate
        assert statuses[name].headers["www-authenticate"] == challenge, name
    # The key set was fetched once for all of these
    assert jwks.hits == 1


def test_function_authorizer_allows_denies_caches_and_passes_context(
    platform: PlatformProcess, apps: Path, stage: str, jwks: Jwks
) -> None:
    deploy(platform, apps / "a", stage, jwks)
    with platform.client() as http:
        missing = http.get(f"/{stage}/fn")
        first = http.get(f"/{stage}/fn", headers={"authorization": "let-me-in"})
        second = http.get(f"/{stage}/fn", headers={"authorization": "let-me-in"})
        denied = http.get(f"/{stage}/fn", headers={"authorization": "nope"})
        broken = http.get(f"/{stage}/broken", headers={"authorization": "let-me-in"})
    assert (missing.status_code, missing.json()) == (401, {"message": "Unauthorized"})
    assert first.status_code == 200
    assert first.json()["authorizer"] == {"lambda": {"user": "ada", "calls": 1}}
    # Cached by the identity source: the authorizer ran once for both
    assert second.json()["authorizer"] == {"lambda": {"user": "ada", "calls": 1}}
    assert (denied.status_code, denied.json()) == (403, {"message": "Forbidden"})
    assert (broken.status_code, broken.json()) == (500, {"message": "Internal Server Error"})
    # Payload 1.0 carries the context directly in requestContext.authorizer
    with platform.client() as http:
        v1 = http.get(f"/{stage}/v1", headers={"authorization": "let-me-in"})
    assert v1.status_code == 200
    assert v1.json()["authorizer"]["user"] == "ada"


def test_bad_authorizer_settings_are_deploy_errors(platform: PlatformProcess, apps: Path) -> None:
    cases = {
        "source": (
            "type: request\n        functionName: f\n        identitySource: [$context.requestId]",
            "the context variables an identity source can use are",
        ),
        "short": ("type: jwt\n        issuer: i\n        audience: [a]\n        key: short", "32"),
        "jwk": (
            'type: jwt\n        issuer: i\n        audience: [a]\n        key: \'{"kty": "RSA"}\'',
            "not a JWK",
        ),
    }
    for name, (settings, problem) in cases.items():
        manifest = (
            "service: bad\nprovider:\n  httpApi:\n    authorizers:\n      a:\n        "
            + settings
            + "\nfunctions:\n  f:\n    handler: app.echo\n"
        )
        write_app(apps / name, manifest, {"app.py": APP})
        result = platform.cli("deploy", str(apps / name), "--dry-run")
        assert result.returncode == 1, name
        assert "unkai.yml:5: provider.httpApi.authorizers.a" in result.stderr, result.stderr
        assert problem in result.stderr, (name, result.stderr)


def test_unknown_authorizer_names_the_line(platform: PlatformProcess, apps: Path) -> None:
    manifest = (
        "service: bad\nfunctions:\n  f:\n    handler: app.echo\n    events:\n"
        "      - http: {method: GET, path: /x, authorizer: nobody}\n"
    )
    write_app(apps / "bad", manifest, {"app.py": APP})
    result = platform.cli("deploy", str(apps / "bad"), "--dry-run")
    assert result.returncode == 1
    assert "unkai.yml:6: functions.f.events[0].http.authorizer" in result.stderr
    assert "no authorizer 'nobody'" in result.stderr
