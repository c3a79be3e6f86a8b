"""Interleaved A/B of HTTP servers that are already running: which of two commits is faster.

    .venv/bin/python bench/ab.py [--rounds 8] [--duration 4] [--path /hello] [--cpu] \
        old=18086 new=18084 uv=18081

This machine's speed drifts by up to 40% within minutes, so two benchmark runs minutes apart
cannot tell a 10% change. Here every target is measured in every round, in a new random order
each round, with a warm-up run first; each target reports its median req/s, its median ratio
to the last target (the baseline, usually bare uvicorn), measured in the same round, and its
median p99. Start the servers yourself (a platform per commit, each from its own venv, so that
its instances import that commit's runtime too; docs/benchmarks.md shows how).

A target given as `name=port:pgid` (its process group, e.g. a platform started with `setsid`)
is stopped (SIGSTOP) while the others are measured, and each run then gets a 1 s warm-up. Why:
an idle server next to the one measured is not free. In session 11 a platform whose idle event
loop woke 84 times a second made the platform measured beside it read 7-15% slower in five
sets; with the idle ones stopped the same pair was within 5% either way (docs/benchmarks.md).

Every run also reads the CPU time of the target's main thread (its event loop) when its
process group is given: the median µs per request is printed with the req/s. `--cpu` also
gives each target's CPU time per request, by process and thread (from
`/proc/<pid>/task/<tid>/stat` before and after one more run of each): the event loop thread,
the SQLite writer thread, the instances, wrk, and what else ran meanwhile (kernel threads).
Linux only. Traffic goes to 127.0.0.1 only; each wrk run is bounded by `--duration`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import signal
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import wrk

Sample = tuple[str, str, int]  # (process command, thread name, CPU ticks)


def _threads() -> dict[tuple[int, int], Sample]:
    """Every thread's command, name and user+system ticks."""
    found: dict[tuple[int, int], Sample] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            for tid in os.listdir(f"/proc/{pid}/task"):
                task = Path(f"/proc/{pid}/task/{tid}")
                stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
                name = (task / "comm").read_text().strip()
                found[(int(pid), int(tid))] = (command, name, int(stat[11]) + int(stat[12]))
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
            continue  # gone meanwhile, or not ours to read
    return found


def cpu_per_request(url: str, duration_s: float) -> tuple[float, dict[str, float]]:
    """req/s of one wrk run and the CPU µs per request of every group of threads in it."""
    before = _threads()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = wrk.run(url, duration_s)
    after = _threads()
    requests = max(1, result.requests)
    per_tick_us = 1e6 / os.sysconf("SC_CLK_TCK") / requests
    groups: dict[str, float] = defaultdict(float)
    for key, (command, name, ticks) in after.items():
        spent = ticks - before[key][2] if key in before else ticks
        if spent > 0:
            main_thread = key[0] == key[1]
            label = f"{command[:60].strip()} [{'main' if main_thread else name}]"
            groups[label if command else f"[{name}]"] += spent * per_tick_us
    done = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, which has exited by now
    spent_s = done.ru_utime + done.ru_stime - children.ru_utime - children.ru_stime
    groups["wrk (the load generator)"] = spent_s * 1e6 / requests
    return result.requests_per_s, dict(groups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "targets", nargs="+", help="name=port or name=port:pgid; the last is the baseline"
    )
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument("--path", default="/hello")
    parser.add_argument("--cpu", action="store_true", help="also CPU µs per request")
    args = parser.parse_args()
    targets = dict(t.split("=", 1) for t in args.targets)
    urls = {
        name: f"http://127.0.0.1:{int(spec.partition(':')[0])}{args.path}"
        for name, spec in targets.items()
    }
    groups = {name: int(spec.partition(":")[2]) for name, spec in targets.items() if ":" in spec}
    try:
        _compare(args, urls, groups)
    finally:
        for group in groups.values():
            with contextlib.suppress(ProcessLookupError):  # a target that died meanwhile
                os.killpg(group, signal.SIGCONT)


def _only(groups: dict[str, int], name: str) -> None:
    """Let `name` run and stop every other target that has a process group."""
    for other, group in groups.items():
        os.killpg(group, signal.SIGCONT if other == name else signal.SIGSTOP)
    if groups:
        time.sleep(0.3)


def _main_thread_ticks(pid: int) -> int:
    """User+system clock ticks of process `pid`'s main thread (a platform's event loop)."""
    stat = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(stat[11]) + int(stat[12])


def _measure(
    url: str, duration_s: float, groups: dict[str, int], name: str
) -> tuple[wrk.WrkResult, float | None]:
    """One run: wrk's result, and the CPU µs per request of the target's main thread (when
    its process group leader is known, as for a platform started with `setsid`)."""
    group = groups.get(name)
    if groups:
        _only(groups, name)
        wrk.run(url, 1)  # after a stop: timers and caches catch up before the measured run
    before = _main_thread_ticks(group) if group else 0
    result = wrk.run(url, duration_s)
    if not group:
        return result, None
    spent = _main_thread_ticks(group) - before
    return result, spent * 1e6 / os.sysconf("SC_CLK_TCK") / max(1, result.requests)


def _compare(args: argparse.Namespace, urls: dict[str, str], groups: dict[str, int]) -> None:
    baseline = list(urls)[-1]
    for name, url in urls.items():
        _only(groups, name)
        wrk.run(url, 2)  # warm-up: instances started, caches filled
    rps: dict[str, list[float]] = defaultdict(list)
    p99: dict[str, list[float]] = defaultdict(list)
    ratios: dict[str, list[float]] = defaultdict(list)
    loop_us: dict[str, list[float]] = defaultdict(list)
    for _ in range(args.rounds):
        order = list(urls)
        random.shuffle(order)
        measured = {name: _measure(urls[name], args.duration, groups, name) for name in order}
        for name, (result, us) in measured.items():
            rps[name].append(result.requests_per_s)
            p99[name].append(result.p99_ms)
            ratios[name].append(result.requests_per_s / measured[baseline][0].requests_per_s)
            if us is not None:
                loop_us[name].append(us)
    for name in urls:
        main_cpu = (
            f"  main thread {statistics.median(loop_us[name]):.1f} µs/req "
            f"({min(loop_us[name]):.1f}-{max(loop_us[name]):.1f})"
            if loop_us[name]
            else ""
        )
        print(
            f"{name:12} median {statistics.median(rps[name]):8,.0f} req/s  "
            f"/{baseline} {statistics.median(ratios[name]):.3f} "
            f"(min {min(ratios[name]):.3f}, max {max(ratios[name]):.3f})  "
            f"p99 {statistics.median(p99[name]):.2f} ms{main_cpu}"
        )
    if args.cpu:
        for name, url in urls.items():
            _only(groups, name)
            rate, cpu = cpu_per_request(url, args.duration)
            print(f"\n{name}: {rate:,.0f} req/s; CPU µs per request")
            for label, us in sorted(cpu.items(), key=lambda item: -item[1])[:8]:
                print(f"  {us:7.1f}  {label}")


if __name__ == "__main__":
    main()
