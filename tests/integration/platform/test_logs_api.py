"""boto3's CloudWatch Logs client and the AWS CLI, unchanged but for `endpoint_url`, reading the
function logs: groups named per stage, streams, events both ways with tokens, filter patterns,
pagination, the errors boto3 users catch, and the calls `aws logs tail` makes."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.integration.platform_process import PlatformProcess, wait_until, write_app
from tests.tools import aws_cli_v2

STAGE = "cwlogs"
GROUP = f"/unkai/{STAGE}/talker"
REGION, ACCOUNT = "us-east-1", "000000000000"

HANDLERS = """
import os

def talk(event, context):
    for line in event.get("lines", []):
        print(line)
    return {"group": os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]}
"""

MANIFEST = """
service: {service}
functions:
  {prefix}talker:
    handler: app.talk
  {prefix}quiet:
    handler: app.talk
  {prefix}other:
    handler: app.talk
"""


@dataclass(frozen=True)
class Logged:
    """The talker's logs: three invocations in one stream, then one in a second stream."""

    first_stream: str
    second_stream: str
    started_ms: int


def client(platform: PlatformProcess) -> Any:
    return boto3.client(
        "logs",
        endpoint_url=platform.url,
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def invoke(platform: PlatformProcess, function: str, lines: list[str], stage: str = STAGE) -> None:
    with platform.client() as http:
        answer = http.post(
            f"/2015-03-31/functions/{function}/invocations",
            json={"lines": lines},
            headers={"x-unkai-stage": stage},
        )
    assert answer.status_code == 200, answer.text


def all_events(logs: Any, **kwargs: Any) -> list[dict[str, Any]]:
    pages = logs.get_paginator("filter_log_events").paginate(**kwargs)
    return [event for page in pages for event in page["events"]]


def messages(events: list[dict[str, Any]]) -> list[str]:
    return [e["message"] for e in events]


def reports(logs: Any, group: str) -> int:
    return sum(m.startswith("REPORT ") for m in messages(all_events(logs, logGroupName=group)))


@pytest.fixture(scope="module")
def logs(platform: PlatformProcess) -> Any:
    return client(platform)


@pytest.fixture(scope="module")
def logged(
    platform: PlatformProcess, logs: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Logged]:
    started_ms = int(time.time() * 1000)
    root = write_app(
        tmp_path_factory.mktemp("logs-app"),
        MANIFEST.format(service="cw-logs", prefix=""),
        {"app.py": HANDLERS},
    )
    platform.cli("deploy", str(root), "--stage", STAGE, check=True)
    for n in range(3):
        invoke(platform, "talker", [f"hello {n}", f"second line of {n}"])
    assert wait_until(lambda: reports(logs, GROUP) == 3)
    [first] = logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    with platform.client() as http:  # a new instance writes a new stream
        drained = http.post("/_unkai/api/functions/talker/drain", params={"stage": STAGE})
    assert drained.status_code == 200, drained.text
    invoke(platform, "talker", ["after the drain"])
    assert wait_until(lambda: reports(logs, GROUP) == 4)
    streams = logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    [second] = [s["logStreamName"] for s in streams if s["logStreamName"] != first["logStreamName"]]
    yield Logged(first["logStreamName"], second, started_ms)


def test_groups_are_named_per_stage_listed_in_pages_and_filtered(logs: Any, logged: Logged) -> None:
    # When the stage's groups are listed two to a page
    pages = list(
        logs.get_paginator("describe_log_groups").paginate(
            logGroupNamePrefix=f"/unkai/{STAGE}/", PaginationConfig={"PageSize": 2}
        )
    )
    # Then every function of the stage has its group, ASCII-sorted, over two pages
    assert [len(page["logGroups"]) for page in pages] == [2, 1]
    groups = [group for page in pages for group in page["logGroups"]]
    assert [g["logGroupName"] for g in groups] == [
        f"/unkai/{STAGE}/other",
        f"/unkai/{STAGE}/quiet",
        GROUP,
    ]
    talker = groups[2]
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}"
    assert talker["arn"] == f"{arn}:*" and talker["logGroupArn"] == arn
    assert talker["retentionInDays"] == 7  # the platform's 168 hours
    assert logged.started_ms - 1000 <= talker["creationTime"] <= int(time.time() * 1000)

    # And a substring search answers the brief shape; identifiers may be ARNs
    found = logs.describe_log_groups(logGroupNamePattern=f"{STAGE}/talk")["logGroups"]
    assert found == [
        {"logGroupName": GROUP, "creationTime": talker["creationTime"], "arn": arn + ":*"}
    ]
    by_arn = logs.describe_log_groups(logGroupIdentifiers=[arn, "/unkai/nowhere/x"])
    assert [g["logGroupName"] for g in by_arn["logGroups"]] == [GROUP]


