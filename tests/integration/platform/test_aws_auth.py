"""SigV4 on the AWS endpoint, end to end with boto3: with --aws-auth on, only calls signed with
a configured key get through, each refusal in the code its service uses; STS says which
account a key acts in; with checks off any key works and start-up says so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from tests.integration.platform_process import PlatformProcess

ACCOUNT = "123456789012"
KEYS = f"AKIDUNKAIONE:secret-one:{ACCOUNT},AKIDUNKAITWO:secret/two+x"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    proc = PlatformProcess(
        tmp_path_factory.mktemp("secured-data"),
        extra_args=("--aws-auth", "on", "--aws-credentials", KEYS),
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def client(
    platform: PlatformProcess, service: str, key: str = "AKIDUNKAIONE", secret: str = "secret-one"
) -> Any:
    return boto3.client(
        service,
        endpoint_url=platform.url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return dict(caught.value.response["Error"]) | {
        "status": caught.value.response["ResponseMetadata"]["HTTPStatusCode"]
    }


def test_sts_reports_the_account_configured_for_the_key(secured: PlatformProcess) -> None:
    # When each configured key asks who it is
    one = client(secured, "sts").get_caller_identity()
    two = client(secured, "sts", "AKIDUNKAITWO", "secret/two+x").get_caller_identity()
    # Then the first acts in its own account, the second (none given) in the platform's
    assert one["Account"] == ACCOUNT
    assert one["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/AKIDUNKAIONE"
    assert one["UserId"] == "AKIDUNKAIONE"
    assert two["Account"] == "000000000000"


def test_sqs_with_a_configured_key_works(secured: PlatformProcess) -> None:
    sqs = client(secured, "sqs")
    url = sqs.create_queue(QueueName="signed")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in messages] == ["hello"]


@pytest.mark.parametrize(
    ("service", "call", "kwargs"),
    [("sqs", "list_queues", {}), ("sts", "get_caller_identity", {})],
)
def test_a_wrong_secret_is_refused_as_the_service_refuses_it(
    secured: PlatformProcess, service: str, call: str, kwargs: dict[str, Any]
) -> None:
    # Given a configured key signed with the wrong secret
    bad = client(secured, service, secret="not-the-secret")
    # Then the call is refused with the query protocol's code (SQS's JSON protocol is query
    # compatible and keeps it)
    error = error_of(getattr(bad, call), **kwargs)
    assert error["Code"] == "SignatureDoesNotMatch"
    assert error["status"] == 403
    assert "signature we calculated does not match" in error["Message"]


@pytest.mark.parametrize("service", ["sqs", "sts"])
def test_an_unknown_key_is_refused(secured: PlatformProcess, service: str) -> None:
    stranger = client(secured, service, key="AKIDSTRANGER", secret="x")
    call = stranger.list_queues if service == "sqs" else stranger.get_caller_identity
    assert error_of(call)["Code"] == "InvalidClientTokenId"


def test_an_unsigned_call_is_refused(secured: PlatformProcess) -> None:
    with secured.client() as http:
        answer = http.post(
            "/",
            content=b"{}",
            headers={
                "X-Amz-Target": "AmazonSQS.ListQueues",
                "Content-Type": "application/x-amz-json-1.0",
            },
        )
    assert answer.status_code == 403
    assert answer.json()["__type"] == "MissingAuthenticationToken"


def test_a_presigned_call_is_verified(secured: PlatformProcess) -> None:
    # Given a presigned GetCallerIdentity URL for GET (what EKS-style tokens are made of)
    url = client(secured, "sts").generate_presigned_url(
        "get_caller_identity", ExpiresIn=60, HttpMethod="GET"
    )
    # Then it answers, and the same URL with its signature changed does not
    answer = httpx.get(url, timeout=30)
    assert answer.status_code == 200 and f"<Account>{ACCOUNT}</Account>" in answer.text
    tampered = httpx.get(url[:-4] + ("0000" if not url.endswith("0000") else "1111"), timeout=30)
    assert tampered.status_code == 403


def test_start_up_says_nothing_when_signatures_are_checked(secured: PlatformProcess) -> None:
    assert not any("signatures are not checked" in line for line in secured.output)


def test_with_checks_off_any_key_works_and_start_up_says_so(platform: PlatformProcess) -> None:
    # Given the shared platform, on loopback with --aws-auth auto (so checks are off)
    assert any(line.startswith("AWS signatures are not checked") for line in platform.output), (
        platform.output
    )
    # When a client signs with a key nobody configured
    sts = client(platform, "sts", key="anything", secret="whatever")
    sqs = client(platform, "sqs", key="anything", secret="whatever")
    # Then it gets through, acting in the platform's account
    assert sts.get_caller_identity()["Account"] == "000000000000"
    url = sqs.create_queue(QueueName="aws-auth-dev-mode")["QueueUrl"]
    assert url.endswith("/aws-auth-dev-mode")


def test_headers_that_choose_the_call_must_be_signed(secured: PlatformProcess) -> None:
    # Given a presigned GetCallerIdentity URL, which signs only `host`
    url = client(secured, "sts").generate_presigned_url(
        "get_caller_identity", ExpiresIn=60, HttpMethod="GET"
    )
    # When an x-amz-* or x-unkai-* header is added to it, the call is refused, naming them
    for extra in ({"X-Unkai-Stage": "other"}, {"X-Amz-Target": "AmazonSQS.ListQueues"}):
        answer = httpx.get(url, headers=extra, timeout=30)
        assert answer.status_code == 403, answer.text
        assert "SignatureDoesNotMatch" in answer.text
        assert f"not signed: {next(iter(extra)).lower()}" in answer.text
    # But a Content-Type of the client's own is not refused on a presigned URL
    plain = httpx.get(url, headers={"Content-Type": "text/plain"}, timeout=30)
    assert plain.status_code == 200, plain.text

    # Given a Lambda call signed by boto3 (every header signed)
    lam = client(secured, "lambda")
    unsigned: dict[str, str] = {}

    def add_unsigned(request: Any, **_: Any) -> None:
        for name, value in unsigned.items():
            request.headers[name] = value

    lam.meta.events.register("before-send.lambda.*", add_unsigned)
    assert lam.list_functions()["Functions"] == []
    # When a stage header is added after signing, it is refused in Lambda's code
    unsigned["X-Unkai-Stage"] = "elsewhere"
    refused = error_of(lam.list_functions)
    assert refused["Code"] == "InvalidSignatureException" and refused["status"] == 403
    assert "x-unkai-stage" in refused["Message"]


def test_a_signature_for_another_region_is_refused(secured: PlatformProcess) -> None:
    # Given a client set up for a region this platform does not serve (it serves us-east-1)
    elsewhere = boto3.client(
        "sqs",
        endpoint_url=secured.url,
        region_name="eu-west-1",
        aws_access_key_id="AKIDUNKAIONE",
        aws_secret_access_key="secret-one",
    )
    # Then its calls are refused, naming both regions
    refused = error_of(elsewhere.list_queues)
    assert refused["Code"] == "SignatureDoesNotMatch" and refused["status"] == 403
    assert "'us-east-1'" in refused["Message"] and "'eu-west-1'" in refused["Message"]
