"""Run every benchmark, one after the other, and write a markdown summary of their rows.

    .venv/bin/python bench/run_all.py [--quick] [--baseline-only] [--output FILE]

Each benchmark runs as its own process (`<sys.executable> bench/<name>.py --json <file>`) with a
time limit; a benchmark that fails or times out is reported as such and its rows stay "not
measured yet". The summary table has one row per metric: unkai, baseline, ratio, target, met?
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
BENCHES = [
    "http_warm",
    "cpu_bound",
    "cold_start",
    "memory",
    "bootstrap_import",
    "gateway_protected",
    "queue_throughput",
    "aws_clients",
]
#: Wall-clock limit per benchmark (full runs); quick runs get a third of it.
LIMIT_S = 600
#: A bench given SIGTERM stops its own servers (up to 5 s each) before it exits.
STOP_GRACE_S = 30


def cell(value: object) -> str:
    if value is None:
        return "not measured yet"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def stop_bench(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the bench's `finally` stops its servers), then SIGKILL after a grace period."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def install_signal_exit() -> None:
    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGHUP, _exit)


def run_bench(name: str, extra: list[str], limit_s: float) -> tuple[dict[str, object], str]:
    """Run one benchmark; (its JSON document or {}, its status line)."""
    with tempfile.TemporaryDirectory(prefix="unkai-run-all-") as tmp:
        out = Path(tmp) / f"{name}.json"
        argv = [sys.executable, str(BENCH_DIR / f"{name}.py"), "--json", str(out), *extra]
        print(f"\n### {' '.join(argv)}", flush=True)
        t0 = time.monotonic()
        proc = subprocess.Popen(argv)
        try:
            proc.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            stop_bench(proc)
            return {}, f"{name}: timed out after {limit_s:.0f} s"
        finally:
            stop_bench(proc)  # run_all itself stopped (Ctrl-C, SIGTERM): let the bench clean up
        status = f"{name}: exit {proc.returncode} in {time.monotonic() - t0:.0f} s"
        document = json.loads(out.read_text()) if out.exists() else {}
        return document, status


def markdown(documents: list[dict[str, object]], statuses: list[str], command: str) -> str:
    lines = [
        "# unkai benchmark summary",
        "",
        f"- when: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- command: `{command}`",
        f"- machine: {platform.machine()}, {__import__('os').cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "",
        "| bench | metric | unit | unkai | baseline | ratio | target | met? |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for document in documents:
        for row in document.get("rows", []):  # type: ignore[union-attr]
            met = "-" if not row["target"] else cell(row["met"])
            baseline = "n/a" if row.get("no_baseline") else cell(row["baseline"])
            ratio = "n/a" if row.get("no_baseline") else cell(row["ratio"])
            lines.append(
                f"| {document['bench']} | {row['metric']} | {row['unit']} | {cell(row['unkai'])}"
                f" | {baseline} | {ratio} | {row['target'] or '-'}"
                f" | {met} |"
            )
    lines += ["", "## Notes", ""]
    for document in documents:
        for note in document.get("notes", []):  # type: ignore[union-attr]
            lines.append(f"- {document['bench']}: {note}")
    lines += ["", "## Runs", "", *(f"- {s}" for s in statuses), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--baseline-only", action="store_true")
    parser.add_argument("--only", nargs="*", choices=BENCHES, default=BENCHES)
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results" / "summary.md")
    args = parser.parse_args()
    install_signal_exit()
    extra = [
        flag
        for flag, on in (("--quick", args.quick), ("--baseline-only", args.baseline_only))
        if on
    ]
    limit_s = LIMIT_S / 3 if args.quick else LIMIT_S
    documents, statuses = [], []
    for name in args.only:
        document, status = run_bench(name, extra, limit_s)
        statuses.append(status)
        if document:
            documents.append(document)
    text = markdown(documents, statuses, " ".join(["bench/run_all.py", *sys.argv[1:]]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"\n{text}\nwritten to {args.output}")


if __name__ == "__main__":
    main()
