"""Deploy, stages, CLI listing and removal, logs, restarts after kill -9, scale to zero."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.deploy.harness import write_tiny_wheel
from tests.integration.platform_process import PlatformProcess, write_app

HELLO = """
import logging
logger = logging.getLogger()
logger.setLevel(logging.INFO)
print("init output")
def hello(event, context):
    print("printed", event.get("name"))
    logger.info("logged %s", event.get("name"))
    return {"statusCode": 200, "body": "hello " + str(event.get("name"))}
"""


def hello_app(root: Path, service: str = "greeter", path: str = "/hello") -> Path:
    return write_app(
        root,
        f"""
service: {service}
functions:
  hello:
    handler: app.hello
    events:
      - http: GET {path}
""",
        {"app.py": HELLO},
    )


def wait_for(predicate, timeout_s: float = 15.0, interval_s: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return False


def test_deploy_publishes_versions_only_when_something_changed(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    app = hello_app(apps / "v")
    first = platform.cli("deploy", str(app), "--stage", stage, check=True)
    assert "publish hello version 1" in first.stdout
    again = platform.cli("deploy", str(app), "--stage", stage, check=True)
    assert "nothing changed" in again.stdout
    (app / "app.py").write_text(HELLO.replace("hello ", "hi "))
    dry = platform.cli("deploy", str(app), "--stage", stage, "--dry-run", check=True)
    assert "publish hello version 2" in dry.stdout and "dry run" in dry.stdout
    platform.cli("deploy", str(app), "--stage", stage, check=True)
    listing = platform.cli("ls", "--stage", stage, check=True)
    assert "hello" in listing.stdout and " 2 " in listing.stdout
    with platform.client() as http:
        assert http.get(f"/{stage}/hello").text == "hi None"
        old = http.post(
            "/2015-03-31/functions/hello/invocations?Qualifier=1",
            content=b'{"name": "v1"}',
            headers={"x-unkai-stage": stage},
        )
    assert old.json()["body"] == "hello v1"
    assert old.headers["x-amz-executed-version"] == "1"


def test_stages_are_separate_namespaces(platform: PlatformProcess, apps: Path, stage: str) -> None:
    other = stage + "b"
    platform.cli("deploy", str(hello_app(apps / "one", path="/one")), "--stage", stage, check=True)
    platform.cli("deploy", str(hello_app(apps / "two", path="/two")), "--stage", other, check=True)
    with platform.client() as http:
        assert http.get(f"/{stage}/one").status_code == 200
        assert http.get(f"/{stage}/two").status_code == 404
        assert http.get(f"/{other}/two").status_code == 200
    removed = platform.cli("remove", str(apps / "one"), "--stage", stage, check=True)
    assert "remove" in removed.stdout
    with platform.client() as http:
        assert http.get(f"/{stage}/one").status_code == 404
        assert http.get(f"/{other}/two").status_code == 200
    info = platform.cli("info", "hello", "--stage", stage)
    assert info.returncode == 1 and "hello" in info.stderr


def test_a_function_owned_by_another_service_is_a_conflict(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    platform.cli(
        "deploy", str(hello_app(apps / "a", service="first")), "--stage", stage, check=True
    )
    clash = platform.cli(
        "deploy", str(hello_app(apps / "b", service="second", path="/b")), "--stage", stage
    )
    assert clash.returncode == 1
    assert "first" in clash.stderr and "second" in clash.stderr


def test_logs_have_start_end_report_and_are_queryable(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    platform.cli("deploy", str(hello_app(apps / "l")), "--stage", stage, check=True)
    invoked = platform.cli(
        "invoke", "-f", "hello", "-d", '{"name": "ada"}', "--stage", stage, "--log", check=True
    )
    assert "printed ada" in invoked.stdout

    def logs_contain(*needles: str) -> bool:
        out = platform.cli("logs", "-f", "hello", "--stage", stage).stdout
        return all(n in out for n in needles)

    assert wait_for(lambda: logs_contain("REPORT RequestId"))
    out = platform.cli("logs", "-f", "hello", "--stage", stage, check=True).stdout
    assert "START RequestId: " in out and "Version: $LATEST" in out
    assert "printed ada" in out
    assert "[INFO]" in out and "logged ada" in out
    assert "END RequestId: " in out
    report = next(line for line in out.splitlines() if "REPORT RequestId" in line)
    for field in (
        "Duration: ",
        "Billed Duration: ",
        "Memory Size: 128 MB",
        "Max Memory Used: ",
        "Init Duration: ",
    ):
        assert field in report
    filtered = platform.cli(
        "logs", "-f", "hello", "--stage", stage, "--filter", "printed", check=True
    ).stdout
    assert "printed ada" in filtered and "REPORT" not in filtered
    recent = platform.cli(
        "logs", "-f", "hello", "--stage", stage, "--since", "10m", check=True
    ).stdout
    assert "printed ada" in recent
    bad_since = platform.cli("logs", "-f", "hello", "--since", "yesterday-ish")
    assert bad_since.returncode == 1 and "--since" in bad_since.stderr


def test_logs_tail_shows_new_invocations_live(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    platform.cli("deploy", str(hello_app(apps / "t")), "--stage", stage, check=True)
    env = {**os.environ, "UNKAI_URL": platform.url}
    tail = subprocess.Popen(
        [sys.executable, "-m", "unkai", "logs", "-f", "hello", "-t", "--stage", stage],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        platform.cli(
            "invoke", "-f", "hello", "-d", '{"name": "live"}', "--stage", stage, check=True
        )
        assert tail.stdout is not None
        seen = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = tail.stdout.readline()
            seen.append(line)
            if "REPORT RequestId" in line and any("printed live" in s for s in seen):
                break
        assert any("printed live" in s for s in seen)
    finally:
        tail.kill()
        tail.wait(timeout=5)
        if tail.stdout is not None:
            tail.stdout.close()


def test_bad_manifest_is_refused_with_file_line_and_field(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    app = write_app(
        apps / "bad",
        """service: bad
