"""Invocations through a real Supervisor: warm reuse, context, environment, logs, errors."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

import uvloop
from runtime_harness import (
    LogCollector,
    call,
    invocation,
    make_spec,
    run_supervised,
    write_handler,
)

from unkai.runtime.supervisor import Supervisor

COUNTER = """
import os
COUNT = 0
def handler(event, context):
    global COUNT
    COUNT += 1
    return {"count": COUNT, "pid": os.getpid(), "echo": event}
"""


def test_warm_instance_keeps_module_state(tmp_path: Path) -> None:
    # Given a handler with a module-level counter
    spec = make_spec(write_handler(tmp_path, COUNTER))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        # When it is invoked three times in a row
        results = [await call(pool, b'{"n": %d}' % i) for i in range(3)]
        # Then one process served all three, counting up, and only the first was cold
        payloads = [json.loads(r.payload or b"") for r in results]
        assert [p["count"] for p in payloads] == [1, 2, 3]
        assert len({p["pid"] for p in payloads}) == 1
        assert payloads[2]["echo"] == {"n": 2}
        assert results[0].init_duration_ms is not None
        assert results[1].init_duration_ms is None
        assert all(r.max_memory_used_mb > 0 and r.duration_ms >= 0 for r in results)

    run_supervised(body)


def test_warm_reuse_on_uvloop(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, COUNTER))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        first, second = await call(pool), await call(pool)
        assert json.loads(second.payload or b"")["count"] == 2
        assert first.ok

    run_supervised(body, loop_factory=uvloop.new_event_loop)


CONTEXT = """
import os, sys
def handler(event, context):
    return {
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "arn": context.invoked_function_arn,
        "memory": context.memory_limit_in_mb,
        "group": context.log_group_name,
        "stream": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "identity": context.identity,
        "client_context": context.client_context,
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "path0": sys.path[0],
    }
"""


def test_context_and_environment_follow_lambda(tmp_path: Path, monkeypatch: object) -> None:
    # Given a platform variable in this process and a function variable in the spec
    os.environ["UNKAI_TEST_SECRET"] = "platform-only"
    try:
        spec = make_spec(write_handler(tmp_path, CONTEXT), environment={"GREETING": "hi"})

        async def body(supervisor: Supervisor, _logs: LogCollector) -> dict[str, object]:
            result = await call(supervisor.pool_for(spec), timeout_s=5)
            assert result.ok, result.error
            return dict(json.loads(result.payload or b""))

        # When the handler reports its context and environment
        seen = run_supervised(body)
    finally:
        del os.environ["UNKAI_TEST_SECRET"]
    # Then the context carries Lambda's fields
    assert seen["function_name"] == "fn" and seen["function_version"] == "1"
    assert seen["arn"] == spec.function_arn
    assert seen["memory"] == "128"
    assert seen["group"] == "/aws/lambda/fn"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[1\][0-9a-f]{32}", str(seen["stream"]))
    assert 0 < int(str(seen["remaining_ms"])) <= 5000
    assert seen["identity"] is None and seen["client_context"] is None
    assert seen["cwd"] == str(tmp_path) and seen["path0"] == str(tmp_path)
    # And the environment is exactly Lambda's plus the function's, nothing of the platform's
    env = seen["env"]
    assert isinstance(env, dict)
    assert env["GREETING"] == "hi"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "fn"
    assert env["_HANDLER"] == "handler.handler"
    assert env["LAMBDA_TASK_ROOT"] == str(tmp_path)
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["TZ"] == ":UTC"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == seen["stream"]
    assert "UNKAI_TEST_SECRET" not in env
    assert "PYTHONPATH" not in env and "AWS_LAMBDA_RUNTIME_API" not in env


LOGGING = """
import logging
print("init line")
def handler(event, context):
    print("hello from print")
    logging.warning("careful %s", 42)
    return None
"""


def test_print_and_logging_are_captured_with_lambda_format(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, LOGGING))

    async def body(supervisor: Supervisor, logs: LogCollector) -> None:
        result = await call(supervisor.pool_for(spec))
        # Then None became null and the log has print output and the logging line
        assert result.payload == b"null"
        assert "hello from print\n" in result.log_text
        line = re.search(
            r"\[WARNING\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t(\S+)\tcareful 42\n",
            result.log_text,
        )
        assert line is not None and line.group(1) == result.request_id
        # And init output went to the log sink, not into the invocation's log
        assert "init line" in logs.text

    run_supervised(body)


SLOW_LOGGER = """
import time
def handler(event, context):
    print("first")
    time.sleep(0.3)
    print("second")
    time.sleep(1.0)
    return "done"
