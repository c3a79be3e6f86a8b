"""Queue -> function throughput (batch 10, sqlite backend) and async accept rate, vs redis.

    .venv/bin/python bench/queue_throughput.py [--duration 4] [--rounds 3] [--messages 200000]
                                               [--producers 2] [--quick] [--baseline-only]
                                               [--json F]

unkai: `unkai up` of a copy of `bench/apps/queue`, whose no-op function `consume` reads the
queue `bench-work` with `batchSize: 10, maximumConcurrency: 4` (4 consumers). 2 producer
processes each send SendMessageBatch requests of 10 messages (SQS's JSON protocol on one
kept-alive http.client connection each; no signature: loopback). A body is
`<producer>-<seq>@<send time>`; the function writes `<now> <bodies...>` once per batch to a
per-process file, so the bench gets each message's end-to-end latency (sent -> function running)
and checks that every message arrived exactly once.

Baseline, in the same run: `redis-server` on a free loopback port with no persistence
(`--save '' --appendonly no`) and redis-py, with the same 2 producers and 4 consumer processes
that call the function's own `record`. A producer sends one LPUSH of 10 messages per round trip
(as SendMessageBatch does). A consumer takes one batch per round trip with
`BLMPOP 0.1 1 key RIGHT COUNT 10` (Redis >= 7.0): that is what batch 10 means on our side (one
receive returns up to 10, one invocation handles them), so it is the baseline of the ratio. The
issue names BRPOP, which pops one message per round trip (10x the round trips for the same
work); it is measured too and reported in its own row, as the weaker baseline.

Runs (each bounded by a message count and by time; traffic stays on 127.0.0.1):
- throughput: the producers send as fast as they can for `--duration` s (at most `--messages`),
  while at most WINDOW_MESSAGES are sent but not yet consumed (so a slow side's backlog, and the
  time to drain it, stay bounded). msg/s = messages consumed / (last consumed - first sent).
  Rounds alternate (redis, unkai, redis, unkai, ...) and each side reports its median round,
  so drift in the shared 2-core machine's load hits both alike. The latency at saturation
  mostly measures the window and goes to the notes only.
- latency: the producers pace themselves to PACED_RATE_PER_S in all, far below both sides'
  throughput, for a few seconds: p50/p99 of sent -> consumer running (nearest-rank).
- async accept: the same producers send one `X-Amz-Invocation-Type: Event` invoke per request
  (202 once durably stored; the no-op `sink` then runs in the background) as fast as they can;
  baseline: one LPUSH of one message per round trip (redis without persistence stores nothing
  durably: a generous baseline).

Targets (issue 4): >= 10,000 msg/s through a no-op function with batch 10, and a ratio >= 0.5
against the redis round-trip baseline. A full run takes ~45 s, `--quick` (1 round of 2 s) ~20 s.
Everything shares the machine's 2 cores: the producers, the consumers (function instances or
redis consumers), the server (unkai up or redis-server) and this process.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import queue
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.processes import BENCH_DIR, Processes, free_port, install_signal_exit
from harness.results import Row, common_args, percentile, print_rows, write_json
from harness.unkai_node import Client, start_node

APP_DIR = BENCH_DIR / "apps" / "queue"
DEFAULT_OUT_DIR = "/tmp/unkai-bench-queue"  # the value in bench/apps/queue/unkai.yml
QUEUE = "bench-work"
PRODUCERS = 2
CONSUMERS = 4  # = maximumConcurrency in bench/apps/queue/unkai.yml
BATCH = 10
#: Producers pause while this many messages (all producers) are sent but not yet consumed.
WINDOW_MESSAGES = 2000
#: The paced latency run's total send rate: far below either side's throughput.
PACED_RATE_PER_S = 1000
WARMUP_MESSAGES = 2000
#: After the producers stop, the consumers get this long to finish the backlog.
DRAIN_TIMEOUT_S = 15.0
ACCEPT_REQUESTS = 100_000
INSTALL_HINT = "apt-get install -y redis-server; .venv/bin/python -m pip install redis"
BASELINE_CHOICE = (
    "baseline: redis consumers pop with BLMPOP COUNT 10, one batch per round trip like unkai's "
    "batch-10 receive, so that is the ratio's baseline; BRPOP (the issue's wording) pops one "
    "message per round trip and is reported as the weaker baseline"
)

# -- producers (each runs in a forked process) ---------------------------------------------


class SqsSender:
    """SendMessageBatch on one kept-alive connection; how many messages the queue took."""

    def __init__(self, port: int) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self._url = f"http://127.0.0.1:{port}/000000000000/{QUEUE}"
        self._headers = {
            "X-Amz-Target": "AmazonSQS.SendMessageBatch",
            "Content-Type": "application/x-amz-json-1.0",
        }

    def send(self, bodies: list[str]) -> int:
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)]
        body = json.dumps({"QueueUrl": self._url, "Entries": entries})
        self._conn.request("POST", "/", body=body, headers=self._headers)
        response = self._conn.getresponse()
        answer = response.read()
        if response.status != 200:
            return 0
        return len(json.loads(answer).get("Successful", []))


class InvokeSender:
    """One asynchronous (Event) invoke of the no-op `sink` per request; 1 if it got 202."""

    def __init__(self, port: int) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self._headers = {"X-Amz-Invocation-Type": "Event", "Content-Type": "application/json"}

    def send(self, bodies: list[str]) -> int:
        payload = json.dumps({"body": bodies[0]})
        self._conn.request(
            "POST", "/2015-03-31/functions/sink/invocations", body=payload, headers=self._headers
        )
        response = self._conn.getresponse()
        response.read()
        return 1 if response.status == 202 else 0


class RedisSender:
    """One LPUSH of all the bodies (consumers pop from the other end: first in, first out)."""

    def __init__(self, port: int) -> None:
        import redis

        self._redis = redis.Redis(host="127.0.0.1", port=port)

    def send(self, bodies: list[str]) -> int:
        self._redis.lpush(QUEUE, *bodies)
        return len(bodies)


SENDERS: dict[str, Callable[[int], Any]] = {
    "sqs": SqsSender,
    "invoke": InvokeSender,
    "redis": RedisSender,
}


@dataclass(frozen=True)
class Load:
    """What each producer does: at most `count` messages, `per_request` per request, from
    `start_at` until `deadline` (time.time()); one request every `interval_s` (0: flat out);
    `window` > 0 pauses it while that many of all producers' messages are not consumed."""

    sender: str
    port: int
    count: int
    per_request: int
    start_at: float
    deadline: float
    interval_s: float = 0.0
    window: int = 0
    producers: int = PRODUCERS


