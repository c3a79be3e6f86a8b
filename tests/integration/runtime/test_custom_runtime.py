"""`provided` functions: a real `bootstrap` process talking to the Runtime API of its instance.

The runtimes are a bash + curl script (custom_bootstraps.SHELL_BOOTSTRAP) and the official
`awslambdaric` running a Python handler.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import TypeVar

import pytest
from custom_bootstraps import (
    RIC_HANDLER,
    SHELL_BOOTSTRAP,
    have_curl,
    ric_bootstrap,
    write_bootstrap,
)
from runtime_harness import (
    LogCollector,
    call,
    make_spec,
    process_gone,
    run_supervised,
    wait_until,
)

from unkai.runtime.supervisor import Supervisor

T = TypeVar("T")


def needs_curl(test: T) -> T:
    """The shell bootstrap calls the Runtime API with curl (.ci/run installs it)."""
    assert have_curl(), "the shell bootstrap needs curl on PATH: apt-get install -y curl"
    return test


def _event(action: str) -> bytes:
    return json.dumps({"action": action}, separators=(",", ":")).encode()


@needs_curl
def test_shell_bootstrap_gets_events_with_the_runtime_api_headers(tmp_path: Path) -> None:
    # Given a provided.al2023 function whose bootstrap is a bash script
    spec = make_spec(write_bootstrap(tmp_path, SHELL_BOOTSTRAP), runtime="provided.al2023")

    async def body(supervisor: Supervisor, logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        # When it is invoked twice
        started_ms = time.time() * 1000
        first = await call(pool, b'{"n":1}', timeout_s=10)
        second = await call(pool, b'{"n":2}', timeout_s=10)
        # Then the script got each event with Lambda's headers and environment
        assert first.error is None, first.error
        seen = json.loads(first.payload or b"")
        assert seen["event"] == {"n": 1}
        assert seen["request_id"] == first.request_id
        assert started_ms + 9000 < seen["deadline_ms"] < started_ms + 11000
        assert seen["arn"] == spec.function_arn
        assert seen["trace"].startswith("Root=1-")
        assert seen["handler"] == spec.handler
        assert seen["task_root"] == str(spec.task_root)
        # And the instance is reused warm; only the cold call reports init
        again = json.loads(second.payload or b"")
        assert again["event"] == {"n": 2} and again["pid"] == seen["pid"]
        assert first.init_duration_ms is not None and second.init_duration_ms is None
        # And its output is the invocation's log, init output the instance's
        assert f"processing {first.request_id}" in first.log_text
        assert "init: handler=handler.handler" in logs.text

    run_supervised(body)


@needs_curl
def test_shell_bootstrap_error_exit_and_timeout(tmp_path: Path) -> None:
    spec = make_spec(write_bootstrap(tmp_path, SHELL_BOOTSTRAP), runtime="provided", timeout_s=1)

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        pid = json.loads((await call(pool, b"{}", 1)).payload or b"")["pid"]
        # When the runtime posts /error, the caller gets its document; the instance stays
        failed = await call(pool, _event("fail"), 1)
        assert failed.error is not None
        assert failed.error.to_document() == {
            "errorMessage": "it failed",
            "errorType": "Custom.Failure",
            "stackTrace": ["bootstrap:1"],
        }
        assert json.loads((await call(pool, b"{}", 1)).payload or b"")["pid"] == pid
        # When the runtime exits mid-invocation: Runtime.ExitError, and a new process next
        exited = await call(pool, _event("exit"), 1)
        assert exited.error is not None and exited.error.error_type == "Runtime.ExitError"
        assert exited.error.error_message.endswith("exit status 3")
        pid = json.loads((await call(pool, b"{}", 1)).payload or b"")["pid"]
        # When it runs past its timeout: killed (process group and all) like a Python instance
        slow = await call(pool, _event("sleep"), 1)
        assert slow.error is not None and slow.error.error_type == "Sandbox.Timedout"
        assert "Task timed out after 1.00 seconds" in slow.error.error_message
        assert await wait_until(lambda: process_gone(pid))
        assert json.loads((await call(pool, b"{}", 1)).payload or b"")["pid"] != pid

    run_supervised(body)


@needs_curl
def test_init_error_fails_the_invocation_with_its_document(tmp_path: Path) -> None:
    root = write_bootstrap(tmp_path, SHELL_BOOTSTRAP)
    (root / "fail_init").write_text("")
    spec = make_spec(root, runtime="provided.al2")

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        result = await call(supervisor.pool_for(spec))
        assert result.error is not None
        assert result.error.error_type == "Runtime.ConfigError"
        assert result.error.error_message == "no configuration"
        assert result.init_duration_ms is not None

    run_supervised(body)


def test_missing_bootstrap_fails_the_start(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, runtime="provided")

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        result = call(supervisor.pool_for(spec))
        with pytest.raises(Exception, match="bootstrap"):
            await result

    run_supervised(body)


def needs_ric(test: T) -> T:
    """AWS's runtime interface client (a dev dependency)."""
    assert importlib.util.find_spec("awslambdaric") is not None, "pip install awslambdaric"
    return test