def test_the_default_stage_group_is_the_name_the_function_sees(
    platform: PlatformProcess, logs: Any, tmp_path: Path
) -> None:
    # Given a function of the default stage that prints the group name it was given
    root = write_app(
        tmp_path / "default",
        MANIFEST.format(service="cw-logs-default", prefix="cwdefault"),
        {"app.py": HANDLERS},
    )
    platform.cli("deploy", str(root), check=True)
    with platform.client() as http:
        answer = http.post("/2015-03-31/functions/cwdefaulttalker/invocations", json={})
    group = answer.json()["group"]
    assert group == "/aws/lambda/cwdefaulttalker"
    invoke(platform, "cwdefaulttalker", ["in the default stage"], stage="dev")
    # Then boto3 reads that very group, which DescribeLogGroups lists under that name
    assert wait_until(lambda: reports(logs, group) == 2)
    listed = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/cwdefault")["logGroups"]
    assert [g["logGroupName"] for g in listed] == [
        "/aws/lambda/cwdefaultother",
        "/aws/lambda/cwdefaultquiet",
        group,
    ]
    # And /unkai/<default stage>/<function> is read as the same group
    events = all_events(logs, logGroupName=group)
    assert all_events(logs, logGroupName="/unkai/dev/cwdefaulttalker") == events
    assert "in the default stage\n" in messages(events)


def test_streams_are_described_ordered_and_paged(logs: Any, logged: Logged) -> None:
    # When the streams are listed by name, one to a page
    pages = list(
        logs.get_paginator("describe_log_streams").paginate(
            logGroupName=GROUP, PaginationConfig={"PageSize": 1}
        )
    )
    # Then both streams come, sorted by name, with Lambda's stream name shape and times
    streams = [s for page in pages for s in page["logStreams"]]
    names = [s["logStreamName"] for s in streams]
    assert len(pages) == 2 and names == sorted([logged.first_stream, logged.second_stream])
    today = time.strftime("%Y/%m/%d/", time.gmtime())
    assert all(name.startswith(today + "[") for name in names)
    for stream in streams:
        assert stream["firstEventTimestamp"] <= stream["lastEventTimestamp"]
        assert stream["creationTime"] == stream["firstEventTimestamp"]
        assert stream["arn"].endswith(f":log-group:{GROUP}:log-stream:{stream['logStreamName']}")
    # And ordering by last event time, newest first, puts the stream written last first
    newest = logs.describe_log_streams(
        logGroupName=GROUP, orderBy="LastEventTime", descending=True
    )["logStreams"]
    assert [s["logStreamName"] for s in newest] == [logged.second_stream, logged.first_stream]
    prefixed = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=today)
    assert len(prefixed["logStreams"]) == 2
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.describe_log_streams(
            logGroupName=GROUP, orderBy="LastEventTime", logStreamNamePrefix=today
        )


def first_stream_lines() -> list[str]:
    """What three invocations wrote: START, two lines, END and REPORT each."""
    return [
        line
        for n in range(3)
        for line in ("START", f"hello {n}\n", f"second line of {n}\n", "END", "REPORT")
    ]


def shape(message: str) -> str:
    """A platform line's first word, other lines whole."""
    word = message.split(" ", 1)[0]
    return word if word in ("START", "END", "REPORT") else message


