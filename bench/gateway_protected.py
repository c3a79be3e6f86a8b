"""Warm hello through a protected route vs the same route open, and vs bare uvicorn.

    .venv/bin/python bench/gateway_protected.py [--duration 10] [--quick] [--rounds N]

`bench/apps/protected` has one function behind `GET /open` and `GET /protected`; the second
needs a JWT (HS256, checked with scope `read`) and an `x-api-key` on a usage plan whose
throttle and quota are checked on every request but never refuse. The bench creates the key
through the control API and mints the token with PyJWT. wrk: 32 connections, 2 threads; the
three runs go in a new random order each round, for `--rounds` rounds, and each pair compared
reports its round with the median ratio (as in http_warm.py).
Target (issue 3): protected req/s >= 0.8 x open req/s.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import jwt as pyjwt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.processes import BENCH_DIR, Processes, install_signal_exit
from harness.results import Row, print_rows, write_json
from harness.unkai_node import Client, start_node
from http_warm import Run, alternate, bench_args, median_round, round_notes, start_uvicorn

APP_DIR = BENCH_DIR / "apps" / "protected"
SECRET = "bench-secret-for-hs256-signing-0123456789"


def headers_lua(headers: dict[str, str]) -> str:
    return "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in headers.items())


def credentials(client: Client) -> dict[str, str]:
    status, body = client.request(
        "POST", "/_unkai/api/keys", json.dumps({"name": "bench", "plan": "bench"}).encode()
    )
    if status != 201:
        raise RuntimeError(f"creating the API key answered {status}: {body[:300]!r}")
    now = int(time.time())
    token = pyjwt.encode(
        {
            "iss": "https://issuer.bench",
            "aud": "bench-client",
            "sub": "bench",
            "scope": "read",
            "iat": now,
            "exp": now + 3600,
        },
        SECRET,
        algorithm="HS256",
    )
    return {"authorization": f"Bearer {token}", "x-api-key": json.loads(body)["value"]}


def main() -> None:
    args = bench_args()
    install_signal_exit()
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="unkai-bench-") as tmp, Processes(Path(tmp)) as ps:
        _, port = start_uvicorn(ps, "raw_asgi", 1, "uvicorn")
        node = start_node(ps, APP_DIR, Path(tmp) / "data")
        client = Client(node.port)
        client.wait_for("GET", "/open")
        lua = headers_lua(credentials(client))
        runs: dict[str, Run] = {
            "uvicorn GET": (f"http://127.0.0.1:{port}/hello", None),
            "unkai open": (f"{node.base_url}/open", None),
            "unkai protected": (f"{node.base_url}/protected", lua),
        }
        measured = alternate(runs, args.rounds, args.duration, args.warmup, args.seed)
        client.close()
    opens, protecteds, bares = (
        measured["unkai open"],
        measured["unkai protected"],
        measured["uvicorn GET"],
    )
    protected, open_ = median_round(protecteds, opens)
    notes.append(round_notes("protected vs open", protecteds, opens))
    open_vs_bare, bare = median_round(opens, bares)
    notes.append(round_notes("open vs bare uvicorn", opens, bares))
    assert protected is not None and open_vs_bare is not None
    if protected.non_2xx:
        notes.append(f"protected route: {protected.non_2xx} non-2xx answers (bad credentials?)")
    rows = [
        Row(
            "protected vs open throughput",
            "req/s",
            protected.requests_per_s,
            open_.requests_per_s,
            "ratio >= 0.8",
            lambda _u, r: r is not None and r >= 0.8,
            note="baseline: the same route open",
        ),
        Row("open vs bare uvicorn", "req/s", open_vs_bare.requests_per_s, bare.requests_per_s),
        Row("protected p50", "ms", protected.p50_ms, open_.p50_ms),
        Row("protected p99", "ms", protected.p99_ms, open_.p99_ms),
    ]
    print_rows("gateway_protected", rows)
    for note in notes:
        print(note)
    write_json(args.json, "gateway_protected", rows, notes)


if __name__ == "__main__":
    main()
