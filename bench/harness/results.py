"""What a benchmark reports: one `Row` per metric, printed and written as JSON for run_all.

A row carries unkai's figure, the baseline's figure measured in the same run, their ratio
(unkai / baseline), the target from the issue and whether it was met. A figure that was not
measured (e.g. `--baseline-only`, or unkai not ready) stays None and prints as
"not measured yet": no number is ever filled in by hand. A row with no baseline at all sets
`no_baseline` and prints "n/a" there.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

NOT_MEASURED = "not measured yet"


@dataclass
class Row:
    metric: str
    unit: str
    unkai: float | None
    baseline: float | None
    target: str = ""
    #: Given unkai's figure and the ratio, whether the target holds; None if there is none.
    check: Callable[[float, float | None], bool] | None = None
    note: str = ""
    #: True when no baseline applies (shown as "n/a", not as "not measured yet").
    no_baseline: bool = False

    @property
    def ratio(self) -> float | None:
        if self.unkai is None or self.baseline is None or self.baseline == 0:
            return None
        return self.unkai / self.baseline

    @property
    def met(self) -> bool | None:
        if self.check is None or self.unkai is None:
            return None
        return self.check(self.unkai, self.ratio)

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("check")
        return {**data, "ratio": self.ratio, "met": self.met}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return NOT_MEASURED
    return f"{value:,.{digits}f}"


def fmt_met(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[met]


def print_rows(title: str, rows: Sequence[Row]) -> None:
    print(f"\n== {title} ==")
    for row in rows:
        ratio = "" if row.ratio is None else f"  ratio {row.ratio:.3f}"
        target = f"  target {row.target}: {fmt_met(row.met)}" if row.target else ""
        print(
            f"{row.metric} [{row.unit}]: unkai {fmt(row.unkai, 3)}  "
            f"baseline {'n/a' if row.no_baseline else fmt(row.baseline, 3)}{ratio}{target}"
            + (f"  ({row.note})" if row.note else "")
        )


def write_json(path: Path | None, bench: str, rows: Sequence[Row], notes: Sequence[str]) -> None:
    if path is None:
        return
    document = {"bench": bench, "rows": [r.as_dict() for r in rows], "notes": list(notes)}
    path.write_text(json.dumps(document, indent=2))


def common_args(description: str, default_duration_s: float) -> argparse.ArgumentParser:
    """The flags every benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--duration",
        type=float,
        default=default_duration_s,
        help=f"seconds per measured run (default {default_duration_s:g})",
    )
    parser.add_argument("--quick", action="store_true", help="short runs, fewer repetitions")
    parser.add_argument(
        "--baseline-only", action="store_true", help="measure only the baseline (unkai not needed)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    return parser
