"""Run wrk against 127.0.0.1 and parse its report.

wrk prints latencies with a unit suffix that changes with magnitude (`812.00us`, `1.43ms`,
`2.01s`, `1.00m`) and adds lines only when something went wrong (`Socket errors: ...`,
`Non-2xx or 3xx responses: N`), so every field is parsed on its own and missing ones read 0.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: A response slower than this is counted by wrk as a timeout (its default is 2 s).
WRK_TIMEOUT_S = 5
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_LATENCY = r"([\d.]+)(us|ms|s|m|h)\b"

POST_JSON_LUA = """wrk.method = "POST"
wrk.body = '{"bench": true}'
wrk.headers["Content-Type"] = "application/json"
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    raw: str

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def to_ms(value: str, unit: str) -> float:
    return float(value) * _UNIT_MS[unit]


def _latency(text: str, pattern: str) -> float:
    match = re.search(pattern + r"\s+" + _LATENCY, text, re.MULTILINE)
    if match is None:
        raise ValueError(f"wrk output has no {pattern!r} latency:\n{text}")
    return to_ms(match.group(1), match.group(2))


def parse(text: str) -> WrkResult:
    """Parse `wrk --latency` output. Raises ValueError if a required field is missing."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.MULTILINE)
    total = re.search(r"^\s*(\d+) requests in", text, re.MULTILINE)
    if rps is None or total is None:
        raise ValueError(f"wrk output has no Requests/sec or request count:\n{text}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    max_match = re.search(r"^\s+Latency\s+\S+\s+\S+\s+" + _LATENCY, text, re.MULTILINE)
    return WrkResult(
        requests=int(total.group(1)),
        requests_per_s=float(rps.group(1)),
        p50_ms=_latency(text, r"^\s+50%"),
        p99_ms=_latency(text, r"^\s+99%"),
        max_ms=to_ms(max_match.group(1), max_match.group(2)) if max_match else float("nan"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in sockets.groups()) if sockets else 0,
        raw=text,
    )


def run(
    url: str,
    duration_s: float,
    connections: int = 32,
    threads: int = 2,
    lua: str | None = None,
) -> WrkResult:
    """One wrk run, bounded by `duration_s` (+ a margin for the kill). 127.0.0.1 only."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"benchmarks only send traffic to 127.0.0.1, not {url}")
    seconds = max(1, round(duration_s))
    with tempfile.TemporaryDirectory(prefix="unkai-wrk-") as tmp:
        argv = [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--timeout",
            f"{WRK_TIMEOUT_S}s",
            "--latency",
        ]
        if lua is not None:
            script = Path(tmp) / "script.lua"
            script.write_text(lua)
            argv += ["-s", str(script)]
        done = subprocess.run(
            [*argv, url], capture_output=True, text=True, timeout=seconds + 30, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}: {done.stderr or done.stdout}")
    return parse(done.stdout)


def describe(label: str, result: WrkResult) -> str:
    errors = f", {result.non_2xx} non-2xx, {result.socket_errors} socket errors"
    return (
        f"{label:<34} {result.requests_per_s:>10,.0f} req/s  p50 {result.p50_ms:7.3f} ms  "
        f"p99 {result.p99_ms:7.3f} ms  max {result.max_ms:8.2f} ms  "
        f"({result.requests} requests{errors if result.errors else ''})"
    )
