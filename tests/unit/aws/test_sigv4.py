"""SigV4 verification against botocore's own signer (`SigV4Auth`, `SigV4QueryAuth`): what it
signs is accepted, and a change to anything signed is refused with the service's code.

URLs are built as botocore's serializers build them (path labels and query values already
percent-encoded), and the request the server sees is the one urllib3 puts on the wire.
"""

from __future__ import annotations

import hashlib
import time
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from urllib3.util.url import parse_url

from unkai.aws.signed_request import canonical_query, canonical_uri
from unkai.aws.sigv4 import AccessKey, Failure, SignatureError, SigV4Verifier, derive_signing_key
from unkai.gateway.http1 import Request

KEY = AccessKey("AKIDUNKAITEST", "s3cr3t/with+chars", "123456789012")
BASE = "http://127.0.0.1:8080"


def sign(
    method: str,
    url: str,
    *,
    service: str = "sqs",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    secret: str = KEY.secret_access_key,
    access_key_id: str = KEY.access_key_id,
) -> AWSRequest:
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    SigV4Auth(Credentials(access_key_id, secret), service, "us-east-1").add_auth(request)
    return request


def presign(url: str, *, service: str = "sts", expires_s: int = 60) -> AWSRequest:
    request = AWSRequest(method="GET", url=url)
    auth = SigV4QueryAuth(
        Credentials(KEY.access_key_id, KEY.secret_access_key),
        service,
        "us-east-1",
        expires=expires_s,
    )
    auth.add_auth(request)
    return request


