"""Log and metadata throughput of the sqlite backend, with a raw-sqlite baseline in the same run.

    .venv/bin/python bench/log_throughput.py

Prints: records/s through LogService at steady state (record_invocation -> buffer -> one
append per flush), the hot-path cost of record_invocation, append_logs cost per record next to
a bare `executemany` of the same rows into an indexed table (the baseline: one row per record,
as the store kept them before blocks), and single-commit latency.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from unkai.backends.base import LogRecord, Write
from unkai.backends.sqlite import log_blocks
from unkai.backends.sqlite.backend import SqliteBackend
from unkai.backends.sqlite.writer import connect
from unkai.invoke.models import InvocationResult
from unkai.observe.logs import LogService

RUN_S = 3.0


def result(i: int) -> InvocationResult:
    return InvocationResult(
        request_id=f"{i:036d}",
        payload=b"{}",
        error=None,
        duration_ms=1.7,
        max_memory_used_mb=40,
        memory_size_mb=128,
        log_text="handled order 12345\n",
    )


def stored_records(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        count: int = conn.execute("SELECT coalesce(sum(records), 0) FROM log_blocks").fetchone()[0]
    conn.close()
    return count


async def log_service_steady_state(backend: SqliteBackend, path: Path, rate_per_s: int) -> None:
    """Offer `rate_per_s` invocations per second (in 1 ms ticks) for RUN_S; count commits."""
    service = LogService(backend, flush_ms=50)
    await service.start()
    before = stored_records(path)
    results = [result(i) for i in range(1000)]
    per_tick = max(1, rate_per_s // 1000)
    recorded, hot_s, lag_s = 0, 0.0, 0.0
    t0 = time.perf_counter()
    while (now := time.perf_counter()) - t0 < RUN_S:
        due = int((now - t0) * rate_per_s)
        h0 = time.perf_counter()
        while recorded < due:
            for r in results[:per_tick]:
                service.record_invocation(stage="dev", function="f", stream="s", result=r)
            recorded += per_tick
        hot_s += time.perf_counter() - h0
        s0 = time.perf_counter()
        await asyncio.sleep(0.001)
        lag_s = max(lag_s, time.perf_counter() - s0 - 0.001)
    await service.close()
    wall_s = time.perf_counter() - t0
    committed = stored_records(path) - before
    print(
        f"LogService offered {rate_per_s:,} invocations/s: committed {committed / wall_s:,.0f} "
        f"records/s ({committed:,} of {recorded:,}, dropped {service.dropped_records:,}); "
        f"record_invocation {hot_s / max(recorded, 1) * 1e6:.2f} us/call; "
        f"max loop lag {lag_s * 1e3:.1f} ms"
    )


async def append_cost(backend: SqliteBackend, path: Path) -> None:
    batches = [
        [LogRecord(1, "/unkai/dev/f", "s", "x" * 60, f"r{i}") for i in range(1000)]
        for _ in range(30)
    ]
    t0, c0 = time.perf_counter(), time.process_time()
    for batch in batches:
        await backend.append_logs(batch)
    per_rec = (time.perf_counter() - t0) / 30_000 * 1e6
    cpu = (time.process_time() - c0) / 30_000 * 1e6
    build_t0 = time.perf_counter()
    for batch in batches:
        log_blocks.encode(batch).data(range(1, len(batch) + 1))
    build = (time.perf_counter() - build_t0) / 30_000 * 1e6
    # Baseline: the same rows, prebuilt, one executemany per batch on a bare connection into
    # an indexed table (layout 1 of the log store: one row per record).
    conn = connect(path.with_name("baseline.db"))
    conn.executescript(
        "CREATE TABLE logs (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp_ms INTEGER, "
        "log_group TEXT, stream TEXT, request_id TEXT, message TEXT);"
        "CREATE INDEX a ON logs (log_group, id); CREATE INDEX b ON logs (request_id);"
        "CREATE INDEX c ON logs (timestamp_ms);"
    )
    rows = [
        [(r.timestamp_ms, r.group, r.stream, r.request_id, r.message) for r in b] for b in batches
    ]
    t0 = time.perf_counter()
    for batch_rows in rows:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO logs (timestamp_ms, log_group, stream, request_id, "
            "message) VALUES (?, ?, ?, ?, ?)",
            batch_rows,
        )
        conn.execute("COMMIT")
    base = (time.perf_counter() - t0) / 30_000 * 1e6
    conn.close()
    print(
        f"append_logs (batches of 1000): {per_rec:.2f} us/record wall, {cpu:.2f} us CPU "
        f"(all threads; sqlite3_step runs without the GIL)"
    )
    print(f"  of which encoding the block (GIL): {build:.2f} us/record")
    print(f"  baseline bare executemany: {base:.2f} us/record -> ratio {per_rec / base:.2f}x")


async def commit_latency(backend: SqliteBackend) -> None:
    samples = []
    for i in range(2000):
        t0 = time.perf_counter()
        await backend.commit([Write("bench", f"k{i % 50}", {"i": i, "name": "function"})])
        samples.append((time.perf_counter() - t0) * 1e6)
    samples.sort()
    t0 = time.perf_counter()
    await asyncio.gather(
        *(backend.commit([Write("bench2", f"k{i}", {"i": i})]) for i in range(5000))
    )
    concurrent = (time.perf_counter() - t0) / 5000 * 1e6
    base_conn = sqlite3.connect(":memory:")
    print(
        f"single metadata commit: p50 {statistics.median(samples):.0f} us, "
        f"p99 {samples[int(len(samples) * 0.99)]:.0f} us (serial, awaited)"
    )
    print(f"  5000 concurrent commits: {concurrent:.1f} us each (group commit)")
    base_conn.close()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "unkai.db"
        backend = SqliteBackend(path)
        await backend.open()
        for rate in (10_000, 25_000, 50_000):
            await log_service_steady_state(backend, path, rate)
        await append_cost(backend, path)
        await commit_latency(backend)
        await backend.close()
    print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}")


if __name__ == "__main__":
    asyncio.run(main())
