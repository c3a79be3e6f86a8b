"""Warm HTTP invoke through unkai vs bare uvicorn (raw ASGI, httptools + uvloop, 1 worker).

    .venv/bin/python bench/http_warm.py [--duration 10] [--quick] [--baseline-only]

Both servers answer `hello` to `GET /hello`; unkai runs it as the `hello` function of
`bench/apps/hello`. wrk: 32 connections, 2 threads, `--latency`, a warm-up run before each
measured run of the same duration. The servers run one after the other, never together (the
machine has 2 cores, and wrk takes part of them in both runs alike). Also measured: the sync
invoke endpoint (`POST /2015-03-31/functions/hello/invocations`) against a raw ASGI POST.
Targets (issue): req/s ratio >= 0.5, unkai p99 < 5 ms.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import wrk  # noqa: E402
from harness.processes import (  # noqa: E402
    BENCH_DIR, Processes, free_port, install_signal_exit, python_argv, wait_ready,
)
from harness.results import Row, common_args, print_rows, write_json  # noqa: E402
from harness.unkai_node import Client, start_node  # noqa: E402

APP_DIR = BENCH_DIR / "apps" / "hello"
INVOKE_PATH = "/2015-03-31/functions/hello/invocations"


def start_uvicorn(processes: Processes, module: str, workers: int, name: str,
                  env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """Start `uvicorn <module>:app` (raw ASGI, httptools, uvloop, no access log) and wait."""
    port = free_port()
    argv = python_argv(
        "-m", "uvicorn", f"{module}:app", "--app-dir", str(BENCH_DIR / "baselines"),
        "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning", "--workers", str(workers),
    )
    proc = processes.start(name, argv, env=env)
    wait_ready(proc, port, "/", timeout_s=30)
    return proc, port


def measure(url: str, duration_s: float, warmup_s: float, label: str,
            lua: str | None = None) -> wrk.WrkResult:
    wrk.run(url, warmup_s, lua=lua)
    result = wrk.run(url, duration_s, lua=lua)
    print(wrk.describe(label, result), flush=True)
    return result


def rows_for(path: str, unkai: wrk.WrkResult | None, base: wrk.WrkResult,
             targets: bool) -> list[Row]:
    return [
        Row(f"{path} throughput", "req/s", unkai and unkai.requests_per_s, base.requests_per_s,
            "ratio >= 0.5" if targets else "", (lambda _u, r: r is not None and r >= 0.5)
            if targets else None),
        Row(f"{path} p50", "ms", unkai and unkai.p50_ms, base.p50_ms),
        Row(f"{path} p99", "ms", unkai and unkai.p99_ms, base.p99_ms,
            "unkai < 5 ms" if targets else "", (lambda u, _r: u < 5.0) if targets else None),
    ]


def main() -> None:
    args = common_args(__doc__.splitlines()[0], default_duration_s=10).parse_args()
    duration_s = 3.0 if args.quick else args.duration
    warmup_s = min(3.0, duration_s) if not args.quick else 1.0
    install_signal_exit()
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="unkai-bench-") as tmp, Processes(Path(tmp)) as ps:
        uvicorn, port = start_uvicorn(ps, "raw_asgi", 1, "uvicorn")
        base_get = measure(f"http://127.0.0.1:{port}/hello", duration_s, warmup_s,
                           "uvicorn raw ASGI GET")
        base_post = measure(f"http://127.0.0.1:{port}/invoke", duration_s, warmup_s,
                            "uvicorn raw ASGI POST", lua=wrk.POST_JSON_LUA)
        ps.stop(uvicorn)
        unkai_get = unkai_post = None
        if not args.baseline_only:
            node = start_node(ps, APP_DIR, Path(tmp) / "data")
            client = Client(node.port)
            status, body = client.request("GET", "/hello")  # first call is a cold start
            if status != 200:
                raise RuntimeError(f"GET /hello answered {status}: {body[:300]!r}")
            unkai_get = measure(f"{node.base_url}/hello", duration_s, warmup_s,
                                "unkai GET /hello")
            unkai_post = measure(node.base_url + INVOKE_PATH, duration_s, warmup_s,
                                 "unkai POST invoke", lua=wrk.POST_JSON_LUA)
            live = client.function_instances("hello")
            notes.append(f"unkai instances of hello after the runs: {len(live)}")
            for result, label in ((unkai_get, "GET"), (unkai_post, "invoke")):
                if result.errors:
                    notes.append(f"unkai {label}: {result.non_2xx} non-2xx, "
                                 f"{result.socket_errors} socket errors")
            client.close()
    rows = rows_for("GET /hello", unkai_get, base_get, targets=True)
    rows += rows_for("POST invoke", unkai_post, base_post, targets=False)
    print_rows("http_warm", rows)
    for note in notes:
        print(note)
    write_json(args.json, "http_warm", rows, notes)


if __name__ == "__main__":
    main()
