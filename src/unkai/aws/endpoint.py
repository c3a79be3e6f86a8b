"""`AwsEndpoint`: the one front door for AWS's wire protocols, on the gateway's port.

A request is an AWS call when it carries a SigV4 signature (`Authorization` header or presigned
query) or an `X-Amz-Target`.
Its service comes from the credential scope (`Credential=AKID/date/region/SERVICE/...`), else
from the `X-Amz-Target` prefix; each service's front door (`AwsService`) then parses its own
protocol and calls the core. A service unkai does not serve gets an error naming it, in the
query protocol's shape (the one every AWS SDK can read as an error).

Before a call reaches its service, its SigV4 signature is verified (`sigv4.py`) when
`check_signatures` is on (`--aws-auth`); a refused one gets the service's own code
(`SignatureDoesNotMatch`, `InvalidSignatureException`, ...) in the caller's protocol shape.
With checks off any access key is accepted. Either way a call acts in the account configured
for its access key, else in the platform's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote

from unkai.access.aws_keys import KeyRing
from unkai.aws.errors import Answer, AwsError, json_error, query_error
from unkai.aws.sigv4 import AccessKey, SignatureError, SigV4Verifier
from unkai.gateway.http1 import HttpConnection, Request
from unkai.invoke.request_ids import new_request_id

SIGV4 = b"AWS4-HMAC-SHA256 "
#: A presigned request carries its signature in the query instead.
PRESIGNED = b"X-Amz-Credential="
#: X-Amz-Target prefixes of the json services, by service name.
TARGET_PREFIXES: Mapping[bytes, str] = {b"AmazonSQS.": "sqs", b"Logs_20140328.": "logs"}
_TARGETS = tuple(TARGET_PREFIXES)
#: The signing name of API Gateway's invoke API: a request signed for it calls a route.
ROUTE_SERVICE = "execute-api"


@dataclass(frozen=True, slots=True)
class AwsCall:
    """What the endpoint learnt about a call before handing it on."""

    service: str
    region: str
    access_key: str | None
    request_id: str
    #: The account the call acts in: its access key's, else the platform's.
    account_id: str
    #: "<stage>/<function>" when a function's instance made the call with its own key.
    function: str | None = None


class AwsService(Protocol):
    def handle_call(self, request: Request, connection: HttpConnection, call: AwsCall) -> None:
        """Answer `connection` (now or later) for one call of this service."""
        ...


class AwsEndpoint:
    def __init__(
        self,
        services: Mapping[str, AwsService],
        *,
        region: str,
        account_id: str,
        verifier: SigV4Verifier,
        check_signatures: bool,
    ) -> None:
        self._services = services
        self._region = region
        self._account_id = account_id
        self._verifier = verifier
        self._check_signatures = check_signatures

    @property
    def checks_signatures(self) -> bool:
        """True when every call is verified (then remote clients may call, signed)."""
        return self._check_signatures

    @staticmethod
    def claims(request: Request) -> bool:
        """True for an AWS call: a SigV4 signature (header or presigned) for any service but
        `execute-api` (a client signing for API Gateway means your routes), or an
        X-Amz-Target of a service served here. A route's own `X-Amz-Target`, or a query value
        that merely contains `X-Amz-Credential=`, stays with the routes. Asked of every
        request that is not the control API's: one pass over the headers."""
        for name, value in request.headers:
            if name == b"authorization" and value.startswith(SIGV4):
                scope = credential_scope(value)
                return scope is None or scope[3] != ROUTE_SERVICE
            if name == b"x-amz-target" and value.startswith(_TARGETS):
                return True
        query = request.query_string
        # `find`, not `in`: bytes.__contains__ makes a TypeError inside first (~0.4 µs).
        if not query or query.find(PRESIGNED) < 0:
            return False
        scope = presigned_scope(query)
        return scope is not None and scope[3] != ROUTE_SERVICE

    def handle(self, request: Request, connection: HttpConnection) -> None:
        request_id = new_request_id()
        service, region, access_key = self._identify(request)
        handler = self._services.get(service or "")
        if handler is None:
            shown = service or "an unknown service"
            error = AwsError(
                "UnknownService" if service else "MissingAuthenticationToken",
                f"unkai does not serve {shown}; it serves {', '.join(sorted(self._services))}"
                if service
                else "the request names no AWS service (no SigV4 credential scope and no "
                "X-Amz-Target)",
                400,
            )
            connection.respond(*error_answer(request, error, request_id))
            return
        try:
            account_id = self._account_of(request, access_key)
        except SignatureError as exc:
            refusal = AwsError(exc.code_for(service or ""), exc.message, exc.status)
            connection.respond(*error_answer(request, refusal, request_id, service))
            return
        handler.handle_call(
            request,
            connection,
            AwsCall(
                service or "",
                region or self._region,
                access_key,
                request_id,
                account_id,
                self._function_of(access_key),
            ),
        )

    def _function_of(self, access_key: str | None) -> str | None:
        keys = self._verifier.keys
        if access_key is None or not isinstance(keys, KeyRing):
            return None
        key = keys.functions.lookup(access_key)
        return f"{key.stage}/{key.function}" if key is not None else None

    def _account_of(self, request: Request, access_key: str | None) -> str:
        """The account the call acts in. Raises SignatureError when signatures are checked
        and this one is missing or wrong."""
        key: AccessKey | None
        if self._check_signatures:
            key = self._verifier.verify(request)
        else:
            key = self._verifier.keys.get(access_key or "")
        return key.account_id if key is not None and key.account_id else self._account_id

    def _identify(self, request: Request) -> tuple[str | None, str | None, str | None]:
        """(service, region, access key) from the credential scope, else the target."""
        auth = request.header(b"authorization")
        if auth is not None and auth.startswith(SIGV4):
            scope = credential_scope(auth)
        else:
            scope = presigned_scope(request.query_string)
        if scope is not None:
            access_key, _date, region, service = scope
            return service, region, access_key
        target = request.header(b"x-amz-target") or b""
        for prefix, service in TARGET_PREFIXES.items():
            if target.startswith(prefix):
                return service, None, None
        return None, None, None


