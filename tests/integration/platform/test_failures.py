"""Lambda's failure semantics through the real platform: handler errors, timeouts, memory,
crashes, init errors and reserved concurrency."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx

from tests.integration.platform_process import PlatformProcess, write_app

HANDLERS = """
import os, time
def boom(event, context):
    raise ValueError("boom: " + str(event.get("n")))
def sleepy(event, context):
    time.sleep(event.get("seconds", 5))
    return os.getpid()
def hog(event, context):
    blocks = [bytearray(16 * 1024 * 1024) for _ in range(event.get("blocks", 40))]
    for block in blocks:
        block[::4096] = b"x" * len(block[::4096])
    return len(blocks)
def spawner(event, context):
    import subprocess
    child = subprocess.Popen(["sleep", "60"])
    with open(event["pid_file"], "w") as out:
        out.write(str(child.pid))
    time.sleep(5)

def die(event, context):
    if event.get("exit"):
        os._exit(3)
    if event.get("segv"):
        import signal
        os.kill(os.getpid(), signal.SIGSEGV)
    return os.getpid()
"""

MANIFEST = """
service: {service}
functions:
  boom:
    handler: app.boom
    events:
      - http: GET /boom
  sleepy:
    handler: app.sleepy
    timeout: 1
  hog:
    handler: app.hog
    memorySize: 128
    timeout: 30
  die:
    handler: app.die
  spawner:
    handler: app.spawner
    timeout: 1
  throttled:
    handler: app.die
    reservedConcurrency: 0
    events:
      - http: GET /throttled
  single:
    handler: app.sleepy
    reservedConcurrency: 1
    timeout: 5
"""


def invoke(platform: PlatformProcess, stage: str, name: str, event: str = "{}") -> httpx.Response:
    with platform.client() as http:
        return http.post(
            f"/2015-03-31/functions/{name}/invocations",
            content=event.encode(),
            headers={"x-unkai-stage": stage},
        )


def deploy(platform: PlatformProcess, apps: Path, stage: str, service: str) -> None:
    write_app(apps / service, MANIFEST.format(service=service), {"app.py": HANDLERS})
    platform.cli("deploy", str(apps / service), "--stage", stage, check=True)


def test_handler_exception_is_lambdas_error_document(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    deploy(platform, apps, stage, "f-boom")
    response = invoke(platform, stage, "boom", '{"n": 7}')
    assert response.status_code == 200
    assert response.headers["x-amz-function-error"] == "Unhandled"
    error: dict[str, Any] = response.json()
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "boom: 7"
    assert any("in boom" in frame for frame in error["stackTrace"])
    with platform.client() as http:
        routed = http.get(f"/{stage}/boom")
    assert routed.status_code == 502
    assert routed.json() == {"message": "Internal Server Error"}


def test_timeout_kills_the_instance_and_the_next_call_gets_a_fresh_one(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    deploy(platform, apps, stage, "f-timeout")
    before = invoke(platform, stage, "sleepy", '{"seconds": 0}').json()
    timed_out = invoke(platform, stage, "sleepy", '{"seconds": 5}')
    assert timed_out.headers["x-amz-function-error"] == "Unhandled"
    error = timed_out.json()
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]
    after = invoke(platform, stage, "sleepy", '{"seconds": 0}').json()
    assert after != before


def test_memory_limit_kills_the_instance_and_says_so(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    deploy(platform, apps, stage, "f-memory")
    small = invoke(platform, stage, "hog", '{"blocks": 1}')
    assert small.json() == 1
    response = invoke(platform, stage, "hog", '{"blocks": 40}')
    assert response.headers["x-amz-function-error"] == "Unhandled"
    error = response.json()
    assert error["errorType"] == "Runtime.OutOfMemory"
    assert "128 MB" in error["errorMessage"]
    assert invoke(platform, stage, "hog", '{"blocks": 1}').json() == 1


def test_crash_is_runtime_exit_error_and_the_instance_is_replaced(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    deploy(platform, apps, stage, "f-crash")
    pid = invoke(platform, stage, "die").json()
    crashed = invoke(platform, stage, "die", '{"exit": true}').json()
    assert crashed["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in crashed["errorMessage"]
    segv = invoke(platform, stage, "die", '{"segv": true}').json()
    assert segv["errorType"] == "Runtime.ExitError"
    assert "signal" in segv["errorMessage"]
    replaced = invoke(platform, stage, "die").json()
    assert isinstance(replaced, int) and replaced != pid


def test_init_error_is_reported_and_retried_on_the_next_call(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    write_app(
        apps / "init",
        """
service: f-init
functions:
  broken:
    handler: app.main
  missing:
    handler: app.nothere
""",
        {"app.py": "import not_a_module_anywhere\ndef main(e, c):\n    return 1\n"},
    )
    platform.cli("deploy", str(apps / "init"), "--stage", stage, check=True)
    for _ in range(2):
        error = invoke(platform, stage, "broken").json()
        assert error["errorType"] == "Runtime.ImportModuleError"
        assert "Unable to import module 'app'" in error["errorMessage"]
        assert "not_a_module_anywhere" in error["errorMessage"]


def test_reserved_concurrency_zero_throttles_every_call(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    deploy(platform, apps, stage, "f-throttle")
    response = invoke(platform, stage, "throttled")
    assert response.status_code == 429
    assert response.headers["x-amzn-errortype"] == "TooManyRequestsException"
    with platform.client() as http:
        routed = http.get(f"/{stage}/throttled")
    assert routed.status_code == 429
    cli = platform.cli("invoke", "-f", "throttled", "--stage", stage)
    assert cli.returncode == 1 and "concurrent" in cli.stderr


def test_reserved_concurrency_one_throttles_the_second_concurrent_call(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    deploy(platform, apps, stage, "f-single")

    async def two_at_once() -> list[int]:
        async with httpx.AsyncClient(base_url=platform.url, timeout=30) as http:

            async def call() -> int:
                r = await http.post(
                    "/2015-03-31/functions/single/invocations",
                    content=b'{"seconds": 1}',
                    headers={"x-unkai-stage": stage},
                )
                return r.status_code

            return sorted(await asyncio.gather(call(), call()))

    assert asyncio.run(two_at_once()) == [200, 429]


def test_a_timeout_also_kills_the_processes_the_handler_started(
    platform: PlatformProcess, apps: Path, stage: str, tmp_path: Path
) -> None:
    # Given a handler that starts a long-lived child process and then overruns its timeout
    deploy(platform, apps, stage, "f-spawn")
    pid_file = tmp_path / "child.pid"
    # When the invocation times out
    error = invoke(platform, stage, "spawner", json.dumps({"pid_file": str(pid_file)})).json()
    assert error["errorType"] == "Sandbox.Timedout"
    # Then the child it started is gone as well (bounded wait for the kernel to reap it)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _running(child):
        time.sleep(0.05)
    assert not _running(child)


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "zombie" not in status.lower()