functions:
  hello:
    handler: app.hello
    timeout: 0
""",
        {"app.py": HELLO},
    )
    done = platform.cli("deploy", str(app), "--stage", stage)
    assert done.returncode == 1
    assert "unkai.yml:5: functions.hello.timeout: must be between 1 and 900, got 0" in done.stderr
    assert "Traceback" not in done.stderr


def test_invoke_local_runs_the_handler_without_a_platform(apps: Path, tmp_path: Path) -> None:
    app = hello_app(apps / "local")
    env = {**os.environ, "UNKAI_URL": "http://127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, "-m", "unkai", "invoke", "local", "-f", "hello", "-d", '{"name": "ada"}'],
        cwd=app,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert '"hello ada"' in done.stdout
    assert "printed ada" in done.stdout + done.stderr


def _invoke_local(app: Path, function: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unkai", "invoke", "local", "-f", function, "-d", "{}"],
        cwd=app,
        capture_output=True,
        text=True,
        env={**os.environ, "UNKAI_URL": "http://127.0.0.1:9"},
        timeout=60,
    )


def test_invoke_local_enforces_timeout_and_memory_and_reports_a_crash(apps: Path) -> None:
    """The function's timeout and memory size end a local call as they end a deployed one
    (the process is killed: Sandbox.Timedout, Runtime.OutOfMemory), and a process that dies
    mid-call is a Runtime.ExitError that says how it ended, not a generic failure."""
    app = write_app(
        apps / "local-failures",
        """
service: failures
functions:
  slow:
    handler: handler.slow
    timeout: 1
  crash:
    handler: handler.crash
  hog:
    handler: handler.hog
    memorySize: 128
""",
        {
            "handler.py": """
import os
import time


def slow(event, context):
    print("left", context.get_remaining_time_in_millis() > 0)
    time.sleep(120)


def crash(event, context):
    os._exit(3)


def hog(event, context):
    held = []
    for _ in range(64):  # 1 GiB at most: without a limit the call ends, and the test fails
        held.append(bytearray(16 * 1024 * 1024))
        time.sleep(0.005)
    return "survived"