#: Services that speak only the query protocol: their errors are XML whatever the request
#: looks like (a presigned GET has neither a target nor a form).
QUERY_ONLY_SERVICES = frozenset({"sts", "sns"})


def error_answer(
    request: Request, error: AwsError, request_id: str, service: str | None = None
) -> Answer:
    """The error in the shape the caller's protocol reads: query for a query-only service,
    json when it sent X-Amz-Target, query when it posted a form, rest-json otherwise."""
    if service in QUERY_ONLY_SERVICES:
        return query_error(error, request_id)
    if request.header(b"x-amz-target") is not None:
        return json_error(error, request_id)
    content_type = request.header(b"content-type") or b""
    if content_type.startswith(b"application/x-www-form-urlencoded"):
        return query_error(error, request_id)
    return error.rest_json(request_id)


def credential_scope(authorization: bytes) -> tuple[str, str, str, str] | None:
    """(access key, date, region, service) of a SigV4 Authorization header."""
    text = authorization.decode("latin-1")
    start = text.find("Credential=")
    if start < 0 or text.count("Credential=") != 1:
        # Two credentials: the verifier would check one and the routing read the other.
        return None
    return _scope(text[start + len("Credential=") :].split(",", 1)[0].strip())


def presigned_scope(query_string: bytes) -> tuple[str, str, str, str] | None:
    """(access key, date, region, service) of a presigned request's X-Amz-Credential."""
    found = [p for p in query_string.split(b"&") if p.startswith(PRESIGNED)]
    if len(found) != 1:  # none, or two: the verifier would check one and the routing read another
        return None
    return _scope(unquote(found[0][len(PRESIGNED) :].decode("latin-1")))


def _scope(value: str) -> tuple[str, str, str, str] | None:
    parts = value.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        return None
    return parts[0], parts[1], parts[2], parts[3]
