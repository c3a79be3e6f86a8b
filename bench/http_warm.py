"""Warm HTTP invoke through unkai vs bare uvicorn (raw ASGI, httptools + uvloop, 1 worker).

    .venv/bin/python bench/http_warm.py [--duration 10] [--quick] [--baseline-only]

Both servers answer `hello` to `GET /hello`; unkai runs it as the `hello` function of
`bench/apps/hello`. wrk: 32 connections, 2 threads, `--latency`, a warm-up run before each
measured run. Both servers are up, but only one is under load at a time: the runs alternate
(baseline, unkai, baseline, unkai, ...) for `--rounds` rounds and each side reports its median
round, so drift in the load of the shared 2-core machine hits both sides alike. Also measured:
the sync invoke endpoint (`POST /2015-03-31/functions/hello/invocations`) against a raw ASGI POST.
Targets (issue): req/s ratio >= 0.5, unkai p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import wrk
from harness.processes import (
    BENCH_DIR,
    Processes,
    free_port,
    install_signal_exit,
    python_argv,
    wait_ready,
)
from harness.results import Row, common_args, print_rows, write_json
from harness.unkai_node import Client, start_node

APP_DIR = BENCH_DIR / "apps" / "hello"
INVOKE_PATH = "/2015-03-31/functions/hello/invocations"


def start_uvicorn(
    processes: Processes, module: str, workers: int, name: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Start `uvicorn <module>:app` (raw ASGI, httptools, uvloop, no access log) and wait."""
    port = free_port()
    argv = python_argv(
        "-m",
        "uvicorn",
        f"{module}:app",
        "--app-dir",
        str(BENCH_DIR / "baselines"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    )
    proc = processes.start(name, argv, env=env)
    wait_ready(proc, port, "/", timeout_s=30)
    return proc, port


def measure(
    url: str, duration_s: float, warmup_s: float, label: str, lua: str | None = None
) -> wrk.WrkResult:
    wrk.run(url, warmup_s, lua=lua)
    result = wrk.run(url, duration_s, lua=lua)
    print(wrk.describe(label, result), flush=True)
    return result


Run = tuple[str, str | None]  # (url, wrk lua script or None)


def alternate(
    runs: dict[str, Run], rounds: int, duration_s: float, warmup_s: float, notes: list[str]
) -> dict[str, wrk.WrkResult]:
    """Measure every run `rounds` times, interleaved (A B A B ...), so drift in the shared
    machine's load hits both sides alike; per label, the round with the median req/s."""
    results: dict[str, list[wrk.WrkResult]] = {label: [] for label in runs}
    for number in range(1, rounds + 1):
        for label, (url, lua) in runs.items():
            results[label].append(measure(url, duration_s, warmup_s, f"{label} #{number}", lua))
    chosen: dict[str, wrk.WrkResult] = {}
    for label, measured in results.items():
        ordered = sorted(measured, key=lambda r: r.requests_per_s)
        chosen[label] = ordered[(len(ordered) - 1) // 2]
        notes.append(
            f"{label}: req/s per round "
            + ", ".join(f"{r.requests_per_s:,.0f}" for r in measured)
            + "; p99 ms "
            + ", ".join(f"{r.p99_ms:.2f}" for r in measured)
            + (
                f"; errors {[r.errors for r in measured]}"
                if any(r.errors for r in measured)
                else ""
            )
        )
    return chosen


def rows_for(
    path: str, unkai: wrk.WrkResult | None, base: wrk.WrkResult, targets: bool
) -> list[Row]:
    return [
        Row(
            f"{path} throughput",
            "req/s",
            unkai and unkai.requests_per_s,
            base.requests_per_s,
            "ratio >= 0.5" if targets else "",
            (lambda _u, r: r is not None and r >= 0.5) if targets else None,
        ),
        Row(f"{path} p50", "ms", unkai and unkai.p50_ms, base.p50_ms),
        Row(
            f"{path} p99",
            "ms",
            unkai and unkai.p99_ms,
            base.p99_ms,
            "unkai < 5 ms" if targets else "",
            (lambda u, _r: u < 5.0) if targets else None,
        ),
    ]


def bench_args() -> argparse.Namespace:
    parser = common_args(__doc__.splitlines()[0], default_duration_s=10)
    parser.add_argument(
        "--rounds", type=int, default=None, help="interleaved rounds per side (default 3, quick 1)"
    )
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.duration = 3.0 if args.quick else args.duration
    args.warmup = 1.0 if args.quick else 2.0
    return args


def main() -> None:
    args = bench_args()
    install_signal_exit()
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="unkai-bench-") as tmp, Processes(Path(tmp)) as ps:
        _, port = start_uvicorn(ps, "raw_asgi", 1, "uvicorn")
        runs: dict[str, Run] = {
            "uvicorn GET": (f"http://127.0.0.1:{port}/hello", None),
            "uvicorn POST": (f"http://127.0.0.1:{port}/invoke", wrk.POST_JSON_LUA),
        }
        client = None
        if not args.baseline_only:
            node = start_node(ps, APP_DIR, Path(tmp) / "data")
            client = Client(node.port)
            seen = client.wait_for("GET", "/hello")  # the first 200 is a cold start
            if len(seen) > 1:
                notes.append(f"GET /hello right after health 200 answered {seen[:-1]} first")
            runs["unkai GET"] = (f"{node.base_url}/hello", None)
            runs["unkai POST invoke"] = (node.base_url + INVOKE_PATH, wrk.POST_JSON_LUA)
        chosen = alternate(runs, args.rounds, args.duration, args.warmup, notes)
        if client is not None:
            live = client.function_instances("hello")
            notes.append(f"unkai instances of hello after the runs: {len(live)}")
            client.close()
    rows = rows_for("GET /hello", chosen.get("unkai GET"), chosen["uvicorn GET"], targets=True)
    rows += rows_for(
        "POST invoke", chosen.get("unkai POST invoke"), chosen["uvicorn POST"], targets=False
    )
    print_rows("http_warm", rows)
    for note in notes:
        print(note)
    write_json(args.json, "http_warm", rows, notes)


if __name__ == "__main__":
    main()
