"""Verification of AWS Signature Version 4, as the SDKs sign
(https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html).

One request, header-signed (`Authorization: AWS4-HMAC-SHA256 Credential=...`) or presigned
(`X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=...` in the query):
1. read the signature's parts: access key, scope (date/region/service), signed header names,
   signature, timestamp (`X-Amz-Date`, else `Date`);
2. the access key must be configured, and the timestamp within 15 minutes of the clock
   (a presigned request: within its `X-Amz-Expires`);
3. the canonical request: method; the raw, still-encoded path with dot segments and empty
   segments removed and percent-encoded once more (botocore's `SigV4Auth` does this for every
   service but S3, which unkai does not serve); the query's pairs, each re-encoded the AWS way
   and sorted; only the signed headers, values trimmed and inner whitespace collapsed; the
   payload hash (`x-amz-content-sha256` when sent, which must then match the body, else the
   body's sha256);
4. the string to sign, the signing key (derived from the secret, cached per secret, date,
   region and service) and the HMAC, compared in constant time.

Steps 1 and 3 live in `signed_request.py`. Pure: no I/O; the clock is passed in. Failures raise
`SignatureError`, whose `code_for(service)` names the failure as that service does.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from unkai.access.aws_keys import AccessKey
from unkai.aws.signed_request import (
    ALGORITHM,
    AMZ_DATE,
    Failure,
    Signature,
    SignatureError,
    canonical_request,
    read_signature,
)
from unkai.gateway.http1 import Request

#: "The request reached the service more than 15 minutes after the date stamp on the request
#: ... or the date stamp on the request is more than 15 minutes in the future"
#: (https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html, RequestExpired).
MAX_SKEW_S = 15 * 60
#: Derived keys kept; only configured secrets reach the cache, but the date, region and
#: service come from the caller, so the cache is emptied when full.
_SIGNING_KEY_CACHE_SIZE = 256
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)
__all__ = ["AccessKey", "Failure", "SigV4Verifier", "SignatureError", "derive_signing_key"]


class SigV4Verifier:
    def __init__(
        self,
        keys: Mapping[str, AccessKey],
        *,
        clock: Callable[[], float] = time.time,
        max_skew_s: float = MAX_SKEW_S,
        region: str | None = None,
    ) -> None:
        self.keys = keys
        #: The one region this endpoint serves; a signature scoped to another is refused.
        self._region = region
        self._clock = clock
        self._max_skew_s = max_skew_s
        self._signing_keys: dict[tuple[str, str], bytes] = {}

    def verify(self, request: Request) -> AccessKey:
        """The configured key that signed `request`.

        Raises SignatureError: no signature, a malformed one, an unknown key, a timestamp too
        far from the clock, or a signature that does not match. Idempotent.
        """
        signature = read_signature(request)
        key = self.keys.get(signature.access_key_id)
        if key is None:
            raise SignatureError(
                Failure.UNKNOWN_KEY, "The security token included in the request is invalid."
            )
        self._check_time(signature)
        self._check_region(signature)
        canonical = canonical_request(request, signature)
        to_sign = b"\n".join(
            (
                ALGORITHM,
                signature.timestamp.encode(),
                signature.scope.encode(),
                hashlib.sha256(canonical).hexdigest().encode(),
            )
        )
        expected = hmac.new(self._signing_key(key, signature.scope), to_sign, hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest().encode(), signature.signature):
            raise SignatureError(Failure.MISMATCH, _MISMATCH)
        _check_all_signed(request, signature)
        return key

    def _check_region(self, signature: Signature) -> None:
        region = signature.scope.split("/", 2)[1]
        if self._region is not None and region != self._region:
            raise SignatureError(
                Failure.MISMATCH,
                f"Credential should be scoped to a valid region: this endpoint serves "
                f"'{self._region}', the request is signed for '{region}' (set the client's "
                "region, or the platform's --region)",
            )

    def _check_time(self, signature: Signature) -> None:
        signed_at = _epoch_s(signature.timestamp)
        now = self._clock()
        if signature.scope[:8] != signature.timestamp[:8]:
            raise SignatureError(
                Failure.MISMATCH,
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                f"date from HTTP: '{signature.scope[:8]}' != '{signature.timestamp[:8]}'",
            )
        if signature.expires_s is not None and now > signed_at + signature.expires_s:
            raise SignatureError(
                Failure.MISMATCH,
                f"Request has expired: signed at {signature.timestamp} for "
                f"{signature.expires_s} seconds, now {_amz_date(now)}",
            )
        skew = f"{self._max_skew_s / 60:g} min."
        if signature.expires_s is None and now - signed_at > self._max_skew_s:
            raise SignatureError(
                Failure.MISMATCH,
                f"Signature expired: {signature.timestamp} is now earlier than "
                f"{_amz_date(now - self._max_skew_s)} ({_amz_date(now)} - {skew})",
            )
        if signed_at - now > self._max_skew_s:
            raise SignatureError(
                Failure.MISMATCH,
                f"Signature not yet current: {signature.timestamp} is still later than "
                f"{_amz_date(now + self._max_skew_s)} ({_amz_date(now)} + {skew})",
            )

    def _signing_key(self, key: AccessKey, scope: str) -> bytes:
        cache_key = (key.secret_access_key, scope)
        signing_key = self._signing_keys.get(cache_key)
        if signing_key is None:
            if len(self._signing_keys) >= _SIGNING_KEY_CACHE_SIZE:
                self._signing_keys.clear()
            signing_key = derive_signing_key(key.secret_access_key, scope)
            self._signing_keys[cache_key] = signing_key
        return signing_key


#: Headers that choose what a call does (X-Amz-Target picks the operation, X-Unkai-Stage the
#: stage, X-Amz-Invocation-Type sync or async, ...): present, they must be signed, or anyone
#: holding a presigned URL or a captured request could point it elsewhere. AWS asks the same
#: of `x-amz-*` headers; SDKs sign every header but a few transport ones (botocore's
#: SIGNED_HEADERS_BLACKLIST), so their calls always pass.
_MUST_BE_SIGNED_PREFIXES = (b"x-amz-", b"x-unkai-")


def _check_all_signed(request: Request, signature: Signature) -> None:
    """Refuse a request carrying a routing header its signature does not cover. With the
    Authorization header, Content-Type too (it picks the query protocol's parser); a
    presigned URL signs only `host`, and clients add a Content-Type of their own."""
    signed = signature.signed_headers
    unsigned = sorted(
        {
            name.decode("latin-1")
            for name, _ in request.headers
            if name not in signed
            and (
                name.startswith(_MUST_BE_SIGNED_PREFIXES)
                or (name == b"content-type" and signature.expires_s is None)
            )
        }
    )
    if unsigned:
        raise SignatureError(
            Failure.MISMATCH,
            "There were headers present in the request which were not signed: "
            + ", ".join(unsigned),
        )


def derive_signing_key(secret: str, scope: str) -> bytes:
    """HMAC chain of the secret over the scope's date, region, service and 'aws4_request'."""
    signing_key = b"AWS4" + secret.encode()
    for part in scope.split("/"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    return signing_key


def _epoch_s(timestamp: str) -> float:
    return datetime.strptime(timestamp, AMZ_DATE).replace(tzinfo=UTC).timestamp()


def _amz_date(epoch_s: float) -> str:
    return time.strftime(AMZ_DATE, time.gmtime(epoch_s))
