"""boto3's `lambda` client (and the AWS CLI), unchanged but for `endpoint_url`, managing
functions on the platform: create from a zip, waiters, get and list, invoke with the log
tail, update code and configuration, versions, reserved concurrency, asynchronous settings,
delete, and the error codes boto3 users catch. Each test works in its own stage, chosen with
the X-Unkai-Stage header."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.integration.platform_process import PlatformProcess, write_app

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:"
_names = itertools.count(1)

APP = """
import os

def handler(event, context):
    print("hello from", context.function_name)
    return {
        "code": "one",
        "event": event,
        "memory": int(context.memory_limit_in_mb),
        "greeting": os.environ.get("GREETING"),
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
"""


def zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def lambda_client(platform: PlatformProcess, stage: str | None) -> Any:
    client = boto3.client(
        "lambda",
        endpoint_url=platform.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        # One attempt: a TooManyRequestsException must reach the test, not be retried.
        config=Config(retries={"total_max_attempts": 1}),
    )
    if stage is not None:

        def select_stage(request: Any, **_: Any) -> None:
            request.headers["X-Unkai-Stage"] = stage

        client.meta.events.register("before-sign.lambda.*", select_stage)
    return client


@pytest.fixture
def lam(platform: PlatformProcess, stage: str) -> Any:
    return lambda_client(platform, stage)


def create(lam: Any, name: str, code: bytes | None = None, **settings: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": "python3.11",
        "Role": ROLE,
        "Handler": "app.handler",
        "Code": {"ZipFile": code if code is not None else zip_of({"app.py": APP})},
        **settings,
    }
    answer: dict[str, Any] = lam.create_function(**arguments)
    return answer


def invoke(lam: Any, name: str, payload: Any = None, **options: Any) -> dict[str, Any]:
    answer: dict[str, Any] = lam.invoke(
        FunctionName=name, Payload=json.dumps(payload or {}).encode(), **options
    )
    answer["Body"] = answer["Payload"].read()
    return answer


def error_of(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def test_create_waiters_get_and_invoke_with_the_log_tail(lam: Any) -> None:
    # Given a function created from an in-memory zip
    code = zip_of({"app.py": APP})
    created = create(
        lam,
        "greeter",
        code,
        Description="says hello",
        MemorySize=256,
        Timeout=5,
        Environment={"Variables": {"GREETING": "hi"}},
    )

    # Then it is Active at once, and boto3's waiters finish on their first poll
    assert created["FunctionName"] == "greeter"
    assert created["FunctionArn"] == ARN + "greeter"
    assert created["State"] == "Active" and created["LastUpdateStatus"] == "Successful"
    assert created["CodeSha256"] == sha256_b64(code) and created["CodeSize"] == len(code)
    assert created["Version"] == "$LATEST" and created["PackageType"] == "Zip"
    assert created["Architectures"] == ["x86_64"] and created["Role"] == ROLE
    assert created["Environment"] == {"Variables": {"GREETING": "hi"}}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", created["LastModified"])
    fast = {"Delay": 1, "MaxAttempts": 2}
    for waiter in ("function_active_v2", "function_updated_v2", "function_exists"):
        lam.get_waiter(waiter).wait(FunctionName="greeter", WaiterConfig=fast)
    lam.get_waiter("function_active").wait(FunctionName="greeter", WaiterConfig=fast)

    # When it is read back
    got = lam.get_function(FunctionName="greeter")
    assert {k: v for k, v in got["Configuration"].items() if k != "ResponseMetadata"} == {
        k: v for k, v in created.items() if k != "ResponseMetadata"
    }
    assert got["Code"]["RepositoryType"] == "S3" and got["Code"]["Location"]
    assert "Concurrency" not in got
    assert lam.get_function_configuration(FunctionName=ARN + "greeter")["MemorySize"] == 256

    # And invoked with LogType Tail
    answer = invoke(lam, "greeter", {"n": 1}, LogType="Tail")
    assert answer["StatusCode"] == 200 and answer["ExecutedVersion"] == "$LATEST"
    body = json.loads(answer["Body"])
    assert body["event"] == {"n": 1} and body["memory"] == 256 and body["greeting"] == "hi"
    tail = base64.b64decode(answer["LogResult"]).decode()
    request_id = answer["ResponseMetadata"]["RequestId"]
    assert tail.startswith(f"START RequestId: {request_id} Version: $LATEST\n")
    assert "hello from greeter\n" in tail
    assert f"\nEND RequestId: {request_id}\n" in tail
    assert f"\nREPORT RequestId: {request_id}\tDuration: " in tail


def test_log_tail_keeps_the_last_4_kb(lam: Any) -> None:
    # Given a function that prints far more than 4 KB
    noisy = "def handler(event, context):\n    for i in range(1000):\n        print('line', i)\n"
    create(lam, "noisy", zip_of({"app.py": noisy}))

    # When it is invoked with LogType Tail
    answer = invoke(lam, "noisy", LogType="Tail")

    # Then the tail is the log's last 4096 bytes, ending with REPORT
    tail = base64.b64decode(answer["LogResult"])
    assert len(tail) == 4096
    assert b"line 999\nEND RequestId: " in tail and b"\nREPORT RequestId: " in tail
    assert b"line 0\n" not in tail


def test_event_and_dry_run_invocations(lam: Any) -> None:
    create(lam, "later")
    assert invoke(lam, "later", InvocationType="Event")["StatusCode"] == 202
    assert invoke(lam, "later", InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        invoke(lam, "missing", InvocationType="DryRun")


def test_list_functions_pages_with_marker(lam: Any) -> None:
    # Given three functions in the stage
    for name in ("alpha", "bravo", "charlie"):
        create(lam, name)

    # When listed two at a time
    first = lam.list_functions(MaxItems=2)
    second = lam.list_functions(MaxItems=2, Marker=first["NextMarker"])

    # Then the pages follow each other by name, and the paginator sees all
    assert [f["FunctionName"] for f in first["Functions"]] == ["alpha", "bravo"]
    assert [f["FunctionName"] for f in second["Functions"]] == ["charlie"]
    assert "NextMarker" not in second
    pages = lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 1})
    assert [f["FunctionName"] for page in pages for f in page["Functions"]] == [
        "alpha",
        "bravo",
        "charlie",
    ]
    assert all(f["State"] == "Active" for f in first["Functions"])


def test_update_code_and_configuration_and_publish_versions(lam: Any) -> None:
    # Given a function (version 1)
    create(lam, "changing")
    assert json.loads(invoke(lam, "changing")["Body"])["code"] == "one"

    # When its code is replaced (version 2)
    new_code = zip_of({"app.py": APP.replace('"code": "one"', '"code": "two"')})
    updated = lam.update_function_code(FunctionName="changing", ZipFile=new_code)
    lam.get_waiter("function_updated_v2").wait(
        FunctionName="changing", WaiterConfig={"Delay": 1, "MaxAttempts": 2}
    )

    # Then the new code runs
    assert updated["CodeSha256"] == sha256_b64(new_code)
    assert updated["LastUpdateStatus"] == "Successful"
    assert json.loads(invoke(lam, "changing")["Body"])["code"] == "two"

    # When its memory, timeout and environment change (version 3)
    configured = lam.update_function_configuration(
        FunctionName="changing",
        MemorySize=512,
        Timeout=7,
        Environment={"Variables": {"GREETING": "bonjour"}},
    )
    assert (configured["MemorySize"], configured["Timeout"]) == (512, 7)
    assert configured["CodeSha256"] == sha256_b64(new_code)

    # Then invocations see them
    body = json.loads(invoke(lam, "changing")["Body"])
    assert body["memory"] == 512 and body["greeting"] == "bonjour"
    assert 3000 < body["remaining_ms"] <= 7000

    # And PublishVersion names the latest version; older ones still run their code
    published = lam.publish_version(FunctionName="changing")
    assert published["Version"] == "3"
    assert published["FunctionArn"] == ARN + "changing:3"
    assert json.loads(invoke(lam, "changing", Qualifier="1")["Body"])["code"] == "one"
    first = lam.get_function(FunctionName="changing", Qualifier="1")["Configuration"]
    assert first["Version"] == "1" and first["MemorySize"] == 128
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.publish_version(FunctionName="changing", CodeSha256="not-the-hash")

    # And changes apply to the whole function, never to one version
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.update_function_configuration(FunctionName="changing:1", Timeout=9)
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.delete_function(FunctionName="changing", Qualifier="1")


def test_reserved_concurrency_zero_throttles_until_deleted(lam: Any) -> None:
    # Given a function with reserved concurrency 0
    create(lam, "limited")
    put = lam.put_function_concurrency(FunctionName="limited", ReservedConcurrentExecutions=0)
    assert put["ReservedConcurrentExecutions"] == 0
    assert lam.get_function(FunctionName="limited")["Concurrency"] == {
        "ReservedConcurrentExecutions": 0
    }
    assert lam.get_function_concurrency(FunctionName="limited")["ReservedConcurrentExecutions"] == 0

    # Then every invocation is throttled
    with pytest.raises(lam.exceptions.TooManyRequestsException):
        invoke(lam, "limited")

    # And once the limit is deleted, it runs again
    lam.delete_function_concurrency(FunctionName="limited")
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(
        FunctionName="limited"
    )
    assert invoke(lam, "limited")["StatusCode"] == 200


def test_event_invoke_config_drives_asynchronous_destinations(
    lam: Any, platform: PlatformProcess
) -> None:
    # Given a function with no asynchronous configuration, and a queue
    create(lam, "notifier")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_event_invoke_config(FunctionName="notifier")
    sqs = boto3.client(
        "sqs",
        endpoint_url=platform.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    queue = f"lambda-api-dest-{next(_names)}"
    queue_url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    queue_arn = f"arn:aws:sqs:us-east-1:000000000000:{queue}"

    # When its outcomes are sent to the queue
    put = lam.put_function_event_invoke_config(
        FunctionName="notifier",
        MaximumRetryAttempts=0,
        MaximumEventAgeInSeconds=120,
        DestinationConfig={"OnSuccess": {"Destination": queue_arn}},
    )
    assert put["MaximumRetryAttempts"] == 0 and put["MaximumEventAgeInSeconds"] == 120
    assert put["DestinationConfig"] == {"OnSuccess": {"Destination": queue_arn}}
    assert put["FunctionArn"] == ARN + "notifier:$LATEST"
    got = lam.get_function_event_invoke_config(FunctionName="notifier")
    assert got["DestinationConfig"] == put["DestinationConfig"]

    # Then an asynchronous invocation's record arrives there
    assert invoke(lam, "notifier", {"k": "v"}, InvocationType="Event")["StatusCode"] == 202
    received = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=20)["Messages"]
    record = json.loads(received[0]["Body"])
    assert record["requestPayload"] == {"k": "v"}
    assert record["responsePayload"]["code"] == "one"

    # And Update changes only what it is given; Delete returns to the defaults
    updated = lam.update_function_event_invoke_config(
        FunctionName="notifier", MaximumRetryAttempts=1
    )
    assert updated["MaximumRetryAttempts"] == 1 and updated["MaximumEventAgeInSeconds"] == 120
    assert updated["DestinationConfig"] == put["DestinationConfig"]
    lam.delete_function_event_invoke_config(FunctionName="notifier")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_event_invoke_config(FunctionName="notifier")


def test_delete_removes_the_function_and_its_directory(
    lam: Any, platform: PlatformProcess, stage: str
) -> None:
    # Given a function
    create(lam, "doomed")
    directory = platform.data_dir / "functions" / stage / "doomed"
    assert directory.is_dir()

    # When it is deleted
    lam.delete_function(FunctionName="doomed")

    # Then it is gone everywhere, and its name is free again
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="doomed")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        invoke(lam, "doomed")
    assert not directory.exists()
    assert create(lam, "doomed")["State"] == "Active"


def test_unknown_and_duplicate_functions(lam: Any) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="nope")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.update_function_configuration(FunctionName="nope", Timeout=5)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.delete_function(FunctionName="nope")
    create(lam, "once")
    with pytest.raises(lam.exceptions.ResourceConflictException) as caught:
        create(lam, "once")
    assert "Function already exist: once" in error_of(caught)[1]


def test_a_manifest_function_is_read_only(
    lam: Any, platform: PlatformProcess, apps: Path, stage: str
) -> None:
    # Given a function deployed from a manifest
    app = write_app(
        apps / "shop",
        "service: shop\nfunctions:\n  orders:\n    handler: app.handler\n",
        {"app.py": APP},
    )
    platform.cli("deploy", str(app), "--stage", stage, check=True)

    # Then the API reads it
    config = lam.get_function(FunctionName="orders")["Configuration"]
    assert config["State"] == "Active" and config["Handler"] == "app.handler"
    assert "orders" in [f["FunctionName"] for f in lam.list_functions()["Functions"]]

    # But refuses to change it, naming its service
    changes = [
        lambda: lam.update_function_configuration(FunctionName="orders", Timeout=9),
        lambda: lam.update_function_code(FunctionName="orders", ZipFile=zip_of({"app.py": APP})),
        lambda: lam.put_function_concurrency(FunctionName="orders", ReservedConcurrentExecutions=1),
        lambda: lam.delete_function(FunctionName="orders"),
        lambda: create(lam, "orders"),
    ]
    for change in changes:
        with pytest.raises(lam.exceptions.ResourceConflictException) as caught:
            change()
        assert "shop" in error_of(caught)[1]
    assert lam.get_function(FunctionName="orders")["Configuration"]["Timeout"] == 3


@pytest.mark.parametrize(
    ("settings", "member"),
    [
        ({"Runtime": "nodejs20.x"}, "Runtime"),
        ({"MemorySize": 20000}, "MemorySize"),
        ({"Timeout": 901}, "Timeout"),
        (
            {"Handler": "missing.handler"},
            "Handler: module 'missing' not found: no missing.py in the deployment package",
        ),
        ({"Code": {"ZipFile": b"not a zip"}}, "unzip"),
        ({"PackageType": "Image"}, "Zip"),
    ],
)
def test_invalid_settings_are_refused_and_leave_nothing(
    lam: Any, platform: PlatformProcess, stage: str, settings: dict[str, Any], member: str
) -> None:
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
        create(lam, "invalid", **settings)
    assert member in error_of(caught)[1]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="invalid")
    assert not (platform.data_dir / "functions" / stage / "invalid").exists()


def test_an_invalid_update_keeps_the_function_as_it_was(lam: Any) -> None:
    create(lam, "steady", MemorySize=256)
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
        lam.update_function_configuration(FunctionName="steady", MemorySize=20000)
    assert error_of(caught)[1].startswith("MemorySize: must be between 128 and 10240")
    assert lam.get_function_configuration(FunctionName="steady")["MemorySize"] == 256
    assert json.loads(invoke(lam, "steady")["Body"])["memory"] == 256


def test_aws_cli_creates_and_invokes(platform: PlatformProcess, tmp_path: Path) -> None:
    # Given the AWS CLI pointed at the platform (the default stage: it sends no stage header)
    package = tmp_path / "function.zip"
    package.write_bytes(zip_of({"app.py": APP}))
    name = f"cli-{next(_names)}"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }

    def aws(*args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "awscli", "--endpoint-url", platform.url, "lambda", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    try:
        # When it creates a function and invokes it with the log tail
        created = aws(
            "create-function",
            "--function-name",
            name,
            "--runtime",
            "python3.11",
            "--role",
            ROLE,
            "--handler",
            "app.handler",
            "--zip-file",
            f"fileb://{package}",
        )
        out = tmp_path / "out.json"
        invoked = aws(
            "invoke",
            "--function-name",
            name,
            "--payload",
            '{"from": "cli"}',
            "--log-type",
            "Tail",
            str(out),
        )

        # Then both answer as Lambda would
        assert created["State"] == "Active"
        assert created["CodeSha256"] == sha256_b64(package.read_bytes())
        assert invoked["StatusCode"] == 200
        assert "END RequestId: " in base64.b64decode(invoked["LogResult"]).decode()
        assert json.loads(out.read_text())["event"] == {"from": "cli"}
    finally:
        lambda_client(platform, None).delete_function(FunctionName=name)


@pytest.mark.parametrize("bad_stage", ["../../escape", "a/b", ".."])
def test_a_stage_that_is_no_directory_name_is_refused_before_any_file_is_written(
    platform: PlatformProcess, tmp_path: Path, bad_stage: str
) -> None:
    # Given a stage header that would lead out of the data directory as a path
    lam = lambda_client(platform, bad_stage)
    before = sorted(p.name for p in platform.data_dir.parent.iterdir())
    # When a function is created in it
    with pytest.raises(ClientError) as caught:
        create(lam, "escaper")
    # Then the call is refused, naming the stage, and nothing was written anywhere
    code, message = error_of(caught)
    assert code == "InvalidParameterValueException" and "X-Unkai-Stage" in message
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert sorted(p.name for p in platform.data_dir.parent.iterdir()) == before
    assert not list(platform.data_dir.rglob("escape*"))
    assert not (platform.data_dir / "functions" / "a").exists()
