"""A real `unkai up` process on 127.0.0.1 for integration tests: start, wait, kill, restart.

Readiness is the `unkai ready <url>` line the platform prints once it serves; nothing sleeps.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3
import httpx
from botocore.config import Config

START_TIMEOUT_S = 30.0


@dataclass
class PlatformProcess:
    data_dir: Path
    app_dir: Path | None = None
    extra_args: Sequence[str] = ()
    url: str = ""
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def start(self, port: int = 0) -> PlatformProcess:
        args = [
            sys.executable,
            "-m",
            "unkai",
            "up",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]
        if self.app_dir is not None:
            args.append(str(self.app_dir))
        env = {k: v for k, v in os.environ.items() if not k.startswith("UNKAI_")}
        env["COLUMNS"] = "200"
        self._lines = queue.Queue()
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        threading.Thread(target=self._pump, args=(self.process.stdout,), daemon=True).start()
        self.url = self._wait_ready()
        return self

    def _pump(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                self.output.append(line)
                self._lines.put(line)
        self._lines.put(None)

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                raise RuntimeError("unkai up exited while starting:\n" + "".join(self.output))
            if line.startswith("unkai ready "):
                return line.split()[2]
        raise RuntimeError("unkai up did not become ready:\n" + "".join(self.output))

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60.0)

    def aws(self, service: str, config: Config | None = None, region: str = "us-east-1") -> Any:
        """A boto3 client of `service` for this platform, unchanged but for the endpoint (any
        key: these platforms do not check signatures unless started with --aws-auth on)."""
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=config,
        )

    def cli(
        self, *args: str, check: bool = False, timeout_s: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the real `unkai` CLI against this platform."""
        env = {**os.environ, "UNKAI_URL": self.url, "COLUMNS": "200", "NO_COLOR": "1"}
        done = subprocess.run(
            [sys.executable, "-m", "unkai", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout_s,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"unkai {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def kill9(self) -> None:
        """SIGKILL the platform process alone (its children see their sockets close)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._drained()

    def _drained(self) -> None:
        """Wait until the output pump saw EOF (and closed the pipe)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self._lines.get(timeout=0.5) is None:
                    return
            except queue.Empty:
                continue

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        self._drained()

    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_kb(self, *, peak: bool = False) -> int:
        """The platform process's resident set now (VmRSS), or its peak so far (VmHWM), KiB."""
        field = "VmHWM:" if peak else "VmRSS:"
        status = Path(f"/proc/{self.pid()}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith(field))
        return int(line.split()[1])


def write_app(root: Path, manifest: str, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "unkai.yml").write_text(manifest)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def wait_until(check: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    """Poll `check` every 50 ms until it holds or `timeout_s` passed; its last answer."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()