def on_the_wire(signed: AWSRequest) -> Request:
    """The request as unkai's HTTP server parses what urllib3 sends."""
    prepared = signed.prepare()
    url = parse_url(prepared.url)
    headers = [(b"host", urlsplit(prepared.url).netloc.encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in prepared.headers.items()]
    body = prepared.body if isinstance(prepared.body, bytes) else (prepared.body or "").encode()
    return Request(
        prepared.method,
        (url.path or "/").encode(),
        (url.query or "").encode(),
        headers,
        body,
        "1.1",
        True,
        ("127.0.0.1", 5000),
    )


def verifier(clock_offset_s: float = 0.0) -> SigV4Verifier:
    return SigV4Verifier({KEY.access_key_id: KEY}, clock=lambda: time.time() + clock_offset_s)


def refused(request: Request, clock_offset_s: float = 0.0) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        verifier(clock_offset_s).verify(request)
    return caught.value


def replace_header(request: Request, name: bytes, value: bytes) -> Request:
    request.headers = [(k, value if k == name else v) for k, v in request.headers]
    return request


# -- accepted -------------------------------------------------------------------------------

ACCEPTED = [
    pytest.param(
        "sqs",
        "POST",
        "/",
        b'{"QueueName": "q"}',
        {"X-Amz-Target": "AmazonSQS.CreateQueue", "Content-Type": "application/x-amz-json-1.0"},
        id="sqs-json",
    ),
    pytest.param(
        "sts",
        "POST",
        "/",
        b"Action=GetCallerIdentity&Version=2011-06-15",
        {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        id="sts-query",
    ),
    pytest.param(
        "logs",
        "POST",
        "/",
        b'{"logGroupName": "/aws/lambda/f"}',
        {"X-Amz-Target": "Logs_20140328.CreateLogGroup"},
        id="logs-json",
    ),
    pytest.param(
        "lambda",
        "POST",
        "/2015-03-31/functions/my%20fn%E2%9C%93/invocations?Qualifier=prod",
        b"{}",
        {"X-Amz-Invocation-Type": "RequestResponse"},
        id="lambda-encoded-path-and-query",
    ),
    pytest.param(
        "lambda",
        "GET",
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af/x%2Fy/",
        b"",
        {},
        id="encoded-colons-and-slash-trailing-slash",
    ),
    pytest.param(
        "sns",
        "GET",
        "/?Action=Publish&Message=h%C3%A9llo%20w%2Borld&TopicArn=arn%3Aaws%3Asns&b=&a=2&a=1",
        b"",
        {"Content-Type": "text/plain"},
        id="query-unicode-repeated-and-empty",
    ),
    pytest.param(
        "sqs",
        "POST",
        "/",
        b"{}",
        {"X-Amz-Target": "AmazonSQS.ListQueues", "X-Custom": "  a   b  ", "x-amz-meta": "1"},
        id="header-whitespace-is-collapsed",
    ),
]


@pytest.mark.parametrize(("service", "method", "path", "body", "headers"), ACCEPTED)
def test_a_request_botocore_signed_is_accepted(
    service: str, method: str, path: str, body: bytes, headers: dict[str, str]
) -> None:
    # Given a request signed by botocore's SigV4Auth with a configured key
    request = on_the_wire(sign(method, BASE + path, service=service, body=body, headers=headers))
    # When it is verified, Then the key that signed it comes back
    assert verifier().verify(request) == KEY


def test_a_date_header_stands_in_for_x_amz_date() -> None:
    # Given botocore signs with a Date header (it then sends no X-Amz-Date)
    signed = sign("POST", BASE + "/", body=b"{}", headers={"Date": "x"})
    request = on_the_wire(signed)
    assert request.header(b"x-amz-date") is None and request.header(b"date") is not None
    # Then the signature verifies
    assert verifier().verify(request) == KEY


def test_a_presigned_request_is_accepted_until_it_expires() -> None:
    # Given a presigned STS call, valid for 60 s
    request = on_the_wire(presign(BASE + "/?Action=GetCallerIdentity&Version=2011-06-15"))
    # Then it verifies now, and not 2 minutes later
    assert verifier().verify(request) == KEY
    error = refused(request, clock_offset_s=120)
    assert error.failure is Failure.MISMATCH and "expired" in error.message


# -- refused --------------------------------------------------------------------------------


def sqs_request(body: bytes = b'{"QueueUrl": "q"}') -> Request:
    return on_the_wire(
        sign(
            "POST",
            BASE + "/000000000000/q?x=1",
            body=body,
            headers={"X-Amz-Target": "AmazonSQS.PurgeQueue", "User-Agent": "ua"},
        )
    )


def test_a_tampered_body_is_refused() -> None:
    request = sqs_request()
    request.body = b'{"QueueUrl": "other"}'
    assert refused(request).failure is Failure.MISMATCH


def test_a_tampered_signed_header_is_refused() -> None:
    request = replace_header(sqs_request(), b"x-amz-target", b"AmazonSQS.DeleteQueue")
    assert refused(request).failure is Failure.MISMATCH


def test_a_tampered_path_or_query_is_refused() -> None:
    request = sqs_request()
    request.raw_path = b"/000000000000/other"
    assert refused(request).failure is Failure.MISMATCH
    request = sqs_request()
    request.query_string = b"x=2"
    assert refused(request).failure is Failure.MISMATCH


def test_a_payload_hash_header_must_match_the_body() -> None:
    # Given a request whose x-amz-content-sha256 is signed and then the body is swapped
    body = b'{"QueueUrl": "q"}'
    signed = sign(
        "POST",
        BASE + "/",
        body=body,
        headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()},
    )
    request = on_the_wire(signed)
    assert verifier().verify(request) == KEY
    request.body = b'{"QueueUrl": "evil"}'
    assert refused(request).failure is Failure.MISMATCH


def test_an_unsigned_payload_is_refused() -> None:
    # Given a request that opts out of signing its body (S3's UNSIGNED-PAYLOAD)
    signed = sign(
        "POST", BASE + "/", body=b"{}", headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    )
    # Then it is refused: its body could be anything
    assert refused(on_the_wire(signed)).failure is Failure.INCOMPLETE


def test_an_unsigned_header_may_change() -> None:
    # Given a signed request, When a header it did not sign is added and another changed
    request = sqs_request()
    request.headers.append((b"x-forwarded-for", b"10.0.0.1"))
    request.headers.append((b"connection", b"close"))  # botocore never signs Connection
    # Then it is still accepted
    assert verifier().verify(request) == KEY


def test_an_expired_or_future_date_is_refused() -> None:
    request = sqs_request()
    late = refused(request, clock_offset_s=16 * 60)
    assert late.failure is Failure.MISMATCH and late.message.startswith("Signature expired: ")
    early = refused(request, clock_offset_s=-16 * 60)
    assert early.message.startswith("Signature not yet current: ")
    # within 15 minutes either way is fine
    assert verifier(clock_offset_s=14 * 60).verify(request) == KEY


def test_an_unknown_access_key_is_refused_with_each_protocols_code() -> None:
    request = on_the_wire(sign("POST", BASE + "/", body=b"{}", access_key_id="AKIDNOBODY"))
    error = refused(request)
    assert error.failure is Failure.UNKNOWN_KEY
    assert error.code_for("sts") == "InvalidClientTokenId"
    assert error.code_for("logs") == "UnrecognizedClientException"


def test_a_wrong_secret_is_refused_with_each_protocols_code() -> None:
    request = on_the_wire(sign("POST", BASE + "/", body=b"{}", secret="not-the-secret"))
    error = refused(request)
    assert error.failure is Failure.MISMATCH
    assert error.code_for("sqs") == "SignatureDoesNotMatch"
    assert error.code_for("sts") == "SignatureDoesNotMatch"
    assert error.code_for("logs") == "InvalidSignatureException"
    assert error.code_for("lambda") == "InvalidSignatureException"


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (None, Failure.MISSING),
        (b"AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00", Failure.INCOMPLETE),
        (
            b"AWS4-HMAC-SHA256 Credential=AKIDUNKAITEST/20240101/us-east-1/sqs, "
            b"SignedHeaders=host;x-amz-date, Signature=00",
            Failure.INCOMPLETE,
        ),
        (
            b"AWS4-HMAC-SHA256 Credential=AKIDUNKAITEST/20240101/us-east-1/sqs/aws4_request, "
            b"SignedHeaders=x-amz-date, Signature=00",
            Failure.INCOMPLETE,  # Host must be signed
        ),
    ],
)
def test_a_missing_or_malformed_signature_is_refused(
    authorization: bytes | None, expected: Failure
) -> None:
    request = sqs_request()
    request.headers = [(k, v) for k, v in request.headers if k != b"authorization"]
    if authorization is not None:
        request.headers.append((b"authorization", authorization))
    error = refused(request)
    assert error.failure is expected
    assert error.code_for("sts") in {"MissingAuthenticationToken", "IncompleteSignature"}


