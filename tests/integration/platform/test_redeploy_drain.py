"""A deploy that replaces a version lets the old version's running invocations finish, as
Lambda does: only new calls go to the new code."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from tests.integration.platform_process import PlatformProcess, wait_until, write_app

MANIFEST = """
service: drain
functions:
  slow:
    handler: app.slow
    timeout: 30
"""

CODE = """
import time

def slow(event, context):
    print("started", event.get("n"))
    time.sleep(event.get("sleep", 0))
    print("finished", event.get("n"))
    return {"code": "%s", "n": event.get("n")}
"""


def invoke(platform: PlatformProcess, stage: str, event: dict[str, object]) -> httpx.Response:
    with platform.client() as http:
        return http.post(
            "/2015-03-31/functions/slow/invocations",
            json=event,
            headers={"x-unkai-stage": stage},
            params={},
        )


def busy_instances(platform: PlatformProcess, stage: str) -> int:
    with platform.client() as http:
        listed = http.get("/_unkai/api/instances").json()
    rows = listed["instances"] if isinstance(listed, dict) else listed
    return sum(1 for i in rows if i["stage"] == stage and i["state"] == "busy")


def test_running_invocations_finish_on_the_old_code(
    platform: PlatformProcess, tmp_path: Path, stage: str
) -> None:
    # Given a function busy with a 3 s invocation of version one
    root = write_app(tmp_path / "app", MANIFEST, {"app.py": CODE % "one"})
    platform.cli("deploy", str(root), "--stage", stage, check=True)
    answers: list[httpx.Response] = []
    running = threading.Thread(
        target=lambda: answers.append(invoke(platform, stage, {"n": 1, "sleep": 3}))
    )
    running.start()
    assert wait_until(lambda: busy_instances(platform, stage) == 1)

    # When new code is deployed meanwhile
    (root / "app.py").write_text(CODE % "two")
    platform.cli("deploy", str(root), "--stage", stage, check=True)
    # Then new calls run the new code at once
    fresh = invoke(platform, stage, {"n": 2})
    assert fresh.status_code == 200 and fresh.json() == {"code": "two", "n": 2}

    # And the running invocation still ends normally, on the old code, with its output logged
    running.join(timeout=60)
    [answer] = answers
    assert answer.status_code == 200, answer.text
    assert "x-amz-function-error" not in answer.headers
    assert answer.json() == {"code": "one", "n": 1}
    logs = platform.cli("logs", "-f", "slow", "--stage", stage, check=True).stdout
    assert "finished 1" in logs, logs
    # And the old version's instance is gone once it finished
    assert wait_until(lambda: busy_instances(platform, stage) == 0)
