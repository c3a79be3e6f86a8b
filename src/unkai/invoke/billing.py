"""Lambda's billing rule for an invocation's duration. Stdlib only: the in-instance runtime
formats REPORT lines with it (observe/report.py)."""

from __future__ import annotations


def billed_duration_ms(duration_ms: float) -> int:
    """Lambda bills in 1 ms steps, rounded up, with a 1 ms minimum."""
    whole = int(duration_ms)
    return max(1, whole if whole == duration_ms else whole + 1)
