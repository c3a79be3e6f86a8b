"""What a SigV4-signed request says: its signature's parts (from the Authorization header or a
presigned query) and its canonical request, byte for byte as botocore's `SigV4Auth` builds it
(botocore/auth.py). `sigv4.py` checks the signature; this module only reads.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote_from_bytes, unquote_to_bytes

from unkai.aws.tokens import parse_digits
from unkai.gateway.http1 import Headers, Request

ALGORITHM = b"AWS4-HMAC-SHA256"
HEADER_PREFIX = ALGORITHM + b" "
#: A presigned request's X-Amz-Expires: 1 second to 7 days.
MAX_EXPIRES_S = 7 * 24 * 3600
AMZ_DATE = "%Y%m%dT%H%M%SZ"
_HEX = frozenset(b"0123456789abcdefABCDEF")
_PRESIGNED_PARAMS = ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature")


class Failure(enum.Enum):
    MISSING = "no signature"
    INCOMPLETE = "malformed signature"
    UNKNOWN_KEY = "unknown access key"
    MISMATCH = "wrong signature"  # also a signature too old, or not yet current


#: The query-protocol services answer these codes: STS and SNS, and SQS, whose JSON protocol is
#: "query compatible" and keeps reporting its query codes
#: (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html).
QUERY_CODE_SERVICES = frozenset({"sts", "sns", "sqs"})
_QUERY_CODES = {
    Failure.MISSING: "MissingAuthenticationToken",
    Failure.INCOMPLETE: "IncompleteSignature",
    Failure.UNKNOWN_KEY: "InvalidClientTokenId",
    Failure.MISMATCH: "SignatureDoesNotMatch",
}
#: json and rest-json services (CloudWatch Logs, Lambda, DynamoDB) answer the `...Exception`
#: names; Smithy's `aws.auth#sigv4` trait adds `InvalidSignatureException` to every operation.
_JSON_CODES = {
    Failure.MISSING: "MissingAuthenticationTokenException",
    Failure.INCOMPLETE: "IncompleteSignatureException",
    Failure.UNKNOWN_KEY: "UnrecognizedClientException",
    Failure.MISMATCH: "InvalidSignatureException",
}


class SignatureError(Exception):
    """Why a request's signature was refused (AWS answers all of these with 403)."""

    status = 403

    def __init__(self, failure: Failure, message: str) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message

    def code_for(self, service: str) -> str:
        """The error code `service` answers this failure with."""
        codes = _QUERY_CODES if service in QUERY_CODE_SERVICES else _JSON_CODES
        return codes[self.failure]


@dataclass(frozen=True, slots=True)
class Signature:
    """The parts of a request's signature, before any of them is checked."""

    access_key_id: str
    scope: str  # date/region/service/aws4_request
    signed_headers: tuple[bytes, ...]
    signature: bytes
    timestamp: str  # ISO 8601 basic, as in X-Amz-Date
    expires_s: int | None  # presigned requests only


# -- reading the signature ------------------------------------------------------------------


def read_signature(request: Request) -> Signature:
    """The signature's parts from the Authorization header, else from a presigned query.

    Raises SignatureError (MISSING, INCOMPLETE).
    """
    authorization = request.header(b"authorization")
    if authorization is not None and authorization.startswith(HEADER_PREFIX):
        return _from_header(authorization, request)
    if b"X-Amz-Credential=" in request.query_string:
        return _from_query(request.query_string)
    raise SignatureError(Failure.MISSING, "Request is missing Authentication Token")


def _from_header(authorization: bytes, request: Request) -> Signature:
    parts: dict[str, str] = {}
    for item in authorization[len(HEADER_PREFIX) :].decode("latin-1").split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            parts[name] = value
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not parts.get(name):
            raise SignatureError(
                Failure.INCOMPLETE, f"Authorization header requires '{name}' parameter."
            )
    access_key_id, scope = _credential(parts["Credential"])
    return Signature(
        access_key_id,
        scope,
        _signed_headers(parts["SignedHeaders"]),
        parts["Signature"].encode("latin-1"),
        _header_timestamp(request),
        None,
    )


def _from_query(query_string: bytes) -> Signature:
    params = {
        name: unquote_to_bytes(value).decode("latin-1")
        for name, _, value in (
            pair.decode("latin-1").partition("=") for pair in query_string.split(b"&")
        )
    }
    if params.get("X-Amz-Algorithm") != ALGORITHM.decode():
        raise SignatureError(
            Failure.INCOMPLETE, "X-Amz-Algorithm must be AWS4-HMAC-SHA256 in a presigned request."
        )
    for name in _PRESIGNED_PARAMS:
        if not params.get(name):
            raise SignatureError(
                Failure.INCOMPLETE, f"A presigned request requires the '{name}' parameter."
            )
    access_key_id, scope = _credential(params["X-Amz-Credential"])
    return Signature(
        access_key_id,
        scope,
        _signed_headers(params["X-Amz-SignedHeaders"]),
        params["X-Amz-Signature"].encode("latin-1"),
        _checked_timestamp(params["X-Amz-Date"]),
        _expires_s(params.get("X-Amz-Expires", "")),
    )


