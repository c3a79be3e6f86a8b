"""API keys and usage plans through the real platform and CLI: `unkai keys`, `x-api-key`,
per-key throttles and quotas, quotas that survive a restart, revocation."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from tests.integration.platform_process import PlatformProcess, write_app

APP = """
def hello(event, context):
    return {"ok": True}
"""

MANIFEST = """
service: keyed
provider:
  httpApi:
    usagePlans:
      small: {quota: {limit: 3, period: DAY}}
      burst: {throttle: {rate: 0.1, burst: 2}}
functions:
  hello:
    handler: app.hello
    events:
      - http: {method: GET, path: /private, apiKeyRequired: true}
      - http: GET /public
"""


def deploy(platform: PlatformProcess, root: Path, stage: str) -> None:
    write_app(root, MANIFEST, {"app.py": APP})
    platform.cli("deploy", str(root), "--stage", stage, check=True)


def create_key(platform: PlatformProcess, name: str, plan: str, stage: str) -> str:
    done = platform.cli("keys", "create", name, "--plan", plan, "--stage", stage, check=True)
    value = done.stdout.strip().splitlines()[-1]
    assert len(value) >= 20, done.stdout
    return value


def test_a_route_that_requires_a_key_refuses_without_one_and_serves_with_one(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    deploy(platform, apps / "k", stage)
    value = create_key(platform, "alice", "small", stage)
    with platform.client() as http:
        missing = http.get(f"/{stage}/private")
        wrong = http.get(f"/{stage}/private", headers={"x-api-key": "x" * 40})
        good = http.get(f"/{stage}/private", headers={"x-api-key": value})
        public = http.get(f"/{stage}/public")
    assert (missing.status_code, missing.json()) == (403, {"message": "Forbidden"})
    assert wrong.status_code == 403
    assert (good.status_code, good.json()) == (200, {"ok": True})
    assert public.status_code == 200
    # The value is listed nowhere, and a key of one stage is not a key of another
    listing = platform.cli("keys", "ls", "--stage", stage, check=True).stdout
    assert "alice" in listing and value not in listing
    with platform.client() as http:
        assert http.get("/private", headers={"x-api-key": value}).status_code in (403, 404)


def test_quota_and_key_throttle_answer_429_and_revoke_refuses(
    platform: PlatformProcess, apps: Path, stage: str
) -> None:
    deploy(platform, apps / "k", stage)
    small = create_key(platform, "small-key", "small", stage)
    bursty = create_key(platform, "bursty-key", "burst", stage)
    with platform.client() as http:
        quota = [http.get(f"/{stage}/private", headers={"x-api-key": small}) for _ in range(5)]
        throttled = [
            http.get(f"/{stage}/private", headers={"x-api-key": bursty}).status_code
            for _ in range(4)
        ]
    assert [r.status_code for r in quota] == [200, 200, 200, 429, 429]
    assert quota[-1].json() == {"message": "Limit Exceeded"}
    assert throttled[:2] == [200, 200] and throttled[2:] == [429, 429]
    platform.cli("keys", "revoke", "bursty-key", "--stage", stage, check=True)
    with platform.client() as http:
        assert http.get(f"/{stage}/private", headers={"x-api-key": bursty}).status_code == 403
    missing = platform.cli("keys", "revoke", "bursty-key", "--stage", stage)
    assert missing.returncode == 1 and "no API key 'bursty-key'" in missing.stderr


def test_bad_key_requests_name_what_is_wrong(platform: PlatformProcess, stage: str) -> None:
    short = platform.cli("keys", "create", "k", "--plan", "p", "--stage", stage, "--value", "abc")
    assert short.returncode == 1 and "at least 20 characters" in short.stderr
    platform.cli("keys", "create", "dup", "--plan", "p", "--stage", stage, check=True)
    again = platform.cli("keys", "create", "dup", "--plan", "p", "--stage", stage)
    assert again.returncode == 1 and "exists" in again.stderr


def test_keys_are_stored_hashed_and_quotas_survive_a_restart(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", MANIFEST, {"app.py": APP})
    node = PlatformProcess(tmp_path / "data", app_dir=app)
    node.start()
    try:
        value = create_key(node, "carol", "small", "dev")
        with httpx.Client(base_url=node.url) as http:
            assert [
                http.get("/private", headers={"x-api-key": value}).status_code for _ in range(2)
            ] == [200, 200]
        node.stop()
        database = next((tmp_path / "data").glob("*.db"))
        with sqlite3.connect(database) as db:
            stored = "\n".join(str(row) for row in db.execute("SELECT * FROM documents"))
        assert "carol" in stored and value not in stored
        node.app_dir = None
        node.start()
        with httpx.Client(base_url=node.url) as http:
            statuses = [
                http.get("/private", headers={"x-api-key": value}).status_code for _ in range(2)
            ]
        # 2 of the day's 3 were used before the restart: one more passes, then the quota
        assert statuses == [200, 429]
    finally:
        node.stop()
