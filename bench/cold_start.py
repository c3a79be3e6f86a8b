"""Cold start: first response from a function with no warm instance vs a fresh interpreter.

    .venv/bin/python bench/cold_start.py [--quick] [--repeats N] [--settle-ms MS] [--duration S]
                                            [--baseline-only]

unkai: for each function of `bench/apps/cold` (`trivial`, and `boto` whose module does
`import boto3`), time the first invoke after deploy (it pays the imports, once per version);
then, right away, drain and time one more cold start: it comes while the version's zygote is
still importing the modules, so it waits for it (reported as "during preload"). For boto, wait
until the version zygote is listed. Then N times: drain
(`POST /_unkai/api/functions/<f>/drain`, which keeps the per-version zygote), wait until no
instance is left, let the platform settle (`--settle-ms`, default 100: a function scaled to
zero meets an idle platform, not one still tearing down its last instance), and time one sync
invoke over a kept-alive connection.
Baseline: `<sys.executable> -c` importing the same handler module and answering once, timed as
a subprocess run, N times. `--duration` bounds each loop in seconds. Also reported: the idle
RSS/PSS of each zygote listed by `/_unkai/api/instances`.
Targets (issue): trivial p50 < 5 ms and p99 < 10 ms; later boto3 cold starts < 0.1 x fresh.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.proc_memory import read_memory
from harness.processes import BENCH_DIR, Processes, install_signal_exit
from harness.results import Row, common_args, percentile, print_rows, write_json
from harness.unkai_node import Client, start_node

APP_DIR = BENCH_DIR / "apps" / "cold"
MODULES = {"trivial": "handler_trivial", "boto": "handler_boto"}
ANSWER_ONCE = (
    "import json, sys; sys.path.insert(0, {app!r}); import {module} as m; "
    "sys.stdout.write(json.dumps(m.hello({{}}, None)))"
)


def fresh_interpreter_ms(code: str, repeats: int, budget_s: float) -> list[float]:
    """Wall time of `sys.executable -c code`, `repeats` times or until `budget_s` is spent."""
    samples: list[float] = []
    run = [sys.executable, "-c", code]
    subprocess.run(run, check=True, capture_output=True, timeout=30)  # writes .pyc; not timed
    deadline = time.monotonic() + budget_s
    while len(samples) < repeats and time.monotonic() < deadline:
        t0 = time.perf_counter()
        subprocess.run(run, check=True, capture_output=True, timeout=30)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def timed_invoke_ms(client: Client, function: str) -> float:
    t0 = time.perf_counter()
    status, body = client.invoke(function)
    elapsed_ms = (time.perf_counter() - t0) * 1000
    if status != 200:
        raise RuntimeError(f"invoke {function} answered {status}: {body[:300]!r}")
    return elapsed_ms


def unkai_cold_starts(
    client: Client, function: str, repeats: int, budget_s: float, settle_s: float
) -> tuple[float, float, list[float], list[str]]:
    """(first cold start ms, during-preload ms, later cold starts ms, problems seen)."""
    problems: list[str] = []
    first_ms = timed_invoke_ms(client, function)
    drain_all(client, function, problems)
    preload_ms = timed_invoke_ms(client, function)
    if function != "trivial" and not client.wait_version_zygote(function):
        problems.append(f"{function}: no version zygote listed 10 s after its first invoke")
    samples: list[float] = []
    deadline = time.monotonic() + budget_s
    while len(samples) < repeats and time.monotonic() < deadline:
        drain_all(client, function, problems)
        time.sleep(settle_s)
        samples.append(timed_invoke_ms(client, function))
    return first_ms, preload_ms, samples, problems


def drain_all(client: Client, function: str, problems: list[str]) -> None:
    status = client.drain(function)
    if status >= 300:
        raise RuntimeError(f"drain {function} answered {status}")
    if not client.wait_no_instances(function):
        problems.append(f"{function}: instances still listed 10 s after drain")


def outliers(function: str, samples: list[float]) -> list[str]:
    """Later cold starts over 3x the median, by index: e.g. ones that re-paid the imports."""
    median = percentile(samples, 50)
    slow = [f"#{i} {ms:.1f} ms" for i, ms in enumerate(samples) if ms > 3 * median]
    return (
        [f"unkai {function}: {len(slow)} later cold starts > 3x p50: {', '.join(slow)}"]
        if slow
        else []
    )


def zygote_rows(client: Client) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    for zygote in client.instances().get("zygotes", []):
        key = zygote.get("version_key") or "(generic)"
        try:
            memory = read_memory(int(zygote["pid"]))
        except OSError as exc:
            notes.append(f"zygote {key} pid {zygote['pid']}: cannot read smaps_rollup: {exc}")
            continue
        rows.append(Row(f"idle zygote {key} RSS", "MiB", memory.rss_mib, None, no_baseline=True))
        rows.append(Row(f"idle zygote {key} PSS", "MiB", memory.pss_mib, None, no_baseline=True))
        if "prefault_pages" in zygote:
            notes.append(
                f"zygote {key}: its spare copies {zygote['prefault_pages']} pages ahead, learned"
                f" from {len(zygote.get('prefault_learned_from', []))} instance(s)"
            )
    return rows, notes


def cold_rows(
    function: str,
    first_ms: float | None,
    preload_ms: float | None,
    unkai: list[float] | None,
    base: list[float],
) -> list[Row]:
    def pct(samples: list[float] | None, q: float) -> float | None:
        return percentile(samples, q) if samples else None

    base50, base99 = percentile(base, 50), percentile(base, 99)
    if function == "trivial":
        return [
            Row(
                "cold start trivial p50",
                "ms",
                pct(unkai, 50),
                base50,
                "unkai < 5 ms",
                lambda u, _r: u < 5.0,
            ),
            Row(
                "cold start trivial p99",
                "ms",
                pct(unkai, 99),
                base99,
                "unkai < 10 ms",
                lambda u, _r: u < 10.0,
            ),
        ]
    return [
        Row("cold start boto3, first", "ms", first_ms, base50, note="baseline: fresh p50"),
        Row(
            "cold start boto3, during preload",
            "ms",
            preload_ms,
            base50,
            note="right after the first: waits for the zygote",
        ),
        Row(
            "cold start boto3, later p50",
            "ms",
            pct(unkai, 50),
            base50,
            "ratio < 0.1",
            lambda _u, r: r is not None and r < 0.1,
        ),
        Row("cold start boto3, later p99", "ms", pct(unkai, 99), base99),
    ]


def main() -> None:
    parser = common_args(__doc__.splitlines()[0], default_duration_s=60)
    parser.add_argument("--repeats", type=int, default=None, help="N (default 50, quick 20)")
    parser.add_argument(
        "--settle-ms",
        type=float,
        default=100.0,
        help="pause between a drain and the timed cold start (default 100)",
    )
    args = parser.parse_args()
    repeats = args.repeats or (20 if args.quick else 50)
    install_signal_exit()
    notes: list[str] = []
    baselines = {}
    for function, module in MODULES.items():
        code = ANSWER_ONCE.format(app=str(APP_DIR), module=module)
        baselines[function] = fresh_interpreter_ms(code, repeats, args.duration)
    bare = fresh_interpreter_ms("pass", repeats, args.duration)
    notes.append(
        f"fresh `-c pass`: p50 {percentile(bare, 50):.1f} ms, "
        f"p99 {percentile(bare, 99):.1f} ms (n={len(bare)})"
    )
    for function, samples in baselines.items():
        notes.append(
            f"fresh interpreter answering {function}: p50 {percentile(samples, 50):.1f}"
            f" ms, p99 {percentile(samples, 99):.1f} ms (n={len(samples)})"
        )
    measured: dict[str, tuple[float, float, list[float]]] = {}
    memory_rows: list[Row] = []
    if not args.baseline_only:
        with tempfile.TemporaryDirectory(prefix="unkai-bench-") as tmp, Processes(Path(tmp)) as ps:
            node = start_node(ps, APP_DIR, Path(tmp) / "data")
            client = Client(node.port)
            for function in MODULES:
                first_ms, preload_ms, samples, problems = unkai_cold_starts(
                    client, function, repeats, args.duration, args.settle_ms / 1000
                )
                measured[function] = (first_ms, preload_ms, samples)
                notes += problems
                notes.append(
                    f"unkai {function}: first {first_ms:.2f} ms, during preload"
                    f" {preload_ms:.2f} ms, later n={len(samples)}"
                    f" min {min(samples):.2f} ms max {max(samples):.2f} ms"
                )
                notes += outliers(function, samples)
            memory_rows, memory_notes = zygote_rows(client)
            notes += memory_notes
            client.close()
    rows: list[Row] = []
    for function, base in baselines.items():
        first_ms, preload_ms, samples = measured.get(function, (None, None, None))
        rows += cold_rows(function, first_ms, preload_ms, samples, base)
    rows += memory_rows or [
        Row("idle zygote RSS", "MiB", None, None, no_baseline=True),
        Row("idle zygote PSS", "MiB", None, None, no_baseline=True),
    ]
    print_rows("cold_start", rows)
    for note in notes:
        print(note)
    write_json(args.json, "cold_start", rows, notes)


if __name__ == "__main__":
    main()
