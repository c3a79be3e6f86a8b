"""CPU-bound handler (~1 ms of Python per call) through unkai vs `uvicorn --workers 2`.

    .venv/bin/python bench/cpu_bound.py [--duration 10] [--quick] [--baseline-only]

The bench copies `bench/apps/cpu` to a temporary dir and writes `calibration.py` there with the
loop count that takes ~1 ms in this interpreter, so unkai's function and the baseline (raw ASGI
importing the same `handler.py`, see `baselines/cpu_asgi.py`) run identical code. wrk: 32
connections, 2 threads, warm-up first, rounds interleaved and the median-ratio round reported as in
http_warm.py (`--rounds`).
With 2 cores and 2 uvicorn workers the baseline is close to the machine's ceiling; the issue's
target is an unkai/baseline req/s ratio >= 0.85.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.processes import BENCH_DIR, Processes, install_signal_exit
from harness.results import Row, print_rows, write_json
from harness.unkai_node import Client, start_node
from http_warm import Run, alternate, bench_args, median_round, round_notes, start_uvicorn

TARGET_MS = 1.0


def load_handler(app_dir: Path) -> object:
    spec = importlib.util.spec_from_file_location("bench_cpu_handler", app_dir / "handler.py")
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {app_dir / 'handler.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def time_burn_ms(burn: object, iterations: int, repeats: int = 15) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        burn(iterations)  # type: ignore[operator]
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def calibrate(burn: object) -> tuple[int, float]:
    """Loop count whose median time is ~TARGET_MS here; returns (iterations, measured ms)."""
    iterations = 10_000
    for _ in range(4):
        iterations = max(1000, round(iterations * TARGET_MS / time_burn_ms(burn, iterations)))
    return iterations, time_burn_ms(burn, iterations)


def main() -> None:
    args = bench_args()
    install_signal_exit()
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="unkai-bench-") as tmp, Processes(Path(tmp)) as ps:
        app_dir = Path(tmp) / "app"
        shutil.copytree(BENCH_DIR / "apps" / "cpu", app_dir)
        iterations, burn_ms = calibrate(load_handler(app_dir).burn)  # type: ignore[attr-defined]
        (app_dir / "calibration.py").write_text(f"ITERATIONS = {iterations}\n")
        notes.append(f"calibrated loop: {iterations} iterations = {burn_ms:.3f} ms (median)")
        print(notes[-1], flush=True)
        env = {**os.environ, "PYTHONPATH": str(app_dir)}
        _, port = start_uvicorn(ps, "cpu_asgi", 2, "uvicorn-cpu", env=env)
        runs: dict[str, Run] = {"uvicorn --workers 2": (f"http://127.0.0.1:{port}/cpu", None)}
        client = None
        if not args.baseline_only:
            node = start_node(ps, app_dir, Path(tmp) / "data")
            client = Client(node.port)
            seen = client.wait_for("GET", "/cpu")
            if len(seen) > 1:
                notes.append(f"GET /cpu right after health 200 answered {seen[:-1]} first")
            runs["unkai GET /cpu"] = (f"{node.base_url}/cpu", None)
        measured = alternate(runs, args.rounds, args.duration, args.warmup, args.seed)
        unkai_runs, base_runs = measured.get("unkai GET /cpu"), measured["uvicorn --workers 2"]
        unkai, base = median_round(unkai_runs, base_runs)
        notes.append(round_notes("GET /cpu", unkai_runs, base_runs))
        if client is not None:
            notes.append(
                f"unkai instances of cpu after the runs: {len(client.function_instances('cpu'))}"
            )
            client.close()
    rows = [
        Row(
            "CPU-bound 1 ms throughput",
            "req/s",
            unkai.requests_per_s if unkai else None,
            base.requests_per_s,
            "ratio >= 0.85",
            lambda _u, r: r is not None and r >= 0.85,
        ),
        Row("CPU-bound 1 ms p50", "ms", unkai.p50_ms if unkai else None, base.p50_ms),
        Row("CPU-bound 1 ms p99", "ms", unkai.p99_ms if unkai else None, base.p99_ms),
    ]
    print_rows("cpu_bound", rows)
    for note in notes:
        print(note)
    write_json(args.json, "cpu_bound", rows, notes)


if __name__ == "__main__":
    main()
