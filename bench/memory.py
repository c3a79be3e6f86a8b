"""Memory: the idle platform's RSS, and the extra memory (PSS) of each warm instance.

    .venv/bin/python bench/memory.py [--quick] [--instances 8] [--baseline-only]

1. Idle: RSS/PSS of the `unkai up` process after start and deploy of `bench/apps/memory`,
   before any invoke (target RSS < 80 MB). Baseline: an idle bare uvicorn raw ASGI server.
2. Per warm instance: K concurrent invokes of `sleepy` (sleeps 200 ms) so K instances start,
   then the PSS of every instance pid listed by `/_unkai/api/instances` (target mean and max
   < 15 MB). PSS splits pages shared with the zygote among the processes mapping them, so it is
   the cost of one more instance. Baseline: PSS of one fresh interpreter that imported the
   same handler module (and nothing else), idle.
3. Idle activity: with those instances warm and nothing to do, the platform's CPU time (all
   its threads) and its event loop's wake-ups per second, over IDLE_WATCH_S (quick: 2 s).
   Baseline: the idle bare uvicorn (whose main loop ticks every 0.1 s).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.proc_activity import Activity, idle_activity
from harness.proc_memory import Memory, read_memory
from harness.processes import BENCH_DIR, Processes, install_signal_exit, stop
from harness.results import Row, common_args, print_rows, write_json
from harness.unkai_node import Client, start_node
from http_warm import start_uvicorn

APP_DIR = BENCH_DIR / "apps" / "memory"
SETTLE_S = 1.0
IDLE_WATCH_S = 5.0
IMPORT_AND_WAIT = (
    "import sys; sys.path.insert(0, {app!r}); import handler; "
    "print('ready', flush=True); sys.stdin.read()"
)


def fresh_handler_memory() -> Memory:
    """Memory of an idle fresh interpreter that imported the handler module."""
    code = IMPORT_AND_WAIT.format(app=str(APP_DIR))
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("baseline interpreter did not import the handler")
        time.sleep(SETTLE_S)
        return read_memory(proc.pid)
    finally:
        stop(proc)


def idle_uvicorn(processes: Processes, watch_s: float) -> tuple[Memory, Activity]:
    proc, _port = start_uvicorn(processes, "raw_asgi", 1, "uvicorn-idle")
    time.sleep(SETTLE_S)
    memory = read_memory(proc.pid)
    activity = idle_activity(proc.pid, watch_s)
    processes.stop(proc)
    return memory, activity


def invoke_concurrently(port: int, function: str, count: int) -> list[int]:
    """`count` sync invokes at once, one connection each; their statuses."""
    statuses: list[int] = []
    lock = threading.Lock()

    def one() -> None:
        client = Client(port)
        try:
            status, _ = client.invoke(function)
        finally:
            client.close()
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return statuses


def instance_memory(client: Client, function: str) -> tuple[list[Memory], list[str]]:
    memories: list[Memory] = []
    notes: list[str] = []
    for instance in client.function_instances(function):
        try:
            memories.append(read_memory(int(instance["pid"])))
        except OSError as exc:
            notes.append(f"instance pid {instance['pid']}: {exc}")
    return memories, notes


def main() -> None:
    parser = common_args(__doc__.splitlines()[0], default_duration_s=0)
    parser.add_argument("--instances", type=int, default=8, help="K warm instances (8)")
    args = parser.parse_args()
    install_signal_exit()
    notes: list[str] = []
    fresh = fresh_handler_memory()
    idle = warm = activity = None
    watch_s = 2.0 if args.quick else IDLE_WATCH_S
    with tempfile.TemporaryDirectory(prefix="unkai-bench-") as tmp, Processes(Path(tmp)) as ps:
        base_idle, base_activity = idle_uvicorn(ps, watch_s)
        if not args.baseline_only:
            node = start_node(ps, APP_DIR, Path(tmp) / "data")
            time.sleep(SETTLE_S)
            idle = read_memory(node.proc.pid)
            client = Client(node.port)
            before = client.instances()
            notes.append(
                f"before any invoke: {len(before.get('instances', []))} instances, "
                f"{len(before.get('zygotes', []))} zygotes"
            )
            statuses = invoke_concurrently(node.port, "sleepy", args.instances)
            notes.append(f"{args.instances} concurrent invokes: statuses {sorted(statuses)}")
            warm, problems = instance_memory(client, "sleepy")
            notes += problems
            notes.append(
                f"warm sleepy instances listed: {len(warm)}; platform RSS after: "
                f"{read_memory(node.proc.pid).rss_mib:.1f} MiB"
            )
            client.close()
            time.sleep(SETTLE_S)  # the invocations' log records are committed meanwhile
            activity = idle_activity(node.proc.pid, watch_s)
            notes.append(f"idle activity watched for {watch_s:.0f} s, {len(warm)} instances warm")
    pss = [m.pss_mib for m in warm] if warm else None
    rows = [
        Row(
            "idle platform RSS",
            "MiB",
            idle and idle.rss_mib,
            base_idle.rss_mib,
            "unkai < 80 MB",
            lambda u, _r: u * 1.048576 < 80,
            "baseline: idle bare uvicorn",
        ),
        Row("idle platform PSS", "MiB", idle and idle.pss_mib, base_idle.pss_mib),
        Row(
            "warm instance PSS mean",
            "MiB",
            pss and statistics.mean(pss),
            fresh.pss_mib,
            "unkai < 15 MB",
            lambda u, _r: u * 1.048576 < 15,
            "baseline: fresh interpreter + handler",
        ),
        Row(
            "warm instance PSS max",
            "MiB",
            pss and max(pss),
            fresh.pss_mib,
            "unkai < 15 MB",
            lambda u, _r: u * 1.048576 < 15,
        ),
        Row(
            "warm instance RSS mean",
            "MiB",
            warm and statistics.mean(m.rss_mib for m in warm),
            fresh.rss_mib,
        ),
    ]
    rows += [
        Row(
            "idle platform CPU",
            "ms/s",
            activity and activity.cpu_ms_per_s,
            base_activity.cpu_ms_per_s,
            note="all threads, warm instances idle; baseline: idle bare uvicorn",
        ),
        Row(
            "idle event loop wake-ups",
            "1/s",
            activity and activity.wakeups_per_s,
            base_activity.wakeups_per_s,
        ),
    ]
    print_rows("memory", rows)
    for note in notes:
        print(note)
    write_json(args.json, "memory", rows, notes)


if __name__ == "__main__":
    main()