def test_get_log_events_pages_forward_and_backward_with_tokens(logs: Any, logged: Logged) -> None:
    expected = first_stream_lines()
    # When the stream is read from its head, four events at a time, until the token repeats
    forward: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"logGroupName": GROUP, "logStreamName": logged.first_stream}
    page = logs.get_log_events(**kwargs, startFromHead=True, limit=4)
    while page["events"]:
        forward += page["events"]
        token = page["nextForwardToken"]
        page = logs.get_log_events(**kwargs, nextToken=token, limit=4)
    # Then every event comes once, in order, and the end answers the token it was given
    assert [shape(e["message"]) for e in forward] == expected
    assert page["nextForwardToken"] == token
    assert all(e["ingestionTime"] == e["timestamp"] for e in forward)

    # When it is read from its tail (the default), then backward
    backward: list[dict[str, Any]] = []
    page = logs.get_log_events(**kwargs, limit=4)
    assert [shape(e["message"]) for e in page["events"]] == expected[-4:]
    while page["events"]:
        backward = page["events"] + backward
        token = page["nextBackwardToken"]
        page = logs.get_log_events(**kwargs, nextToken=token, limit=4)
    # Then the same events come back, and the beginning answers the token it was given
    assert backward == forward
    assert page["nextBackwardToken"] == token

    # And a time range narrows the events (endTime is exclusive here)
    start_ms = forward[0]["timestamp"]
    ranged = logs.get_log_events(**kwargs, startFromHead=True, endTime=start_ms)
    assert ranged["events"] == []
    ranged = logs.get_log_events(**kwargs, startFromHead=True, endTime=start_ms + 1)
    assert [e["timestamp"] for e in ranged["events"]] == [start_ms] * len(ranged["events"])


def test_filter_log_events_with_patterns_streams_and_pages(logs: Any, logged: Logged) -> None:
    # Plain terms match lines (case-sensitively), quoted phrases exactly, all of them together
    hello = all_events(logs, logGroupName=GROUP, filterPattern="hello")
    assert messages(hello) == ["hello 0\n", "hello 1\n", "hello 2\n"]
    assert all_events(logs, logGroupName=GROUP, filterPattern="HELLO") == []
    assert messages(all_events(logs, logGroupName=GROUP, filterPattern='"1 second"')) == []
    assert messages(all_events(logs, logGroupName=GROUP, filterPattern='"second line of 1"')) == [
        "second line of 1\n"
    ]
    assert messages(all_events(logs, logGroupName=GROUP, filterPattern="second 2")) == [
        "second line of 2\n"
    ]
    # ?either terms and -excluded terms
    either = all_events(logs, logGroupName=GROUP, filterPattern="?drain ?hello")
    assert messages(either) == ["hello 0\n", "hello 1\n", "hello 2\n", "after the drain\n"]
    assert messages(all_events(logs, logGroupName=GROUP, filterPattern="of -0 -1")) == [
        "second line of 2\n"
    ]

    # Pages of two carry every REPORT once, with distinct event ids and the streams named
    pages = list(
        logs.get_paginator("filter_log_events").paginate(
            logGroupName=GROUP, filterPattern="REPORT", PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(p["events"]) for p in pages] == [2, 2]
    events = [e for p in pages for e in p["events"]]
    assert len({e["eventId"] for e in events}) == 4
    assert [e["logStreamName"] for e in events] == [logged.first_stream] * 3 + [
        logged.second_stream
    ]
    assert all(e["message"].startswith("REPORT RequestId: ") for e in events)

    # Streams by name or prefix, and newest first with startFromHead=false
    only_second = all_events(logs, logGroupName=GROUP, logStreamNames=[logged.second_stream])
    assert [shape(m) for m in messages(only_second)] == [
        "START",
        "after the drain\n",
        "END",
        "REPORT",
    ]
    by_prefix = all_events(logs, logGroupName=GROUP, logStreamNamePrefix=logged.first_stream)
    assert [shape(m) for m in messages(by_prefix)] == first_stream_lines()
    newest_first = logs.filter_log_events(logGroupName=GROUP, startFromHead=False, limit=3)
    assert [shape(m) for m in messages(newest_first["events"])] == [
        "REPORT",
        "END",
        "after the drain\n",
    ]
    rest = all_events(logs, logGroupName=GROUP, nextToken=newest_first["nextToken"])
    assert len(rest) == 3 * 5 + 4 - 3 and rest[-1]["message"].startswith("START")


def test_unknown_groups_streams_and_unsupported_patterns_are_refused(
    logs: Any, logged: Logged
) -> None:
    for call, kwargs in [
        (logs.filter_log_events, {"logGroupName": "/aws/lambda/no-such-function"}),
        (logs.describe_log_streams, {"logGroupName": f"/unkai/{STAGE}/missing"}),
        (logs.get_log_events, {"logGroupName": "/elsewhere", "logStreamName": "s"}),
    ]:
        with pytest.raises(logs.exceptions.ResourceNotFoundException) as caught:
            call(**kwargs)
        assert "The specified log group does not exist" in str(caught.value)
    with pytest.raises(logs.exceptions.ResourceNotFoundException) as caught:
        logs.get_log_events(logGroupName=GROUP, logStreamName="2020/01/01/[$LATEST]nothing")
    assert "log stream does not exist" in str(caught.value)
    with pytest.raises(logs.exceptions.InvalidParameterException) as caught:
        logs.filter_log_events(logGroupName=GROUP, filterPattern='{ $.level = "ERROR" }')
    assert "JSON" in str(caught.value)
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=GROUP, nextToken="not-a-token")
    # A write unkai does not serve answers 501, naming it
    with pytest.raises(ClientError) as refused:
        logs.create_log_group(logGroupName="/mine")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert "CreateLogGroup" in refused.value.response["Error"]["Message"]