""",
        },
    )
    slow = _invoke_local(app, "slow")
    assert slow.returncode == 1, slow.stderr
    # stdout is the error document alone, as JSON (not wrapped at a terminal's width).
    doc = json.loads(slow.stdout)
    assert doc["errorType"] == "Sandbox.Timedout"
    assert doc["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
    assert "function error (Unhandled)" in slow.stderr
    assert "left True" in slow.stderr  # what it printed before the deadline is not lost
    crash = _invoke_local(app, "crash")
    assert crash.returncode == 1, crash.stderr
    doc = json.loads(crash.stdout)
    assert doc["errorType"] == "Runtime.ExitError"
    assert doc["errorMessage"].endswith("Error: Runtime exited with error: exit status 3")
    hog = _invoke_local(app, "hog")
    assert hog.returncode == 1, hog.stderr
    doc = json.loads(hog.stdout)
    assert doc["errorType"] == "Runtime.OutOfMemory"
    assert doc["errorMessage"].endswith("signal: killed (memory limit 128 MB exceeded)")
    assert "Traceback" not in slow.stderr + crash.stderr + hog.stderr


def test_requirements_are_installed_and_on_that_functions_path_only(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    wheel = write_tiny_wheel(apps / "deps" / "wheels", version="1.0")
    write_app(
        apps / "deps",
        """
service: deps
functions:
  uses:
    handler: app.uses
    requirements: requirements.txt
  plain:
    handler: other.plain
