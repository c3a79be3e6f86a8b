"""The scheduling policy of the platform's threads and of its instances (docs/runtime.md)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.integration.platform_process import PlatformProcess, write_app

MANIFEST = """
service: {service}
functions:
  policy:
    handler: app.policy
    events:
      - http: GET /policy
"""

APP = """
import os
def policy(event, context):
    return {"pid": os.getpid(), "policy": os.sched_getscheduler(0)}
"""


def policy_app(root: Path, service: str) -> Path:
    return write_app(root, MANIFEST.format(service=service), {"app.py": APP})


def thread_policies(pid: int) -> dict[int, int]:
    """The scheduling policy of every thread of process `pid`, by thread id."""
    return {int(tid): os.sched_getscheduler(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}


def test_platform_threads_and_instances_run_under_sched_batch(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    # Given the shared platform (default settings) and a function deployed on it
    platform.cli("deploy", str(policy_app(apps / "p", "svc-policy")), "--stage", stage, check=True)
    # When the function is called over HTTP
    with platform.client() as http:
        answer = http.get(f"/{stage}/policy").json()
    # Then its instance runs under SCHED_BATCH, in a process of its own
    assert answer["policy"] == os.SCHED_BATCH
    assert answer["pid"] != platform.pid()
    # And so does every thread of the platform: the event loop and those it started
    threads = thread_policies(platform.pid())
    assert len(threads) >= 2, threads  # the event loop and at least the SQLite writer
    assert set(threads.values()) == {os.SCHED_BATCH}, threads


def test_no_batch_scheduling_keeps_the_platform_on_the_default_policy(tmp_path: Path) -> None:
    # Given a platform started with --no-batch-scheduling
    app = policy_app(tmp_path / "app", "svc-policy-off")
    node = PlatformProcess(tmp_path / "data", app_dir=app, extra_args=("--no-batch-scheduling",))
    node.start()
    try:
        # When the function is called
        with node.client() as http:
            answer = http.get("/policy").json()
        # Then the instance still runs under SCHED_BATCH (it never preempts the platform)
        assert answer["policy"] == os.SCHED_BATCH
        # And the platform's threads keep the default policy, so they preempt on wake-up
        threads = thread_policies(node.pid())
        assert len(threads) >= 2, threads
        assert set(threads.values()) == {os.SCHED_OTHER}, threads
    finally:
        node.stop()