@needs_ric
def test_awslambdaric_runs_a_python_handler(tmp_path: Path) -> None:
    # Given the official runtime interface client as the bootstrap of a Python handler
    root = write_bootstrap(tmp_path, ric_bootstrap())
    (root / "app.py").write_text(RIC_HANDLER)
    spec = make_spec(root, runtime="provided.al2023", handler="app.handler")

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        # When it is invoked
        result = await call(pool, b'{"x":1}', timeout_s=10)
        # Then the handler's result comes back, with the context awslambdaric built
        assert result.error is None, result.error
        got = json.loads(result.payload or b"")
        assert got["got"] == {"x": 1}
        assert got["request_id"] == result.request_id
        assert got["arn"] == spec.function_arn
        assert 8000 < got["remaining_ms"] <= 10000
        assert f"handling {result.request_id}" in result.log_text
        # And a handler exception is Lambda's error document
        failed = await call(pool, b'{"fail":"x"}', timeout_s=10)
        assert failed.error is not None
        assert failed.error.error_type == "ValueError"
        assert failed.error.error_message == "bad input: x"
        assert any("raise ValueError" in line for line in failed.error.stack_trace)
        # And the same process serves on
        after = json.loads((await call(pool, b"{}", timeout_s=10)).payload or b"")
        assert after["pid"] == got["pid"]

    run_supervised(body)


#: A runtime that asks for the next event again before answering the one it holds, and once
#: opens two waits side by side; it reports what the API answered in its response.
IMPATIENT_BOOTSTRAP = f"""#!{sys.executable}
import json, os, threading, urllib.error, urllib.request

api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.headers, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers, json.loads(refused.read())


def post(request_id, doc):
    data = json.dumps(doc).encode()
    urllib.request.urlopen(urllib.request.Request(api + request_id + "/response", data=data))


while True:
    status, headers, event = get(api + "next")
    request_id = headers["Lambda-Runtime-Aws-Request-Id"]
    again = get(api + "next")  # while this event is out
    post(request_id, {{"event": event, "request_id": request_id, "again": [again[0], again[2]]}})
"""


def test_a_second_next_while_an_event_is_out_is_refused(tmp_path: Path) -> None:
    spec = make_spec(write_bootstrap(tmp_path, IMPATIENT_BOOTSTRAP), runtime="provided")

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        # When a runtime asks for the next event before answering the one it holds
        first = await call(pool, b'{"n":1}', timeout_s=10)
        second = await call(pool, b'{"n":2}', timeout_s=10)
        # Then that ask is refused, so the event is not handed out (nor run) twice
        for result, n in ((first, 1), (second, 2)):
            assert result.error is None, result.error
            seen = json.loads(result.payload or b"")
            assert seen["event"] == {"n": n} and seen["request_id"] == result.request_id
            status, refusal = seen["again"]
            assert status == 403 and refusal["errorType"] == "InvalidStateTransition"
            assert result.request_id in refusal["errorMessage"]
        assert first.request_id != second.request_id

    run_supervised(body)
