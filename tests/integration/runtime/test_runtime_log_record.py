"""The log record a Python instance formats itself (START to REPORT, sent with its RESULT) is
the one the platform would write for the same result (observe/report.py): real instances,
their records compared with the platform's formatting of the same figures."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from runtime_harness import LogCollector, call, make_spec, run_supervised, write_handler

from unkai.invoke.models import InvocationResult
from unkai.observe.report import error_text, invocation_text, report_line
from unkai.runtime.supervisor import Supervisor

HANDLER = """
import json, time
def handler(event, context):
    if event.get("stream"):
        print("streamed")
        time.sleep(0.5)  # past LOG_STREAM_INTERVAL_S: the output goes ahead in a LOG frame
        return 0
    if event.get("surrogate"):
        raise ValueError("bad \\udcff")
    if event.get("blank"):
        print()
        return 2
    if event.get("fail"):
        raise ValueError("bad " + json.dumps(event))
    print("one")
    print("two\\n")
    if event.get("quiet"):
        return 1
    print("é\\x00", end="")
    return event
"""


def platform_record(result: InvocationResult, version: str) -> str:
    plain = dataclasses.replace(result, log_record=None)
    return invocation_text(
        plain.request_id,
        version,
        plain.log_text,
        error_text(plain, 0) if plain.error is not None else None,
        report_line(plain),
    )


def test_the_instance_record_equals_the_platform_one(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, HANDLER))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        results = [
            await call(pool, b'{"a": 1}'),  # the first: Init Duration
            await call(pool, b'{"quiet": true}'),
            await call(pool, b'{"fail": true}'),
        ]
        for result in results:
            # Then every RESULT carried a record, the same as the platform's formatting
            assert result.log_record is not None
            assert result.log_record == platform_record(result, spec.version)
        first, quiet, failed = (r.log_record or "" for r in results)
        assert "Init Duration: " in first and "Init Duration" not in quiet + failed
        assert first.split("\n")[1:4] == ["one", "two", ""]
        assert re.search(r"\né\x00\nEND RequestId: ", first)
        assert results[0].log_text == "one\ntwo\n\né\x00"
        assert "[ERROR] ValueError: bad" in failed and "Traceback" in failed
        assert failed.endswith("MB\t") and quiet.startswith("START RequestId: ")

    run_supervised(body)


def test_after_a_streamed_first_invocation_no_record_repeats_the_init_duration(
    tmp_path: Path,
) -> None:
    spec = make_spec(write_handler(tmp_path, HANDLER))

    async def body(supervisor: Supervisor, logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        first = await call(pool, b'{"stream": true}')
        second = await call(pool, b'{"quiet": true}')
        # Then the streamed first one is left to the platform (its START went ahead), with the
        # Init Duration, and the second one's record has none
        assert first.log_record is None and first.init_duration_ms is not None
        assert "streamed" in logs.text
        assert second.log_record is not None and "Init Duration" not in second.log_record
        assert second.log_record == platform_record(second, spec.version)

    run_supervised(body)


def test_odd_text_keeps_the_instance_and_its_output(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path, HANDLER))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        surrogate = await call(pool, b'{"surrogate": true}')
        blank = await call(pool, b'{"blank": true}')
        # Then an error message with a lone surrogate is the handler's error, its record has
        # the surrogate escaped, and the instance stays (the next call is served by it)
        assert surrogate.error is not None and surrogate.error.error_type == "ValueError"
        assert surrogate.log_record is not None and "bad \\udcff" in surrogate.log_record
        assert blank.payload == b"2" and pool.stats()["total"] == 1
        # And output that is only a newline is left to the platform, newline and all
        assert blank.log_record is None and blank.log_text == "\n"

    run_supervised(body)