def test_the_calls_aws_logs_tail_makes(logs: Any, logged: Logged) -> None:
    # `aws logs tail GROUP --since 10m` (AWS CLI v2, awscli/customizations/logs/tail.py) pages
    # filter_log_events with these arguments and prints each event
    since_ms = int(time.time() * 1000) - 10 * 60 * 1000
    kwargs: dict[str, Any] = {"logGroupName": GROUP, "interleaved": True, "startTime": since_ms}
    events = all_events(logs, **kwargs)
    assert [shape(m) for m in messages(events)][:5] == first_stream_lines()[:5]
    assert len(events) == 3 * 5 + 4
    # With --follow it polls again from the newest timestamp and drops the event ids it saw
    newest_ms = max(e["timestamp"] for e in events)
    seen = {e["eventId"] for e in events if e["timestamp"] == newest_ms}
    again = logs.filter_log_events(**{**kwargs, "startTime": newest_ms})
    assert {e["eventId"] for e in again["events"]} == seen
    assert "nextToken" not in again


def test_the_aws_cli_filters_and_reads_events(platform: PlatformProcess, logged: Logged) -> None:
    # Given the AWS CLI (v1, whose `logs` commands are the API's; v2 adds `tail` on top)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    common = ["--endpoint-url", platform.url, "--region", REGION, "--output", "json"]

    def aws(*args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "awscli", "logs", *args, *common],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    # When it filters the group as `aws logs tail --filter-pattern hello` would
    since_ms = str(logged.started_ms - 1000)
    found = aws(
        "filter-log-events",
        "--log-group-name",
        GROUP,
        "--start-time",
        since_ms,
        "--interleaved",
        "--filter-pattern",
        "hello",
    )
    # Then it prints the function's lines
    assert messages(found["events"]) == ["hello 0\n", "hello 1\n", "hello 2\n"]
    # And it lists the groups and reads a stream
    groups = aws("describe-log-groups", "--log-group-name-prefix", GROUP)
    assert [g["logGroupName"] for g in groups["logGroups"]] == [GROUP]
    read = aws(
        "get-log-events",
        "--log-group-name",
        GROUP,
        "--log-stream-name",
        logged.second_stream,
        "--start-from-head",
    )
    assert "after the drain\n" in messages(read["events"])


