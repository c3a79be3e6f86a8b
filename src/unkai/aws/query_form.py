"""The form of a query-protocol request (SNS, and SQS's older protocol): `name=value` pairs
from the URL's query string and from an `application/x-www-form-urlencoded` body.

Both are UTF-8, percent-escaped bytes and raw bytes alike (botocore percent-escapes
everything, but `curl --data` and hand-written clients send raw UTF-8; see
https://url.spec.whatwg.org/#application/x-www-form-urlencoded). Text that is not UTF-8 is
refused rather than guessed at: decoding raw bytes as latin-1 stored a raw `é` as `Ã©`.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from unkai.errors import InvalidRequest
from unkai.gateway.http1 import Request

FORM_CONTENT_TYPE = b"application/x-www-form-urlencoded"


def pairs(request: Request, *, error_code: str) -> list[tuple[str, str]]:
    """The query string's pairs, then the form body's, in order (so a caller keeping one value
    per name lets the body win). Raises InvalidRequest with `error_code` (the service's name
    for it: SQS `MalformedQueryString`, SNS `InvalidParameter`) when either is not UTF-8."""
    content_type = request.header(b"content-type") or b""
    body = request.body if content_type.startswith(FORM_CONTENT_TYPE) else b""
    return [*_decode(request.query_string, error_code), *_decode(body, error_code)]


def _decode(encoded: bytes, error_code: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(
            encoded.decode(), keep_blank_values=True, encoding="utf-8", errors="strict"
        )
    except UnicodeDecodeError:
        raise InvalidRequest(
            "The request's parameters are not UTF-8 text (percent-escaped or raw)",
            code=error_code,
        ) from None