def _credential(credential: str) -> tuple[str, str]:
    """(access key id, scope) of `AKID/date/region/service/aws4_request`."""
    access_key_id, _, scope = credential.partition("/")
    parts = scope.split("/")
    if not access_key_id or len(parts) != 4 or not all(parts) or parts[3] != "aws4_request":
        raise SignatureError(
            Failure.INCOMPLETE,
            f"Credential must be 'ACCESS_KEY_ID/YYYYMMDD/region/service/aws4_request', "
            f"got {credential!r}.",
        )
    return access_key_id, scope


def _signed_headers(text: str) -> tuple[bytes, ...]:
    names = tuple(name.strip().lower().encode("latin-1") for name in text.split(";"))
    if b"host" not in names:
        raise SignatureError(
            Failure.INCOMPLETE, "'Host' must be a 'SignedHeader' in the AWS Authorization."
        )
    return names


def _header_timestamp(request: Request) -> str:
    amz_date = request.header(b"x-amz-date")
    if amz_date is not None:
        return _checked_timestamp(amz_date.decode("latin-1"))
    date = request.header(b"date")
    if date is None:
        raise SignatureError(
            Failure.INCOMPLETE,
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        )
    try:
        return parsedate_to_datetime(date.decode("latin-1")).astimezone(UTC).strftime(AMZ_DATE)
    except (TypeError, ValueError):
        raise SignatureError(
            Failure.INCOMPLETE, f"The Date header is not an HTTP date: {date!r}."
        ) from None


def _checked_timestamp(text: str) -> str:
    try:
        datetime.strptime(text, AMZ_DATE)
    except ValueError:
        raise SignatureError(
            Failure.INCOMPLETE,
            f"X-Amz-Date must be in ISO 8601 basic format (YYYYMMDD'T'HHMMSS'Z'), got {text!r}.",
        ) from None
    return text


def _expires_s(text: str) -> int:
    seconds = parse_digits(text)
    if seconds is None or not 1 <= seconds <= MAX_EXPIRES_S:
        raise SignatureError(
            Failure.INCOMPLETE,
            f"X-Amz-Expires must be 1 to {MAX_EXPIRES_S} seconds, got {text[:32]!r}.",
        )
    return seconds


# -- the canonical request ------------------------------------------------------------------


def canonical_request(request: Request, signature: Signature) -> bytes:
    """The canonical request of `request` under `signature`. Raises SignatureError when the
    declared payload hash is not the body's."""
    return b"\n".join(
        (
            request.method.encode("latin-1"),
            canonical_uri(request.raw_path),
            canonical_query(request.query_string, presigned=signature.expires_s is not None),
            canonical_headers(request.headers, signature.signed_headers),
            b";".join(signature.signed_headers),
            payload_hash(request),
        )
    )


def canonical_uri(raw_path: bytes) -> bytes:
    """The still-encoded path without dot or empty segments, percent-encoded once more."""
    segments: list[bytes] = []
    for segment in raw_path.split(b"/"):
        if segment == b"..":
            if segments:
                segments.pop()
        elif segment and segment != b".":
            segments.append(segment)
    trailing = b"/" if raw_path.endswith(b"/") and segments else b""
    path = b"/" + b"/".join(segments) + trailing
    return quote_from_bytes(path, safe="/~").encode()


def canonical_query(query_string: bytes, *, presigned: bool = False) -> bytes:
    """Each name and value decoded, encoded again the AWS way (only A-Z a-z 0-9 - _ . ~ stay
    as they are; '+' is a space), and the pairs sorted. A presigned request's own
    X-Amz-Signature is left out."""
    if not query_string:
        return b""
    pairs: list[tuple[bytes, bytes]] = []
    for pair in query_string.split(b"&"):
        name, _, value = pair.partition(b"=")
        encoded = _aws_encode(name)
        if not (presigned and encoded == b"X-Amz-Signature"):
            pairs.append((encoded, _aws_encode(value)))
    pairs.sort()
    return b"&".join(name + b"=" + value for name, value in pairs)


def canonical_headers(headers: Headers, signed: tuple[bytes, ...]) -> bytes:
    """One `name:value` line per signed header; repeated headers joined with ','."""
    lines: list[bytes] = []
    for name in signed:
        values = [b" ".join(value.split()) for key, value in headers if key == name]
        lines.append(name + b":" + b",".join(values) + b"\n")
    return b"".join(lines)


def payload_hash(request: Request) -> bytes:
    """The body's sha256 (hex). A request may declare it in x-amz-content-sha256, which must
    then match; `UNSIGNED-PAYLOAD` and streaming (chunk-signed) payloads are S3's, which unkai
    does not serve, and are refused: they would leave the body unsigned."""
    actual = hashlib.sha256(request.body).hexdigest().encode()
    declared = request.header(b"x-amz-content-sha256")
    if declared is None:
        return actual
    if len(declared) != 64 or not _HEX.issuperset(declared):
        raise SignatureError(
            Failure.INCOMPLETE,
            f"x-amz-content-sha256 must be the body's SHA-256, got {declared[:64]!r}; "
            "unsigned and streaming payloads are not accepted.",
        )
    if declared.lower() != actual:
        raise SignatureError(
            Failure.MISMATCH,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    return declared


def _aws_encode(text: bytes) -> bytes:
    return quote_from_bytes(unquote_to_bytes(text.replace(b"+", b" ")), safe="-_.~").encode()
