"""The AWS CLI, both v1 (pip `awscli`, run as `python -m awscli`) and v2 (AWS's binary, see
tests/tools/aws_cli_v2.py), unchanged but for `--endpoint-url`, against the platform: SQS, STS
and Lambda listings, and a signature failure shown the way the CLI shows AWS's own."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.platform_process import PlatformProcess
from tests.tools import aws_cli_v2

_names = itertools.count(1)
KEY, SECRET, ACCOUNT = "AKIACLITESTS", "cli-secret", "210987654321"


@pytest.fixture(params=["v1", "v2"])
def cli(request: pytest.FixtureRequest) -> list[str]:
    """The command that starts each AWS CLI major version."""
    if request.param == "v1":
        return [sys.executable, "-m", "awscli"]
    v2 = aws_cli_v2.cli_path(Path(sys.prefix))
    assert v2.exists(), f"AWS CLI v2 is missing: run {sys.executable} tests/tools/aws_cli_v2.py"
    return [str(v2)]


def run(
    cli: list[str], url: str, home: Path, *args: str, secret: str = SECRET
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_PAGER": "",
    }
    return subprocess.run(
        [*cli, "--endpoint-url", url, "--output", "json", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def aws(cli: list[str], url: str, home: Path, *args: str) -> Any:
    done = run(cli, url, home, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    proc = PlatformProcess(
        tmp_path_factory.mktemp("cli-secured"),
        extra_args=("--aws-auth", "on", "--aws-credentials", f"{KEY}:{SECRET}:{ACCOUNT}"),
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def test_sqs_through_the_cli(cli: list[str], platform: PlatformProcess, tmp_path: Path) -> None:
    name = f"cli-q-{next(_names)}"
    url = aws(cli, platform.url, tmp_path, "sqs", "create-queue", "--queue-name", name)["QueueUrl"]
    assert url.endswith(f"/{name}")
    sent = aws(
        cli,
        platform.url,
        tmp_path,
        "sqs",
        "send-message",
        "--queue-url",
        url,
        "--message-body",
        "hello cli",
        "--message-attributes",
        '{"kind": {"DataType": "String", "StringValue": "cli"}}',
    )
    assert sent["MessageId"] and sent["MD5OfMessageAttributes"]
    attributes = aws(
        cli,
        platform.url,
        tmp_path,
        "sqs",
        "get-queue-attributes",
        "--queue-url",
        url,
        "--attribute-names",
        "ApproximateNumberOfMessages",
    )
    assert attributes["Attributes"] == {"ApproximateNumberOfMessages": "1"}
    got = aws(
        cli,
        platform.url,
        tmp_path,
        "sqs",
        "receive-message",
        "--queue-url",
        url,
        "--message-attribute-names",
        "All",
        "--wait-time-seconds",
        "1",
    )["Messages"]
    assert [m["Body"] for m in got] == ["hello cli"]
    assert got[0]["MessageAttributes"]["kind"]["StringValue"] == "cli"
    aws(
        cli,
        platform.url,
        tmp_path,
        "sqs",
        "delete-message",
        "--queue-url",
        url,
        "--receipt-handle",
        got[0]["ReceiptHandle"],
    )
    listed = aws(cli, platform.url, tmp_path, "sqs", "list-queues", "--queue-name-prefix", name)
    assert listed["QueueUrls"] == [url]
    aws(cli, platform.url, tmp_path, "sqs", "delete-queue", "--queue-url", url)
    missing = run(cli, platform.url, tmp_path, "sqs", "get-queue-url", "--queue-name", name)
    assert missing.returncode != 0
    assert "AWS.SimpleQueueService.NonExistentQueue" in missing.stderr


def test_sts_and_lambda_listings_with_signatures_checked(
    cli: list[str], secured: PlatformProcess, tmp_path: Path
) -> None:
    identity = aws(cli, secured.url, tmp_path, "sts", "get-caller-identity")
    assert identity["Account"] == ACCOUNT
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{KEY}"
    assert aws(cli, secured.url, tmp_path, "lambda", "list-functions")["Functions"] == []


def test_a_wrong_secret_fails_like_aws(
    cli: list[str], secured: PlatformProcess, tmp_path: Path
) -> None:
    for service, command, code in (
        ("sts", "get-caller-identity", "SignatureDoesNotMatch"),
        ("sqs", "list-queues", "SignatureDoesNotMatch"),
        ("lambda", "list-functions", "InvalidSignatureException"),
    ):
        done = run(cli, secured.url, tmp_path, service, command, secret="wrong")
        assert done.returncode != 0
        assert f"({code})" in done.stderr, done.stderr
