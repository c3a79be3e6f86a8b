"""The no-op consumer of bench/queue_throughput.py, shared with its redis baseline.

`consume` is the function behind the `bench-work` queue (batch 10): per batch it writes one
line, `<now> <body> <body> ...`, to `seen-<pid>.txt` in `$BENCH_OUT_DIR`. A body is
`<producer>-<seq>@<send time>` (time.time(), seconds), so the bench computes end-to-end latency
per message and finds duplicates or losses. The redis consumers call `record` too, so both
sides pay the same per-batch cost: one line-buffered write, no parsing.

`sink` is the target of the async accept run: it does nothing.
"""

import os
import time

_out = None
_out_pid = 0


def record(bodies):
    """Append `<now> <bodies...>` to this process's file (opened after the fork that made it)."""
    global _out, _out_pid
    if _out is None or _out_pid != os.getpid():
        path = os.path.join(os.environ["BENCH_OUT_DIR"], f"seen-{os.getpid()}.txt")
        _out, _out_pid = open(path, "a", buffering=1), os.getpid()  # noqa: SIM115
    _out.write(f"{time.time():.6f} {' '.join(bodies)}\n")


def consume(event, context):
    record([r["body"] for r in event["Records"]])


def sink(event, context):
    return None
