"""One `unkai up` node for a benchmark, and a kept-alive client for its HTTP and control API.

The node is started exactly as a user would: `<sys.executable> -m unkai up <APP_DIR>
--host 127.0.0.1 --port <P> --data-dir <tmp>`, and is ready when `/_unkai/health` answers 200.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.processes import Processes, free_port, python_argv, wait_ready

READY_TIMEOUT_S = 90.0


@dataclass
class Node:
    proc: subprocess.Popen[bytes]
    port: int
    ready_s: float

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_node(processes: Processes, app_dir: Path, data_dir: Path, name: str = "unkai") -> Node:
    """Start `unkai up` for `app_dir` and wait for health. Raises with the log tail on failure."""
    port = free_port()
    argv = python_argv(
        "-m",
        "unkai",
        "up",
        str(app_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    )
    proc = processes.start(name, argv)
    try:
        ready_s = wait_ready(proc, port, "/_unkai/health", timeout_s=READY_TIMEOUT_S)
    except (RuntimeError, TimeoutError) as exc:
        tail = processes.log_tail(name)
        raise RuntimeError(f"unkai up did not become ready: {exc}\n{tail}") from exc
    return Node(proc=proc, port=port, ready_s=ready_s)


class Client:
    """A kept-alive HTTP/1.1 connection to 127.0.0.1; reconnects once if the server closed it."""

    def __init__(self, port: int, timeout_s: float = 30.0) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in (1, 2):
            try:
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._conn.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def invoke(self, function: str, event: dict[str, Any] | None = None) -> tuple[int, bytes]:
        body = json.dumps(event or {}).encode()
        return self.request("POST", f"/2015-03-31/functions/{function}/invocations", body)

    def drain(self, function: str, stage: str = "dev") -> int:
        status, _ = self.request("POST", f"/_unkai/api/functions/{function}/drain?stage={stage}")
        return status

    def instances(self) -> dict[str, Any]:
        status, body = self.request("GET", "/_unkai/api/instances")
        if status != 200:
            raise RuntimeError(f"GET /_unkai/api/instances answered {status}: {body[:200]!r}")
        document: dict[str, Any] = json.loads(body)
        return document

    def function_instances(self, function: str) -> list[dict[str, Any]]:
        listed = self.instances().get("instances", [])
        return [i for i in listed if i.get("function") == function]

    def wait_no_instances(self, function: str, timeout_s: float = 10.0) -> bool:
        """After a drain: poll until `function` has no live instance. False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            live = [
                i
                for i in self.function_instances(function)
                if str(i.get("state", "")).upper() not in ("STOPPED", "FAILED")
            ]
            if not live:
                return True
            time.sleep(0.01)
        return False

    def wait_version_zygote(self, function: str, timeout_s: float = 10.0) -> bool:
        """Poll until a per-version zygote of `function` is listed. False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            zygotes = self.instances().get("zygotes", [])
            if any(f"/{function}:" in str(z.get("version_key", "")) for z in zygotes):
                return True
            time.sleep(0.01)
        return False

    def wait_for(
        self, method: str, path: str, timeout_s: float = 15.0, body: bytes | None = None
    ) -> list[int]:
        """Repeat a request until it answers 200; every status seen (the last is 200).

        Raises TimeoutError with the statuses if it never does. A non-200 before the 200 right
        after health answered is worth reporting: the node said ready before it was.
        """
        statuses: list[int] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status, answer = self.request(method, path, body)
            statuses.append(status)
            if status == 200:
                return statuses
            time.sleep(0.05)
        raise TimeoutError(
            f"{method} {path}: never 200 in {timeout_s:.0f} s; saw {statuses[-5:]}"
            f", last body {answer[:300]!r}"
        )

    def close(self) -> None:
        self._conn.close()
