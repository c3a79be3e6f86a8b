"""Start and stop the servers a benchmark measures, and never leave one behind.

Every process is started in its own session (`start_new_session=True`), so one `killpg`
reaches it and whatever it forked. Descendants that left the group (a `setsid` in a zygote,
say) are found through `/proc/<pid>/stat` before the group is signalled, and killed by pid.
`Processes` is a context manager: its `__exit__` stops everything it started, and
`install_signal_exit` turns SIGTERM/SIGHUP into `SystemExit` so that `finally` blocks run when
`run_all.py` (or a user) stops a benchmark.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BENCH_DIR.parent
STOP_GRACE_S = 5.0


def install_signal_exit() -> None:
    """Make SIGTERM and SIGHUP raise SystemExit, so cleanup in `finally` runs."""

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGHUP, _exit)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _parent_pids() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) follows the command name, which is in parentheses and may hold spaces.
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def descendants(pid: int) -> list[int]:
    """All live descendants of `pid` (children, grandchildren, ...), found through /proc."""
    parents = _parent_pids()
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


def _kill_quietly(pid: int, sig: int, group: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        (os.killpg if group else os.kill)(pid, sig)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, wait up to STOP_GRACE_S, then SIGKILL group and strays."""
    tree = descendants(proc.pid)
    if proc.poll() is None:
        _kill_quietly(proc.pid, signal.SIGTERM, group=True)
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            _kill_quietly(proc.pid, signal.SIGKILL, group=True)
            proc.wait(timeout=STOP_GRACE_S)
    _kill_quietly(proc.pid, signal.SIGKILL, group=True)  # children still in the group
    for pid in tree:
        _kill_quietly(pid, signal.SIGKILL)


class Processes:
    """Owns the processes one benchmark starts; leaving the `with` block stops all of them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._started: list[subprocess.Popen[bytes]] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in a new session, its output in `<log_dir>/<name>.log`."""
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 (closed when proc ends)
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=REPO_DIR,
            start_new_session=True,
        )
        log.close()  # the child holds its own descriptor
        self._started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        stop(proc)
        if proc in self._started:
            self._started.remove(proc)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for proc in reversed(self._started):
            stop(proc)
        self._started.clear()


def http_status(port: int, path: str, timeout_s: float = 2.0) -> int | None:
    """Status of `GET http://127.0.0.1:<port><path>`, or None if nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        conn.close()


def wait_ready(
    proc: subprocess.Popen[bytes], port: int, path: str, timeout_s: float = 60.0
) -> float:
    """Poll `path` until it answers 200; returns seconds waited. Raises if the process died."""
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"pid {proc.pid} exited with {proc.returncode} before ready")
        if http_status(port, path, timeout_s=1.0) == 200:
            return time.monotonic() - t0
        time.sleep(0.05)
    raise TimeoutError(f"GET 127.0.0.1:{port}{path} not 200 within {timeout_s:.0f} s")


def python_argv(*args: str) -> list[str]:
    """argv for the venv's interpreter (never `python3`, a pyenv shim costing ~55 ms)."""
    return [sys.executable, *args]
