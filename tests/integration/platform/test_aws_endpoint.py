"""The AWS endpoint on the platform's port: calls are routed by the SigV4 credential scope or
X-Amz-Target, and a service unkai does not serve is refused with an error naming it, in a
shape the real client reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.integration.platform_process import PlatformProcess, write_app


def client(platform: PlatformProcess, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=platform.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


@pytest.mark.parametrize(
    ("service", "call", "kwargs"),
    [
        ("dynamodb", "list_tables", {}),  # json protocol
        ("ec2", "describe_regions", {}),  # ec2 (query-like) protocol
    ],
)
def test_an_unserved_service_gets_an_error_naming_it(
    platform: PlatformProcess, service: str, call: str, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ClientError) as caught:
        getattr(client(platform, service), call)(**kwargs)
    error = caught.value.response["Error"]
    assert error["Code"] == "UnknownService"
    assert service in error["Message"] and "sqs" in error["Message"]


def test_user_routes_without_aws_headers_still_reach_functions(platform: PlatformProcess) -> None:
    # A plain request to an unknown path is the gateway's 404, not an AWS error
    with platform.client() as http:
        answer = http.post("/nothing-here", content=b"Action=Publish")
    assert answer.status_code == 404
    assert answer.json() == {"message": "Not Found"}


def test_requests_that_only_look_like_aws_calls_reach_the_routes(
    platform: PlatformProcess, tmp_path: Path, stage: str
) -> None:
    # Given a route
    app = write_app(
        tmp_path / "app",
        "service: lookalike\nfunctions:\n  echo:\n    handler: app.echo\n    events:\n"
        "      - http: {method: GET, path: /echo}\n",
        {"app.py": "def echo(event, context):\n    return {'query': event['rawQueryString']}\n"},
    )
    platform.cli("deploy", str(app), "--stage", stage, check=True)
    signed = AWSRequest(method="GET", url=f"{platform.url}/{stage}/echo?a=1")
    SigV4Auth(Credentials("x", "x"), "execute-api", "us-east-1").add_auth(signed)
    with platform.client() as http:
        # When a query value contains X-Amz-Credential=, or X-Amz-Target names no AWS
        # service served here, or the request is signed for API Gateway (execute-api)
        answers = [
            http.get(f"/{stage}/echo", params={"u": "X-Amz-Credential=abc"}),
            http.get(f"/{stage}/echo", headers={"X-Amz-Target": "MyApp.DoThing"}),
            http.get(f"/{stage}/echo?a=1", headers=dict(signed.headers.items())),
        ]
        # Then each reaches the function, as on API Gateway
        assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
        assert answers[0].json() == {"query": "u=X-Amz-Credential%3Dabc"}
        # But the same request signed for SQS is an AWS call
        sqs = AWSRequest(method="GET", url=f"{platform.url}/{stage}/echo")
        SigV4Auth(Credentials("x", "x"), "sqs", "us-east-1").add_auth(sqs)
        aws = http.get(f"/{stage}/echo", headers=dict(sqs.headers.items()))
        assert aws.status_code == 400 and "echo" not in aws.text