@dataclass
class Sent:
    offered: int = 0
    accepted: int = 0
    requests: int = 0
    paused_s: float = 0.0
    first_s: float = 0.0
    last_s: float = 0.0

    @property
    def refused(self) -> int:
        return self.offered - self.accepted


def pace(load: Load, sent: Sent, consumed: Synchronized[int]) -> None:
    """Wait for this request's slot (paced runs), then for room in the window."""
    if load.interval_s:
        time.sleep(max(0.0, sent.first_s + sent.requests * load.interval_s - time.time()))
    t0 = time.time()
    while (
        load.window
        and (sent.accepted * load.producers - consumed.value) > load.window
        and time.time() < load.deadline
    ):
        time.sleep(0.0005)
    sent.paused_s += time.time() - t0


def produce(load: Load, producer: int, consumed: Synchronized[int], results: Any) -> None:
    sender = SENDERS[load.sender](load.port)
    sent = Sent()
    time.sleep(max(0.0, load.start_at - time.time()))
    sent.first_s = time.time()
    while sent.offered < load.count and time.time() < load.deadline:
        pace(load, sent, consumed)
        n = min(load.per_request, load.count - sent.offered)
        stamp = f"{time.time():.6f}"
        bodies = [f"{producer}-{sent.offered + i}@{stamp}" for i in range(n)]
        sent.accepted += sender.send(bodies)
        sent.offered += n
        sent.requests += 1
    sent.last_s = time.time()
    results.put(sent)


