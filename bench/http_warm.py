"""Warm HTTP invoke through unkai vs bare uvicorn (raw ASGI, httptools + uvloop, 1 worker).

    .venv/bin/python bench/http_warm.py [--duration 10] [--quick] [--baseline-only]

Both servers answer `hello` to `GET /hello`; unkai runs it as the `hello` function of
`bench/apps/hello`. wrk: 32 connections, 2 threads, `--latency`, a warm-up run before each
measured run. Both servers are up, but only one is under load at a time: every round runs each
of them once, in a new random order, for `--rounds` rounds. The figures reported are those of
the round whose unkai/baseline ratio is the median one, so req/s, p50, p99 and the ratio come
from runs seconds apart. Why per round: this machine's speed drifts by up to 40% within
minutes, and a median taken per side, over rounds at different speeds, moved the ratio by as
much as the drift (docs/benchmarks.md, session 10). Also measured: the sync invoke endpoint
(`POST /2015-03-31/functions/hello/invocations`) against a raw ASGI POST.
Targets (issue): req/s ratio >= 0.5, unkai p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
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
    runs: dict[str, Run], rounds: int, duration_s: float, warmup_s: float, seed: int
) -> dict[str, list[wrk.WrkResult]]:
    """Measure every run once per round, in a new random order each round (from `seed`), so
    that neither side always runs first or follows the other; each label's results by round."""
    shuffle = random.Random(seed).shuffle
    results: dict[str, list[wrk.WrkResult]] = {label: [] for label in runs}
    for number in range(1, rounds + 1):
        order = list(runs)
        shuffle(order)
        for label in order:
            url, lua = runs[label]
            results[label].append(measure(url, duration_s, warmup_s, f"{label} #{number}", lua))
    return results


def median_round(
    unkai: list[wrk.WrkResult] | None, base: list[wrk.WrkResult]
) -> tuple[wrk.WrkResult | None, wrk.WrkResult]:
    """The (unkai, baseline) pair of the round with the median req/s ratio (the lower middle
    one for an even count); without unkai, the baseline's median round by req/s."""
    if not unkai:
        ordered = sorted(base, key=lambda r: r.requests_per_s)
        return None, ordered[(len(ordered) - 1) // 2]
    pairs = sorted(zip(unkai, base, strict=True), key=lambda pair: _ratio(*pair))
    return pairs[(len(pairs) - 1) // 2]


def _ratio(unkai: wrk.WrkResult, base: wrk.WrkResult) -> float:
    return unkai.requests_per_s / max(base.requests_per_s, 1e-9)


def round_notes(label: str, unkai: list[wrk.WrkResult] | None, base: list[wrk.WrkResult]) -> str:
    """Every round's figures, for the notes: what the median round was chosen from."""
    text = f"{label} rounds: baseline req/s " + ", ".join(f"{r.requests_per_s:,.0f}" for r in base)
    if unkai:
        ratios = [_ratio(u, b) for u, b in zip(unkai, base, strict=True)]
        text += (
            "; unkai req/s "
            + ", ".join(f"{r.requests_per_s:,.0f}" for r in unkai)
            + "; ratio "
            + ", ".join(f"{ratio:.3f}" for ratio in ratios)
            + f" (median {statistics.median(ratios):.3f})"
            + "; unkai p99 ms "
            + ", ".join(f"{r.p99_ms:.2f}" for r in unkai)
        )
    errors = [r.errors for r in [*base, *(unkai or [])]]
    return text + (f"; errors {errors}" if any(errors) else "")


def rows_for(
    path: str, unkai: wrk.WrkResult | None, base: wrk.WrkResult, targets: bool
) -> list[Row]:
    return [
        Row(
            f"{path} throughput",
            "req/s",
            unkai.requests_per_s if unkai else None,
            base.requests_per_s,
            "ratio >= 0.5" if targets else "",
            (lambda _u, r: r is not None and r >= 0.5) if targets else None,
        ),
        Row(f"{path} p50", "ms", unkai.p50_ms if unkai else None, base.p50_ms),
        Row(
            f"{path} p99",
            "ms",
            unkai.p99_ms if unkai else None,
            base.p99_ms,
            "unkai < 5 ms" if targets else "",
            (lambda u, _r: u < 5.0) if targets else None,
        ),
    ]


def bench_args() -> argparse.Namespace:
    parser = common_args(__doc__.splitlines()[0], default_duration_s=5)
    parser.add_argument(
        "--rounds", type=int, default=None, help="interleaved rounds (default 7, quick 1)"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the rounds' order (default: random)"
    )
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 7)
    args.seed = random.randrange(2**32) if args.seed is None else args.seed
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
        measured = alternate(runs, args.rounds, args.duration, args.warmup, args.seed)
        notes.append(f"{args.rounds} rounds of {args.duration:g} s runs, order seed {args.seed}")
        if client is not None:
            live = client.function_instances("hello")
            notes.append(f"unkai instances of hello after the runs: {len(live)}")
            client.close()
    rows: list[Row] = []
    for label, unkai_label, base_label, targets in (
        ("GET /hello", "unkai GET", "uvicorn GET", True),
        ("POST invoke", "unkai POST invoke", "uvicorn POST", False),
    ):
        unkai, base = median_round(measured.get(unkai_label), measured[base_label])
        rows += rows_for(label, unkai, base, targets=targets)
        notes.append(round_notes(label, measured.get(unkai_label), measured[base_label]))
    print_rows("http_warm", rows)
    for note in notes:
        print(note)
    write_json(args.json, "http_warm", rows, notes)


if __name__ == "__main__":
    main()