def test_a_scope_date_other_than_the_request_date_is_refused() -> None:
    request = sqs_request()
    auth = request.header(b"authorization")
    assert auth is not None
    date = request.header(b"x-amz-date")
    assert date is not None
    wrong = auth.replace(b"/" + date[:8] + b"/", b"/20000101/")
    request = replace_header(request, b"authorization", wrong)
    error = refused(request)
    assert error.failure is Failure.MISMATCH and "Credential scope" in error.message


# -- the parts, against botocore's -----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/", "", "/a/./b/../c//d/", "/x%2Fy", "/sp%20ace/%E2%9C%93", "/a~b/c-d_e.f"],
)
def test_the_canonical_uri_is_botocores(path: str) -> None:
    expected = SigV4Auth(None, "s", "r")._normalize_url_path(path)
    assert canonical_uri(path.encode()) == expected.encode()


def test_the_canonical_query_is_botocores_from_params() -> None:
    # botocore's canonical form from parameters (encoded the AWS way, sorted)
    params = {"b": "x y", "a": "✓", "A": "1/2", "c": "", "d": "a+b"}
    expected = SigV4Auth(None, "s", "r")._canonical_query_string_params(params)
    wire = "&".join(
        f"{k}={v}"
        for k, v in {"b": "x%20y", "a": "%E2%9C%93", "A": "1%2F2", "c": "", "d": "a%2Bb"}.items()
    )
    assert canonical_query(wire.encode()) == expected.encode()


def test_the_signing_key_is_the_one_in_awss_example() -> None:
    # https://docs.aws.amazon.com/general/latest/gr/signature-v4-examples.html (example key)
    key = derive_signing_key(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215/us-east-1/iam/aws4_request"
    )
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