def run_producers(load: Load, seen: Seen | None = None) -> Sent:
    """Fork `load.producers` producers, tell them what `seen` counts while they run; their
    totals (first and last over all of them). Raises RuntimeError if one of them failed."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    consumed = context.Value("q", 0, lock=False)
    procs = [
        context.Process(target=produce, args=(load, p, consumed, results), daemon=True)
        for p in range(load.producers)
    ]
    for proc in procs:
        proc.start()
    parts: list[Sent] = []
    give_up = time.time() + max(0.0, load.deadline - time.time()) + 30
    while len(parts) < len(procs) and time.time() < give_up:
        if seen is not None:
            consumed.value = seen.count()
        try:
            parts.append(results.get(timeout=0.01))
        except queue.Empty:
            if any(proc.exitcode for proc in procs):
                break  # its traceback is on stderr
    for proc in procs:
        proc.join(timeout=5)
    if len(parts) < len(procs):
        raise RuntimeError(f"{len(procs) - len(parts)} {load.sender} producers failed")
    return Sent(
        *(sum(getattr(p, f) for p in parts) for f in ("offered", "accepted", "requests")),
        paused_s=max(p.paused_s for p in parts),
        first_s=min(p.first_s for p in parts),
        last_s=max(p.last_s for p in parts),
    )


# -- what the consumers saw ----------------------------------------------------------------


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    duplicates: int = 0
    last_s: float = 0.0

    def add(self, line: str) -> None:
        now, *bodies = line.split(" ")
        now_s = float(now)
        self.last_s = max(self.last_s, now_s)
        for body in bodies:
            ident, _, sent = body.partition("@")
            self.latencies_ms.append((now_s - float(sent)) * 1000)
            if ident in self.ids:
                self.duplicates += 1
            self.ids.add(ident)


class Seen:
    """The `seen-<pid>.txt` files the consumers append to: `count` is cheap (it only counts
    the spaces of new complete lines) and runs during the load; `tally` parses after it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._start: dict[Path, int] = {}
        self._counted: dict[Path, int] = {}
        self._messages = 0

    def mark(self) -> None:
        """A new run starts: what the files hold so far belongs to earlier runs."""
        self.count()
        self._start, self._messages = dict(self._counted), 0

    def count(self) -> int:
        """Messages consumed since `mark`."""
        for path in self.directory.glob("seen-*.txt"):
            offset = self._counted.get(path, 0)
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self._counted[path] = offset + len(complete)
            self._messages += complete.count(b" ")
        return self._messages

    def wait_for(self, expected: int, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while (seen := self.count()) < expected and time.monotonic() < deadline:
            time.sleep(0.02)
        return seen

    def tally(self) -> Tally:
        tally = Tally()
        for path, end in self._counted.items():
            with path.open("rb") as f:
                f.seek(self._start.get(path, 0))
                text = f.read(end - self._start.get(path, 0)).decode()
            for line in text.splitlines():
                tally.add(line)
        return tally


@dataclass(frozen=True)
class Outcome:
    label: str
    sent: Sent
    tally: Tally

    @property
    def messages(self) -> int:
        return len(self.tally.latencies_ms)

    @property
    def wall_s(self) -> float:
        return self.tally.last_s - self.sent.first_s

    @property
    def per_s(self) -> float:
        return self.messages / self.wall_s if self.messages and self.wall_s > 0 else 0.0

    def p(self, q: float) -> float:
        return percentile(self.tally.latencies_ms, q) if self.messages else float("nan")

    def describe(self) -> str:
        lost = self.sent.accepted - len(self.tally.ids)
        problems = f", LOST {lost}" if lost else ""
        problems += f", {self.tally.duplicates} duplicates" if self.tally.duplicates else ""
        problems += f", {self.sent.refused} refused" if self.sent.refused else ""
        paused = (
            f", producers paused {self.sent.paused_s:.2f} s" if self.sent.paused_s > 0.05 else ""
        )
        return (
            f"{self.label:<26} {self.per_s:>9,.0f} msg/s  p50 {self.p(50):7.2f} ms  "
            f"p99 {self.p(99):7.2f} ms  ({self.messages} in {self.wall_s:.2f} s{paused}{problems})"
        )


# -- the two sides -------------------------------------------------------------------------


def consume(port: int, out_dir: Path, batch: int, stop: Event, deadline: float) -> None:
    """One redis consumer: pop up to `batch` per round trip, then the function's `record`."""
    import redis

    os.environ["BENCH_OUT_DIR"] = str(out_dir)
    sys.path.insert(0, str(APP_DIR))
    from handler import record

    client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    while not stop.is_set() and time.time() < deadline:
        if batch == 1:
            got = client.brpop([QUEUE], timeout=0.1)
            bodies = [got[1]] if got else []
        else:
            got = client.blmpop(0.1, 1, QUEUE, direction="RIGHT", count=batch)
            bodies = got[1] if got else []
        if bodies:
            record(bodies)


class RedisSide:
    key, label, sender, accept_sender = "redis", "redis", "redis", "redis"

    def __init__(self, port: int, tmp: Path) -> None:
        self.port = port
        self._tmp = tmp
        self._runs = 0

    def run(self, label: str, load: Load, batch: int = BATCH) -> Outcome:
        """CONSUMERS consumers (fresh, on a fresh output dir), the producers, the backlog."""
        self._runs += 1
        run_dir = self._tmp / f"redis-{self._runs}"
        run_dir.mkdir()
        context = multiprocessing.get_context("fork")
        stop = context.Event()
        until = load.deadline + DRAIN_TIMEOUT_S
        consumers = [
            context.Process(
                target=consume, args=(self.port, run_dir, batch, stop, until), daemon=True
            )
            for _ in range(CONSUMERS)
        ]
        for proc in consumers:
            proc.start()
        seen = Seen(run_dir)
        sent = run_producers(load, seen)
        seen.wait_for(sent.accepted, DRAIN_TIMEOUT_S)
        stop.set()
        for proc in consumers:
            proc.join(timeout=5)
        return Outcome(label, sent, seen.tally())


class UnkaiSide:
    key, label, sender, accept_sender = "unkai", "unkai", "sqs", "invoke"

    def __init__(self, port: int, out_dir: Path) -> None:
        self.port = port
        self._seen = Seen(out_dir)

    def run(self, label: str, load: Load) -> Outcome:
        self._seen.mark()
        sent = run_producers(load, self._seen)
        self._seen.wait_for(sent.accepted, DRAIN_TIMEOUT_S)
        return Outcome(label, sent, self._seen.tally())


def start_redis(processes: Processes, tmp: Path) -> RedisSide | None:
    """redis-server (>= 7.0, for BLMPOP) on a free loopback port without persistence; None,
    and why, when it or redis-py is missing."""
    binary = shutil.which("redis-server")
    try:
        import redis
    except ImportError:
        redis = None  # type: ignore[assignment]
    if binary is None or redis is None:
        print(f"redis baseline not measured: redis-server or redis-py is missing ({INSTALL_HINT})")
        return None
    port = free_port()
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
    proc = processes.start("redis", [*argv, "--appendonly", "no", "--dir", str(tmp)])
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            version = str(client.info("server")["redis_version"])
        except redis.ConnectionError:
            time.sleep(0.02)
            continue
        if tuple(int(part) for part in version.split(".")[:2]) >= (7, 0):
            return RedisSide(port, tmp)
        print(f"redis baseline not measured: BLMPOP needs redis-server >= 7.0, not {version}")
        return None
    raise RuntimeError(f"redis-server did not answer: {processes.log_tail('redis')}")


def start_unkai(processes: Processes, tmp: Path) -> tuple[UnkaiSide, float]:
    """`unkai up` of a copy of bench/apps/queue whose function writes into `tmp`."""
    out_dir = tmp / "unkai-seen"
    out_dir.mkdir()
    app = tmp / "app"
    shutil.copytree(APP_DIR, app, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = app / "unkai.yml"
    manifest.write_text(manifest.read_text().replace(DEFAULT_OUT_DIR, str(out_dir)))
    node = start_node(processes, app, tmp / "data")
    return UnkaiSide(node.port, out_dir), node.ready_s


def queue_state(port: int) -> str:
    """The queue's visible and in-flight counts (SQS's GetQueueAttributes) and instances."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = {"QueueUrl": f"http://127.0.0.1:{port}/000000000000/{QUEUE}", "AttributeNames": ["All"]}
    headers = {
        "X-Amz-Target": "AmazonSQS.GetQueueAttributes",
        "Content-Type": "application/x-amz-json-1.0",
    }
    conn.request("POST", "/", body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    answer = json.loads(response.read() or b"{}")
    conn.close()
    attributes = answer.get("Attributes", {})
    client = Client(port)
    instances = len(client.function_instances("consume"))
    client.close()
    return (
        f"queue {QUEUE} after the runs: visible {attributes.get('ApproximateNumberOfMessages')}"
        f", in flight {attributes.get('ApproximateNumberOfMessagesNotVisible')}"
        f" (GetQueueAttributes {response.status}); instances of consume: {instances}"
    )


# -- the runs ------------------------------------------------------------------------------


def flat_out(sender: str, port: int, args: argparse.Namespace, count: int) -> Load:
    start = time.time() + 0.2
    n = args.producers
    return Load(
        sender, port, count // n, BATCH, start, start + args.duration, 0.0, WINDOW_MESSAGES, n
    )


def paced(sender: str, port: int, args: argparse.Namespace) -> Load:
    start = time.time() + 0.2
    n = args.producers
    count = int(PACED_RATE_PER_S * args.paced_s / n)
    interval_s = n * BATCH / PACED_RATE_PER_S
    return Load(sender, port, count, BATCH, start, start + args.paced_s + 5, interval_s, 0, n)


def accepting(sender: str, port: int, args: argparse.Namespace) -> Load:
    start = time.time() + 0.2
    n = args.producers
    return Load(sender, port, ACCEPT_REQUESTS // n, 1, start, start + args.accept_s, 0.0, 0, n)


@dataclass
class Results:
    throughput: dict[str, list[Outcome]] = field(default_factory=dict)
    paced: dict[str, Outcome] = field(default_factory=dict)
    accept: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, key: str, result: Outcome) -> None:
        print(result.describe(), flush=True)
        self.throughput.setdefault(key, []).append(result)

    def median(self, key: str) -> Outcome | None:
        runs = sorted(self.throughput.get(key, []), key=lambda r: r.per_s)
        return runs[(len(runs) - 1) // 2] if runs else None

    def accepted(self, key: str, label: str, sent: Sent) -> None:
        wall_s = sent.last_s - sent.first_s
        rate = sent.accepted / wall_s if wall_s > 0 else 0.0
        refused = f", {sent.refused} refused" if sent.refused else ""
        print(f"{label:<26} {rate:>9,.0f} req/s  ({sent.accepted} in {wall_s:.2f} s{refused})")
        self.accept[key] = rate


def measure(args: argparse.Namespace, tmp: Path, ps: Processes) -> Results:
    """Every run, in an order that leaves unkai's async backlog (accept runs) to the end."""
    res = Results(notes=[BASELINE_CHOICE])
    redis = start_redis(ps, tmp)
    unkai = None
    if not args.baseline_only:
        unkai, ready_s = start_unkai(ps, tmp)
        warm = unkai.run("unkai warm-up", flat_out("sqs", unkai.port, args, WARMUP_MESSAGES))
        res.notes.append(f"unkai ready in {ready_s:.1f} s; {warm.describe()}")
    sides: list[RedisSide | UnkaiSide] = [s for s in (redis, unkai) if s is not None]
    for number in range(1, args.rounds + 1):
        for side in sides:
            load = flat_out(side.sender, side.port, args, args.messages)
            res.add(side.key, side.run(f"{side.label} batch 10 #{number}", load))
    if redis is not None:
        load = flat_out("redis", redis.port, args, args.messages)
        res.add("brpop", redis.run("redis BRPOP (1 per pop)", load, batch=1))
    for side in sides:
        res.paced[side.key] = side.run(f"{side.label} paced", paced(side.sender, side.port, args))
        print(res.paced[side.key].describe(), flush=True)
    if unkai is not None:
        res.notes.append(queue_state(unkai.port))
    for side in sides:
        sent = run_producers(accepting(side.accept_sender, side.port, args))
        res.accepted(side.key, f"{side.label} accept ({side.accept_sender})", sent)
    return res


def rows(res: Results) -> list[Row]:
    unkai, redis, brpop = res.median("unkai"), res.median("redis"), res.median("brpop")
    paced_unkai, paced_redis = res.paced.get("unkai"), res.paced.get("redis")
    at = f"at {PACED_RATE_PER_S:,} msg/s"
    return [
        Row(
            "queue -> function, batch 10, vs redis BLMPOP COUNT 10",
            "msg/s",
            unkai and unkai.per_s,
            redis and redis.per_s,
            "unkai >= 10,000 msg/s and ratio >= 0.5",
            lambda u, r: u >= 10_000 and r is not None and r >= 0.5,
        ),
        Row(
            "queue -> function, batch 10, vs redis BRPOP",
            "msg/s",
            unkai and unkai.per_s,
            brpop and brpop.per_s,
            "ratio >= 0.5 (against the issue's BRPOP)",
            lambda _u, r: r is not None and r >= 0.5,
        ),
        Row(
            f"end-to-end p50 {at}",
            "ms",
            paced_unkai and paced_unkai.p(50),
            paced_redis and paced_redis.p(50),
        ),
        Row(
            f"end-to-end p99 {at}",
            "ms",
            paced_unkai and paced_unkai.p(99),
            paced_redis and paced_redis.p(99),
        ),
        Row(
            "async accept, Event invoke vs LPUSH of 1",
            "req/s",
            res.accept.get("unkai"),
            res.accept.get("redis"),
        ),
    ]


def round_notes(res: Results) -> None:
    for key, runs in res.throughput.items():
        res.notes.append(
            f"{key}: msg/s per round "
            + ", ".join(f"{r.per_s:,.0f}" for r in runs)
            + f"; latency at saturation (window {WINDOW_MESSAGES} messages), p50/p99 ms "
            + ", ".join(f"{r.p(50):.1f}/{r.p(99):.1f}" for r in runs)
        )


def bench_args() -> argparse.Namespace:
    parser = common_args(__doc__.splitlines()[0], default_duration_s=4)
    parser.add_argument("--messages", type=int, default=200_000, help="cap per throughput run")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per side (3, quick 1)")
    parser.add_argument(
        "--producers", type=int, default=PRODUCERS, help=f"producers, both sides ({PRODUCERS})"
    )
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.duration = 2.0 if args.quick else args.duration
    args.paced_s = 2.0 if args.quick else 3.0
    args.accept_s = 2.0 if args.quick else 3.0
    return args


def main() -> None:
    args = bench_args()
    install_signal_exit()
    with tempfile.TemporaryDirectory(prefix="unkai-bench-") as tmp, Processes(Path(tmp)) as ps:
        res = measure(args, Path(tmp), ps)
    round_notes(res)
    table = rows(res)
    print_rows("queue_throughput", table)
    for note in res.notes:
        print(note)
    write_json(args.json, "queue_throughput", table, res.notes)


if __name__ == "__main__":
    main()
