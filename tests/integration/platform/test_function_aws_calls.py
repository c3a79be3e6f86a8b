"""A handler's own AWS calls: `boto3.client("sqs")` inside a function reaches the platform with
no configuration (AWS_ENDPOINT_URL), signed with the function's own key, verified with
signatures on, and attributed to the function (STS names its role session)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.integration.platform_process import PlatformProcess, write_app

KEY, SECRET, ACCOUNT = "AKIATESTFUNCTIONS", "s3cret-for-tests", "123456789012"

APP = """
import boto3

def handler(event, context):
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=event["queue"])["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="sent by " + context.function_name)
    identity = boto3.client("sts").get_caller_identity()
    return {"arn": identity["Arn"], "account": identity["Account"]}
"""

MANIFEST = """
service: callers
resources:
  queues:
    from-functions: {}
functions:
  caller:
    handler: app.handler
    timeout: 20
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    root = tmp_path_factory.mktemp("function-calls")
    app = write_app(root / "app", MANIFEST, {"app.py": APP})
    proc = PlatformProcess(
        root / "data",
        app_dir=app,
        extra_args=("--aws-auth", "on", "--aws-credentials", f"{KEY}:{SECRET}:{ACCOUNT}"),
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def client(node: PlatformProcess, service: str, secret: str = SECRET) -> Any:
    return boto3.client(
        service,
        endpoint_url=node.url,
        region_name="us-east-1",
        aws_access_key_id=KEY,
        aws_secret_access_key=secret,
    )


def test_a_handler_calls_sqs_and_sts_with_no_configuration(node: PlatformProcess) -> None:
    answer = client(node, "lambda").invoke(
        FunctionName="caller", Payload=json.dumps({"queue": "from-functions"}).encode()
    )
    result = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, result
    # The call was verified (signatures are on) and attributed to the function
    assert result["arn"].endswith(":assumed-role/unkai-dev-caller/caller")
    sqs = client(node, "sqs")
    url = sqs.get_queue_url(QueueName="from-functions")["QueueUrl"]
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"]
    assert [m["Body"] for m in got] == ["sent by caller"]


def test_signed_lambda_calls_are_verified(node: PlatformProcess) -> None:
    bad = client(node, "lambda", secret="wrong")
    with pytest.raises(bad.exceptions.ClientError) as caught:
        bad.invoke(FunctionName="caller", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_a_function_key_cannot_be_forged(node: PlatformProcess, tmp_path: Path) -> None:
    # An id shaped like a function key, with a guessed secret, is refused
    forged = boto3.client(
        "sqs",
        endpoint_url=node.url,
        region_name="us-east-1",
        aws_access_key_id="UNKAIFMRSXMLZPMNQWC3DMMVZA",
        aws_secret_access_key="guess",
    )
    with pytest.raises(forged.exceptions.ClientError) as caught:
        forged.list_queues()
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


@pytest.mark.parametrize(
    "endpoint",
    ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data", "http://localhost/x"],
)
def test_remote_key_holders_cannot_point_subscriptions_at_private_addresses(
    node: PlatformProcess, endpoint: str
) -> None:
    # Signatures are checked here, so remote clients may call: a subscription may not make
    # the platform reach loopback, link-local or private addresses for them
    sns = client(node, "sns")
    arn = sns.create_topic(Name="guarded")["TopicArn"]
    with pytest.raises(sns.exceptions.InvalidParameterException) as caught:
        sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=endpoint)
    assert "not a public address" in caught.value.response["Error"]["Message"]