""",
        {
            "app.py": "import tinypkg\ndef uses(e, c):\n    return tinypkg.VERSION\n",
            "other.py": "def plain(e, c):\n    try:\n        import tinypkg\n"
            "    except ImportError:\n        return 'absent'\n    return 'present'\n",
            "requirements.txt": f"./wheels/{wheel}\n",
        },
    )
    platform.cli("deploy", str(apps / "deps"), "--stage", stage, check=True, timeout_s=300)
    with platform.client() as http:
        uses = http.post(
            "/2015-03-31/functions/uses/invocations",
            content=b"{}",
            headers={"x-unkai-stage": stage},
        )
        plain = http.post(
            "/2015-03-31/functions/plain/invocations",
            content=b"{}",
            headers={"x-unkai-stage": stage},
        )
    assert uses.json() == "1.0"
    assert plain.json() == "absent"


@pytest.fixture
def own_platform(tmp_path: Path) -> PlatformProcess:
    return PlatformProcess(
        tmp_path / "data", app_dir=hello_app(tmp_path / "app"), extra_args=("--keep-alive-s", "1")
    )


def test_state_survives_kill_9_and_restart(own_platform: PlatformProcess) -> None:
    own_platform.start()
    try:
        with own_platform.client() as http:
            assert http.get("/hello").status_code == 200
        pid = own_platform.pid()
        own_platform.kill9()
        own_platform.app_dir = None  # restart without redeploying: state must come back
        own_platform.start()
        assert own_platform.pid() != pid
        with own_platform.client() as http:
            response = http.get("/hello")
        assert response.status_code == 200 and response.text == "hello None"
        listing = own_platform.cli("ls", check=True).stdout
        assert "hello" in listing and "greeter" in listing
    finally:
        own_platform.stop()


def test_idle_instances_scale_to_zero(own_platform: PlatformProcess) -> None:
    own_platform.start()
    try:
        with own_platform.client() as http:
            assert http.get("/hello").status_code == 200

            def instance_count() -> int:
                return len(http.get("/_unkai/api/instances").json()["instances"])

            assert instance_count() >= 1
            assert wait_for(lambda: instance_count() == 0, timeout_s=20)
            assert http.get("/hello").status_code == 200
    finally:
        own_platform.stop()


def test_a_zygote_learns_the_pages_a_start_copies_and_cold_starts_still_serve(
    own_platform: PlatformProcess,
) -> None:
    own_platform.start()
    try:
        with own_platform.client() as http:

            def listed() -> dict[str, Any]:
                return dict(http.get("/_unkai/api/instances").json())

            # Given a first instance that served its first result
            assert http.get("/hello").status_code == 200
            [first] = listed()["instances"]

            # Then the base zygote learned from it which pages a start copies
            def base() -> dict[str, Any]:
                return dict(next(z for z in listed()["zygotes"] if z["version_key"] is None))

            assert wait_for(lambda: first["pid"] in base()["prefault_learned_from"])
            assert base()["prefault_pages"] > 0
            # And after a drain, the next cold start (from the spare that copied them) serves
            drained = http.post(f"/_unkai/api/functions/hello/drain?stage={first['stage']}")
            assert drained.status_code < 300
            assert wait_for(lambda: listed()["instances"] == [])
            response = http.get("/hello")
            assert response.status_code == 200
            [second] = listed()["instances"]
            assert second["pid"] != first["pid"]
    finally:
        own_platform.stop()


def _voluntary_switches(pid: int) -> int:
    """How often the process's main thread (the event loop) went to sleep so far."""
    for line in Path(f"/proc/{pid}/task/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise AssertionError(f"no voluntary_ctxt_switches for pid {pid}")


def test_an_idle_platform_sleeps(tmp_path: Path) -> None:
    """With a warm instance and nothing to do, the event loop wakes only for the once-a-second
    housekeeping (the reaper, the keep-alive sweep, the key counters): the memory watchdog and
    the log flusher sleep until there is work. They used to wake ~85 times a second."""
    platform = PlatformProcess(tmp_path / "data", app_dir=hello_app(tmp_path / "app"))
    platform.start()
    try:
        with platform.client() as http:
            assert http.get("/hello").status_code == 200
            assert len(http.get("/_unkai/api/instances").json()["instances"]) == 1
        time.sleep(0.5)  # the invocation's log records are committed meanwhile
        before = _voluntary_switches(platform.pid())
        time.sleep(3.0)
        woke = _voluntary_switches(platform.pid()) - before
        assert woke < 30, f"the idle event loop woke {woke} times in 3 s"
    finally:
        platform.stop()


def test_no_function_process_outlives_the_platform(own_platform: PlatformProcess) -> None:
    own_platform.start()
    with own_platform.client() as http:
        http.get("/hello")
        listed = http.get("/_unkai/api/instances").json()
    zygotes = [z["pid"] for z in listed["zygotes"]]
    pids = [i["pid"] for i in listed["instances"]] + zygotes

    def spares() -> set[int]:
        """The zygotes' children that are not listed instances: each keeps a spare forked
        ahead, which the platform does not know of."""
        children = {
            int(child)
            for zygote in zygotes
            for child in Path(f"/proc/{zygote}/task/{zygote}/children").read_text().split()
        }
        return children - set(pids)

    assert wait_for(lambda: bool(spares()), timeout_s=5)
    pids += spares()
    own_platform.kill9()

    def alive(pid: int) -> bool:
        try:
            return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
        except FileNotFoundError:
            return False

    def all_gone() -> bool:
        return not any(alive(pid) for pid in pids)

    assert wait_for(all_gone, timeout_s=15)
    json.dumps(listed)


def test_health_is_503_until_the_startup_deploy_is_applied(tmp_path: Path) -> None:
    # Given a platform starting with an app whose requirements take a while to install
    app = hello_app(tmp_path / "slow")
    wheel = write_tiny_wheel(app / "wheels", version="2.0")
    (app / "requirements.txt").write_text(f"./wheels/{wheel}\n")
    proc = PlatformProcess(tmp_path / "data", app_dir=app)
    seen: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            url = proc.url or _url_from_state(tmp_path / "data")
            if url:
                with contextlib.suppress(httpx.HTTPError):
                    seen.append(httpx.get(url + "/_unkai/health", timeout=2).status_code)
            time.sleep(0.005)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        # When it starts
        proc.start()
        with proc.client() as http:
            after = http.get("/_unkai/health")
            route = http.get("/hello")
    finally:
        stop.set()
        poller.join(timeout=5)
        proc.stop()
    # Then health was 503 while the deploy ran, and 200 once routes answer
    assert 503 in seen
    assert after.status_code == 200 and route.status_code == 200


def _url_from_state(data_dir: Path) -> str:
    try:
        return str(json.loads((data_dir / "platform.json").read_text())["url"])
    except (FileNotFoundError, ValueError, KeyError):
        return ""
