"""STS's GetCallerIdentity answer, read by botocore's own query parser."""

from __future__ import annotations

from typing import Any

import botocore.session
from botocore.parsers import QueryParser

from unkai.aws.endpoint import AwsCall
from unkai.aws.errors import query_error
from unkai.aws.sts import caller_identity, unsupported


def parse(status: int, body: bytes) -> dict[str, Any]:
    model = botocore.session.get_session().get_service_model("sts")
    shape = model.operation_model("GetCallerIdentity").output_shape
    response = {"status_code": status, "headers": {}, "body": body}
    parsed: dict[str, Any] = QueryParser().parse(response, shape)
    return parsed


def test_the_caller_is_the_access_key_in_its_account() -> None:
    call = AwsCall("sts", "us-east-1", "AKIDUNKAI", "req-1", "123456789012")
    parsed = parse(200, caller_identity(call).encode())
    assert parsed["Account"] == "123456789012"
    assert parsed["Arn"] == "arn:aws:iam::123456789012:user/AKIDUNKAI"
    assert parsed["UserId"] == "AKIDUNKAI"
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"


def test_anunsupported_action_is_named_in_a_501() -> None:
    status, _, body = query_error(unsupported("AssumeRole"), "req-2")
    error = parse(status, body)["Error"]
    assert status == 501
    assert error["Code"] == "InvalidAction"
    assert "AssumeRole" in error["Message"] and "GetCallerIdentity" in error["Message"]
