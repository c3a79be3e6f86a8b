"""Import time of `unkai.runtime.bootstrap` (the in-instance runtime) in a fresh interpreter.

    .venv/bin/python bench/bootstrap_import.py [--quick] [--repeats N]

Times `<sys.executable> -c 'import unkai.runtime.bootstrap'` against `-c pass` (the baseline),
interleaved, N times each (median and p99), and runs `-X importtime` once to list the modules
the import adds beyond `-c pass`: the bootstrap must pull in only the stdlib and our frame codec
(STYLE.md habit 15), so any third-party module in that list is a finding.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.results import Row, common_args, percentile, print_rows, write_json

MODULE = "unkai.runtime.bootstrap"


def run_ms(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=30)
    return (time.perf_counter() - t0) * 1000


def imported_modules(code: str) -> dict[str, int]:
    """{module: cumulative import us} from `-X importtime` (top-level imports only)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    modules: dict[str, int] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        modules[name.strip()] = int(cumulative_us)
    return modules


def main() -> None:
    parser = common_args(__doc__.splitlines()[0], default_duration_s=60)
    parser.add_argument("--repeats", type=int, default=None, help="N (default 40, quick 15)")
    args = parser.parse_args()
    repeats = args.repeats or (15 if args.quick else 40)
    run_ms("import " + MODULE)  # compile .pyc files once, untimed
    bare: list[float] = []
    loaded: list[float] = []
    deadline = time.monotonic() + args.duration
    while len(bare) < repeats and time.monotonic() < deadline:
        bare.append(run_ms("pass"))
        loaded.append(run_ms("import " + MODULE))
    extra = sorted(set(imported_modules("import " + MODULE)) - set(imported_modules("pass")))
    third_party = sorted(
        {m.split(".")[0] for m in extra} - set(sys.stdlib_module_names) - {"unkai"}
    )
    timings = imported_modules("import " + MODULE)
    cumulative_us = timings.get(MODULE)
    heaviest = sorted(
        ((us, m) for m, us in timings.items() if m in extra and m != MODULE), reverse=True
    )[:8]
    notes = [
        f"n={len(bare)}; -X importtime cumulative for {MODULE}: {cumulative_us} us",
        f"modules added beyond `-c pass` ({len(extra)}): {', '.join(extra)}",
        f"non-stdlib top-level packages imported: {third_party or 'none'}",
        "heaviest (cumulative us): " + ", ".join(f"{m} {us}" for us, m in heaviest),
    ]
    delta = statistics.median(loaded) - statistics.median(bare)
    rows = [
        Row(
            "bootstrap import, process p50",
            "ms",
            statistics.median(loaded),
            statistics.median(bare),
            note="baseline: -c pass",
        ),
        Row("bootstrap import, process p99", "ms", percentile(loaded, 99), percentile(bare, 99)),
        Row(
            "bootstrap import, added p50",
            "ms",
            delta,
            None,
            note="p50(import) - p50(pass)",
            no_baseline=True,
        ),
    ]
    print_rows("bootstrap_import", rows)
    for note in notes:
        print(note)
    write_json(args.json, "bootstrap_import", rows, notes)


if __name__ == "__main__":
    main()