"""


def test_slow_handler_streams_log_frames_before_it_returns(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, SLOW_LOGGER))

    async def body(supervisor: Supervisor, logs: LogCollector) -> None:
        task = asyncio.create_task(call(supervisor.pool_for(spec)))
        # When the handler is still sleeping after its second print
        await asyncio.wait_for(logs.arrived.wait(), 5)
        # Then the log sink already saw the streamed output
        assert not task.done()
        assert "first" in logs.text
        result = await task
        assert result.payload == b'"done"'

    run_supervised(body)


def test_non_serializable_result_is_a_marshal_error(tmp_path: Path) -> None:
    code = "def handler(event, context):\n    return {1, 2}\n"
    spec = make_spec(write_handler(tmp_path, code))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        result = await call(supervisor.pool_for(spec))
        assert result.error is not None
        assert result.error.error_type == "Runtime.MarshalError"
        assert "Unable to marshal response" in result.error.error_message
        assert "set is not JSON serializable" in result.error.error_message

    run_supervised(body)


def test_handler_exception_carries_lambda_stack_trace(tmp_path: Path) -> None:
    code = "def handler(event, context):\n    raise ValueError('bad input')\n"
    spec = make_spec(write_handler(tmp_path, code))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        result = await call(pool)
        again = await call(pool)
        assert result.error is not None
        assert (result.error.error_type, result.error.error_message) == ("ValueError", "bad input")
        assert result.error.stack_trace == [
            f'  File "{tmp_path / "handler.py"}", line 2, in handler\n'
            "    raise ValueError('bad input')\n"
        ]
        # And a handler error does not cost the warm instance
        assert again.init_duration_ms is None

    run_supervised(body)


def test_init_failures_follow_lambda(tmp_path: Path) -> None:
    cases = {
        "import_error": (
            "import not_a_module_xyz\ndef handler(e, c):\n    return 1\n",
            "handler.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'handler': No module named 'not_a_module_xyz'",
        ),
        "missing": (
            "def other(e, c):\n    return 1\n",
            "handler.handler",
            "Runtime.HandlerNotFound",
            "Handler 'handler' missing on module 'handler'",
        ),
        "init_exception": (
            "raise RuntimeError('no config')\n",
            "handler.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'handler': no config",
        ),
    }

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        for name, (code, handler, error_type, message) in cases.items():
            spec = make_spec(write_handler(tmp_path / name, code), handler=handler)
            pool = supervisor.pool_for(spec)
            # When a function whose init fails is invoked twice
            first, second = await call(pool), await call(pool)
            # Then each call reports the init error from a fresh instance
            for result in (first, second):
                assert result.error is not None, name
                assert result.error.error_type == error_type, name
                assert result.error.error_message == message, name
                assert result.init_duration_ms is not None, name

    run_supervised(body)


def test_init_error_that_arrives_before_the_invoke_is_kept(tmp_path: Path) -> None:
    # Given an instance whose init fails, started and left alone until its process is gone
    spec = make_spec(write_handler(tmp_path, "raise RuntimeError('no config')\n"))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        instance = await supervisor.start_instance(pool)
        await asyncio.wait_for(asyncio.shield(instance.exit_future), 5.0)
        # When it is invoked only then
        result = await instance.invoke(invocation())
        # Then the caller still gets the init error, not an exit error
        assert result.error is not None
        assert result.error.error_type == "Runtime.ImportModuleError"
        assert result.error.error_message == "Unable to import module 'handler': no config"
        assert result.init_duration_ms is not None

    run_supervised(body)


SLOW_INIT = """
import time
time.sleep(0.6)
def handler(event, context):
    remaining = context.get_remaining_time_in_millis()
    time.sleep(event.get("sleep_s", 0))
    return remaining
"""


def test_the_timeout_counts_from_the_end_of_init(tmp_path: Path) -> None:
    # Given a function with a 1 s timeout whose init takes 0.6 s
    spec = make_spec(write_handler(tmp_path, SLOW_INIT), timeout_s=1)

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        # When its first invocation runs 0.7 s (1.3 s after the cold start began)
        result = await call(pool, b'{"sleep_s": 0.7}', timeout_s=1)
        # Then it had its whole second, as on Lambda, where init is not part of the timeout
        assert result.ok, result.error
        assert result.init_duration_ms is not None and result.init_duration_ms >= 600
        assert result.payload is not None
        assert int(result.payload) > 900

    run_supervised(body)
