"""The AWS endpoint on the platform's port: calls are routed by the SigV4 credential scope or
X-Amz-Target, and a service unkai does not serve is refused with an error naming it, in a
shape the real client reads."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.integration.platform_process import PlatformProcess


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
