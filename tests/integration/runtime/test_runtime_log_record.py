"""An invocation's log record, START to REPORT, as a query reads it back: real instances, their
results recorded by a LogService into the real SQLite store, which keeps each record in parts
(`InvocationFacts`) and formats it only when read."""

from __future__ import annotations

import re
from pathlib import Path

from runtime_harness import LogCollector, call, make_spec, run_supervised, write_handler

from unkai.backends.sqlite.backend import SqliteBackend
from unkai.invoke.models import InvocationResult
from unkai.observe.logs import LogService
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

REPORT = re.compile(
    r"REPORT RequestId: (\S+)\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
    r"Memory Size: 128 MB\tMax Memory Used: \d+ MB\t(Init Duration: \d+\.\d\d ms\t)?$"
)


async def stored(tmp_path: Path, results: list[InvocationResult], version: str) -> list[str]:
    """The records of `results` as a query reads them back from the SQLite store."""
    backend = SqliteBackend(tmp_path / "logs" / "unkai.db")
    await backend.open()
    logs = LogService(backend)
    try:
        for result in results:
            logs.record_invocation(
                stage="dev", function="fn", stream="s", result=result, version=version
            )
        records = await logs.query(stage="dev", function="fn")
    finally:
        await logs.close()
        await backend.close()
    return [r.message for r in records]


def test_a_record_reads_back_as_lambda_writes_it(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path / "app", HANDLER))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        results = [
            await call(pool, b'{"a": 1}'),  # the first: Init Duration
            await call(pool, b'{"quiet": true}'),
            await call(pool, b'{"fail": true}'),
        ]
        first, quiet, failed = await stored(tmp_path, results, spec.version)
        for text, result in zip((first, quiet, failed), results, strict=True):
            rid = result.request_id
            lines = text.split("\n")
            assert lines[0] == f"START RequestId: {rid} Version: {spec.version}"
            assert lines[-2] == f"END RequestId: {rid}"
            report = REPORT.match(lines[-1])
            assert report is not None and report.group(1) == rid
        # Then the output sits between START and END, its last newline dropped, a NUL as
        # U+FFFD; Init Duration is on the first only; an error has Lambda's block
        assert first.split("\n")[1:5] == ["one", "two", "", "é\ufffd"]
        assert "Init Duration: " in first and "Init Duration" not in quiet + failed
        assert quiet.split("\n")[1:5] == [
            "one",
            "two",
            "",
            f"END RequestId: {results[1].request_id}",
        ]
        assert "[ERROR] ValueError: bad" in failed and "Traceback" in failed

    run_supervised(body)


def test_after_a_streamed_first_invocation_no_record_repeats_the_init_duration(
    tmp_path: Path,
) -> None:
    spec = make_spec(write_handler(tmp_path / "app", HANDLER))

    async def body(supervisor: Supervisor, logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        first = await call(pool, b'{"stream": true}')
        second = await call(pool, b'{"quiet": true}')
        # Then the streamed first one went ahead (the platform's sink got it), its result has
        # the Init Duration, and the second one's record has none
        assert "streamed" in logs.text and first.init_duration_ms is not None
        assert second.init_duration_ms is None
        [text] = await stored(tmp_path, [second], spec.version)
        assert "Init Duration" not in text and text.startswith("START RequestId: ")

    run_supervised(body)


def test_odd_text_keeps_the_instance_and_its_output(tmp_path: Path) -> None:
    spec = make_spec(write_handler(tmp_path / "app", HANDLER))

    async def body(supervisor: Supervisor, _logs: LogCollector) -> None:
        pool = supervisor.pool_for(spec)
        surrogate = await call(pool, b'{"surrogate": true}')
        blank = await call(pool, b'{"blank": true}')
        # Then an error message with a lone surrogate is the handler's error, the instance
        # stays (the next call is served by it), and output that is only a newline is kept
        assert surrogate.error is not None and surrogate.error.error_type == "ValueError"
        assert blank.payload == b"2" and pool.stats()["total"] == 1
        assert blank.log_text == "\n"
        # And their records read back whole: the surrogate escaped, no empty output line
        bad, empty = await stored(tmp_path, [surrogate, blank], spec.version)
        assert "[ERROR] ValueError: bad \\udcff" in bad
        assert bad.split("\n")[-1].startswith(f"REPORT RequestId: {surrogate.request_id}\t")
        assert empty.split("\n")[1] == f"END RequestId: {blank.request_id}"

    run_supervised(body)
