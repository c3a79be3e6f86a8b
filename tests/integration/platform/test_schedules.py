"""Schedules through the real platform, with schedule time sped up (--schedule-clock-speed)
so an hourly schedule runs every few seconds of wall time: runs with the input, enable and
disable from the CLI, a missed run executed once on restart, bad expressions."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.integration.platform_process import PlatformProcess, wait_until, write_app

APP = """
import json, os, time
def tick(event, context):
    with open(os.environ["OUT"], "a") as out:
        out.write(json.dumps({"at": time.time(), "event": event}) + "\\n")
"""

MANIFEST = """
service: timers
provider:
  environment: {{OUT: {out}}}
functions:
  tick:
    handler: app.tick
    events:
      - schedule: {{rate: 'rate(1 hour)', input: {{job: compact}}, name: hourly}}
      - schedule: {{rate: 'cron(0 12 * * ? *)', timezone: Europe/Paris, name: noon, enabled: false}}
"""

#: One hour of schedule time per 1.5 s of wall time.
SPEED = "2400"


def runs(out: Path) -> list[dict[str, object]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def test_schedules_run_pause_and_catch_up_once_after_a_restart(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    app = write_app(tmp_path / "app", MANIFEST.format(out=out), {"app.py": APP})
    node = PlatformProcess(
        tmp_path / "data",
        app_dir=app,
        extra_args=("--schedule-clock-speed", SPEED, "--async-retry-base-s", "0.05"),
    )
    node.start()
    try:
        # The hourly schedule runs with its input; the disabled one does not
        assert wait_until(lambda: len(runs(out)) >= 2, timeout_s=20)
        assert all(r["event"] == {"job": "compact"} for r in runs(out))
        listing = node.cli("schedules", "ls", check=True).stdout
        assert "hourly" in listing and "noon" in listing and "cron(0 12 * * ? *)" in listing
        # Disabled from the CLI, it stops
        node.cli("schedules", "disable", "hourly", check=True)
        time.sleep(1.0)  # a run accepted just before the switch may still be finishing
        count = len(runs(out))
        time.sleep(3.5)  # more than two periods
        assert len(runs(out)) == count
        node.cli("schedules", "enable", "hourly", check=True)
        assert wait_until(lambda: len(runs(out)) > count, timeout_s=20)
        # Stopped for several periods, then started: the missed run happens once at start
        node.stop()
        stopped = len(runs(out))
        time.sleep(6.0)  # four periods of schedule time, while nothing runs
        node.app_dir = None
        node.start()
        assert wait_until(lambda: len(runs(out)) > stopped, timeout_s=20)
        time.sleep(0.6)  # less than half a period: a catch-up per missed period would show here
        assert len(runs(out)) == stopped + 1
    finally:
        node.stop()


def test_bad_schedules_name_line_and_problem(tmp_path: Path) -> None:
    cases = {
        "rate(5 weeks)": "neither 'rate(N minutes|hours|days)' nor 'cron(6 fields)'",
        "cron(0 12 * * MON *)": "one of day-of-month and day-of-week must be '?'",
    }
    node = PlatformProcess(tmp_path / "data")
    node.start()
    try:
        for index, (expression, problem) in enumerate(cases.items()):
            manifest = (
                "service: bad\nfunctions:\n  tick:\n    handler: app.tick\n    events:\n"
                f"      - schedule: '{expression}'\n"
            )
            app = write_app(tmp_path / f"bad{index}", manifest, {"app.py": APP})
            result = node.cli("deploy", str(app), "--dry-run")
            assert result.returncode == 1
            assert "unkai.yml:6: functions.tick.events[0].schedule" in result.stderr
            assert problem in result.stderr, result.stderr
    finally:
        node.stop()