def aws_v2(platform: PlatformProcess, *args: str) -> list[str]:
    """The real AWS CLI v2 (tests/tools/aws_cli_v2.py puts it in the venv) run as `aws`."""
    cli = aws_cli_v2.cli_path(Path(sys.prefix))
    assert cli.exists(), f"AWS CLI v2 is missing: run {sys.executable} tests/tools/aws_cli_v2.py"
    return [str(cli), "--endpoint-url", platform.url, "--region", REGION, *args]


AWS_ENV = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_PAGER": ""}


def tail(platform: PlatformProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        aws_v2(platform, "logs", "tail", *args),
        capture_output=True,
        text=True,
        env=AWS_ENV,
        timeout=120,
    )


def test_aws_logs_tail_prints_filters_and_narrows_by_stream(
    platform: PlatformProcess, logged: Logged
) -> None:
    # When `aws logs tail` (AWS CLI v2, unchanged) prints the group's last hour
    done = tail(platform, GROUP, "--since", "1h", "--format", "short")
    # Then every event comes once, in order, each line "<time> <message>"
    assert done.returncode == 0, done.stderr
    printed = [line.split(" ", 1)[1] for line in done.stdout.splitlines()]
    expected = [*first_stream_lines(), "START", "after the drain\n", "END", "REPORT"]
    assert [shape(m) for m in printed] == [m.rstrip("\n") for m in expected]
    assert sum(m.startswith("REPORT RequestId: ") for m in printed) == 4

    # When it filters by pattern, in the detailed format that names the stream
    done = tail(platform, GROUP, "--since", "1h", "--filter-pattern", "hello")
    assert done.returncode == 0, done.stderr
    # Then only the matching lines come, each naming its stream
    assert [line.split(" ", 2)[2] for line in done.stdout.splitlines()] == [
        "hello 0",
        "hello 1",
        "hello 2",
    ]
    assert all(line.split(" ")[1] == logged.first_stream for line in done.stdout.splitlines())

    # And a stream prefix narrows to the second instance's stream
    done = tail(
        platform,
        GROUP,
        "--since",
        "1h",
        "--format",
        "short",
        "--log-stream-name-prefix",
        logged.second_stream,
    )
    assert done.returncode == 0, done.stderr
    assert "after the drain" in done.stdout and "hello 0" not in done.stdout

    # And an unknown group fails the command with CloudWatch Logs' error
    done = tail(platform, f"/unkai/{STAGE}/missing", "--since", "1h")
    assert done.returncode == 254
    assert "ResourceNotFoundException" in done.stderr and "FilterLogEvents" in done.stderr


def test_aws_logs_tail_follow_prints_new_invocations(
    platform: PlatformProcess, logged: Logged
) -> None:
    # Given `aws logs tail --follow` on a function's group, started before it runs
    group = f"/unkai/{STAGE}/quiet"
    with subprocess.Popen(
        aws_v2(platform, "logs", "tail", group, "--follow", "--since", "1m", "--format", "short"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=AWS_ENV,
    ) as follower:
        printed: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(
            target=lambda: [printed.put(line) for line in follower.stdout or ()], daemon=True
        )
        reader.start()
        try:
            # When the function is invoked, and again once its first lines were printed
            seen: list[str] = []
            for n in range(2):
                invoke(platform, "quiet", [f"followed {n}"])
                # Then each invocation's lines appear while the command keeps running
                deadline = time.monotonic() + 30
                while not any(f"followed {n}" in line for line in seen):
                    assert time.monotonic() < deadline, (seen, follower.poll())
                    try:
                        seen.append(printed.get(timeout=1))
                    except queue.Empty:
                        continue
            assert follower.poll() is None
            deadline = time.monotonic() + 30
            while sum("REPORT RequestId: " in line for line in seen) < 2:
                assert time.monotonic() < deadline, seen
                with contextlib.suppress(queue.Empty):
                    seen.append(printed.get(timeout=1))
            # And each event is printed once, though every poll asks again from the newest time
            assert sum("followed 0" in line for line in seen) == 1
            assert sum("START RequestId: " in line for line in seen) == 2
        finally:
            follower.kill()
            follower.wait(timeout=10)
