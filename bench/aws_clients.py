"""boto3 against unkai vs boto3 against moto in server mode: Lambda Invoke round trips and SQS
send/receive/delete throughput, with the same client code in the same run.

    .venv/bin/python bench/aws_clients.py [--duration 5] [--rounds 3] [--quick] [--json F]

unkai: `unkai up bench/apps/hello` (its `hello` handler answers a small JSON document); a
queue created with boto3. moto: `python -m moto.server` on a free loopback port, with its
Lambda backend told not to use Docker (`/moto-api/config`), so its Invoke answers without
running any code, and the same function and queue created through boto3. moto is the field's
fake AWS: it is a generous baseline (it keeps state in memory, runs nothing and stores nothing
durably); unkai runs the handler in a real process and commits every queue operation to SQLite.

Runs (each bounded by a call count and by time; traffic stays on 127.0.0.1; one boto3 client
per side, created once, so connections are kept alive):
- invoke: sequential `lambda.invoke(FunctionName=..., Payload=...)` for `--duration` s (at most
  MAX_CALLS): calls/s and p50/p99 round trip.
- sqs: sequential rounds of `send_message_batch` (10 messages), `receive_message`
  (MaxNumberOfMessages 10) and `delete_message_batch`: messages/s through the three calls.
Rounds alternate (moto, unkai, moto, unkai, ...) and each side reports its median round.
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.processes import (
    Processes,
    free_port,
    install_signal_exit,
    python_argv,
    wait_ready,
)
from harness.results import Row, common_args, percentile, print_rows, write_json
from harness.unkai_node import start_node

BENCH_DIR = Path(__file__).resolve().parent
APP = BENCH_DIR / "apps" / "hello"
MAX_CALLS = 20_000
HANDLER = b"def hello(event, context):\n    return {'statusCode': 200, 'body': 'hello'}\n"


def client(service: str, url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"max_attempts": 0}),
    )


def start_moto(processes: Processes) -> str:
    port = free_port()
    proc = processes.start("moto", python_argv("-m", "moto.server", "-p", str(port)))
    wait_ready(proc, port, "/moto-api/", timeout_s=60)
    url = f"http://127.0.0.1:{port}"
    request = urllib.request.Request(
        f"{url}/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()
    lam = client("lambda", url)
    iam = client("iam", url)
    role = iam.create_role(
        RoleName="bench", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
    )["Role"]["Arn"]
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("handler.py", HANDLER)
    lam.create_function(
        FunctionName="hello",
        Runtime="python3.11",
        Role=role,
        Handler="handler.hello",
        Code={"ZipFile": zipped.getvalue()},
    )
    return url


def timed_invokes(lam: Any, duration_s: float) -> tuple[float, list[float]]:
    """(calls/s, latencies in ms) of sequential invokes for `duration_s`."""
    latencies: list[float] = []
    payload = b'{"name": "bench"}'
    start = time.perf_counter()
    deadline = start + duration_s
    while time.perf_counter() < deadline and len(latencies) < MAX_CALLS:
        t0 = time.perf_counter()
        answer = lam.invoke(FunctionName="hello", Payload=payload)
        answer["Payload"].read()
        latencies.append((time.perf_counter() - t0) * 1000)
        if answer.get("FunctionError"):
            raise RuntimeError(f"invoke failed: {answer}")
    return len(latencies) / (time.perf_counter() - start), latencies


def timed_queue(sqs: Any, url: str, duration_s: float) -> float:
    """Messages/s through send_message_batch + receive_message + delete_message_batch."""
    entries = [{"Id": str(i), "MessageBody": f"message {i}"} for i in range(10)]
    moved = 0
    start = time.perf_counter()
    deadline = start + duration_s
    while time.perf_counter() < deadline and moved < MAX_CALLS * 10:
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if got:
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
                ],
            )
        moved += len(got)
    return moved / (time.perf_counter() - start)


def alternate(
    rounds: int, sides: dict[str, Callable[[], float]], notes: list[str], label: str
) -> dict[str, float]:
    """Run each side `rounds` times, alternating; the median per side."""
    results: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, run in sides.items():
            results[name].append(run())
    for name, values in results.items():
        notes.append(f"{label} {name}: per round " + ", ".join(f"{v:,.0f}" for v in values))
    return {name: statistics.median(values) for name, values in results.items()}


def main() -> None:
    parser = common_args(__doc__.splitlines()[0], default_duration_s=5.0)
    parser.add_argument("--rounds", type=int, default=None, help="rounds per side (3, quick 1)")
    args = parser.parse_args()
    install_signal_exit()
    duration = 2.0 if args.quick else args.duration
    rounds = args.rounds or (1 if args.quick else 3)
    notes: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="unkai-bench-aws-") as tmp,
        Processes(Path(tmp)) as processes,
    ):
        moto_url = start_moto(processes)
        node = start_node(processes, APP, Path(tmp) / "data")
        unkai_url = node.base_url
        lambdas = {"moto": client("lambda", moto_url), "unkai": client("lambda", unkai_url)}
        queues = {"moto": client("sqs", moto_url), "unkai": client("sqs", unkai_url)}
        queue_urls = {
            name: sqs.create_queue(QueueName="bench")["QueueUrl"] for name, sqs in queues.items()
        }
        for lam in lambdas.values():  # warm-up: instances, connections
            timed_invokes(lam, 0.5)
        latencies: dict[str, list[float]] = {"moto": [], "unkai": []}

        def invoke_side(name: str) -> Callable[[], float]:
            def run() -> float:
                rate, measured = timed_invokes(lambdas[name], duration)
                latencies[name].extend(measured)
                return rate

            return run

        invoke = alternate(
            rounds, {n: invoke_side(n) for n in ("moto", "unkai")}, notes, "invoke calls/s"
        )
        queue = alternate(
            rounds,
            {
                n: (lambda n=n: timed_queue(queues[n], queue_urls[n], duration))
                for n in ("moto", "unkai")
            },
            notes,
            "sqs messages/s",
        )
    rows = [
        Row("boto3 invoke round trips", "calls/s", invoke["unkai"], invoke["moto"]),
        Row(
            "boto3 invoke p50",
            "ms",
            percentile(latencies["unkai"], 50),
            percentile(latencies["moto"], 50),
        ),
        Row(
            "boto3 invoke p99",
            "ms",
            percentile(latencies["unkai"], 99),
            percentile(latencies["moto"], 99),
        ),
        Row("boto3 SQS send 10 + receive + delete", "msg/s", queue["unkai"], queue["moto"]),
    ]
    notes.append(
        "baseline: moto server (in-memory, Lambda without Docker: Invoke runs no code); unkai "
        "runs the handler in a process and commits every queue call to SQLite"
    )
    print_rows("aws_clients", rows)
    for note in notes:
        print(note)
    write_json(args.json, "aws_clients", rows, notes)


if __name__ == "__main__":
    main()
