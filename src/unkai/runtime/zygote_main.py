"""The zygote process: a pre-warmed interpreter that forks function instances on request.

Stdlib only, plus the bootstrap it forks into and the platform's adapters (`adapters.py`,
imported before the heap is frozen so that no instance imports them on its first request);
single-threaded (forking a threaded process is unsafe), started once by the platform as
`sys.executable -I -m unkai.runtime.zygote_main --fd N`.

Control channel: a SOCK_SEQPACKET socket, so every message arrives whole, with its fd. The
platform sends SPAWN {id, role, env, task_root, sys_path, memory_size_mb, function_arn,
modules} with one fd attached:
  role "instance": fork; the child applies the environment and limits and runs the bootstrap
                   on the attached stream socket.
  role "zygote":   fork; the child becomes a zygote for one function version: it applies the
                   version's environment and sys.path, imports `modules` (what the version's
                   first instance imported, e.g. boto3), freezes the heap and serves SPAWN on
                   the attached control socket. Its instances fork from it, so they start with
                   those imports done.
Replies: SPAWNED {id, pid} (or {id, error}), EXITED {pid, status} for every child reaped
(status: exit code, or minus the signal). READY {pid} is sent once when a zygote serves.

A spare: each zygote keeps one child forked ahead, which has done what every instance does first
(left the zygote's descriptors and signals, its own session, death with its parent, the
instances' scheduling policy and fixed limits, Lambda's log capture) and waits on a socket of
its own. The zygote hands that socket to the platform at once, SPARE {pid} with the socket
attached, and keeps no copy: the platform sends an instance SPAWN to the spare itself and tells
the zygote TAKEN {pid} afterwards. So a cold start waits neither for the fork and the child's
first steps (about 1 ms of the ~3.5 ms it took, docs/benchmarks.md session 10) nor for the
zygote to wake and pass the SPAWN on (about 0.4 ms of p50, session 15). The next spare is forked
SPARE_DELAY_S after the TAKEN, so that it does not compete for a CPU with the instance that just
started. The platform holds one spare per zygote: a newer SPARE replaces the one it held, whose
socket it closes, and a spare whose socket closes exits. The zygote reports EXITED for every
child it reaps, spares included (a spare may have been taken while its TAKEN is on its way); the
platform ignores a spare it did not take. Zygote SPAWNs, and instance SPAWNs that come while the
platform holds no spare, are forked directly.

LEARN {pid} (platform -> zygote, after that instance's first result): the zygote reads which of
its pages the instance has copied on write, up to prefault.MAX_LESSONS instances, and a spare
copies them while it waits (prefault.py); after a lesson that added pages a new spare is forked,
and replaces the one the platform holds, so that the next cold start gets the new one. Reply:
LEARNED {pid, pages, lessons} (pages: how many the spares now copy ahead; lessons: how many
instances counted, a read of one that was being killed meanwhile being kept but not counted).

A zygote dies with its parent (PR_SET_PDEATHSIG), and on EOF of its control socket it kills
its children and exits, so `kill -9` of the platform leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import selectors
import signal
import socket
import sys
import time
from typing import Any

from unkai.runtime import adapters, bootstrap, frames, limits, prefault

PR_SET_PDEATHSIG = 1
MAX_MESSAGE_BYTES = 1024 * 1024
#: Idle time after a spare was used before the next one is forked.
SPARE_DELAY_S = 0.005


def die_with_parent() -> None:
    """Ask Linux to SIGKILL us when our parent exits (no-op where prctl is unavailable)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def exit_status(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return -os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


class ZygoteServer:
    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.children: set[int] = set()
        self._wake_r, self._wake_w = socket.socketpair()
        #: Spares handed to the platform and neither taken (TAKEN) nor reaped yet; the
        #: latest, unless a lesson made it stale since, is `_spare`.
        self._offered: set[int] = set()
        self._spare: int | None = None
        #: When to fork the next spare (time.monotonic()), or None when one waits already.
        self._spare_due: float | None = 0.0
        #: The pages instances copied on write (see LEARN), as runs a spare populates.
        self._hot: set[int] = set()
        self._hot_runs: list[prefault.Run] = []
        self._lessons = 0

    def serve(self) -> None:
        """Serve SPAWN requests until the control socket closes; never returns normally."""
        self._wake_w.setblocking(False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        selector = selectors.DefaultSelector()
        selector.register(self.control, selectors.EVENT_READ, "control")
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._send(frames.encode_json(frames.READY, {"pid": os.getpid()}))
        while True:
            due = self._spare_due
            if due is not None and time.monotonic() >= due:
                self._spare_due = None
                self._fork_spare()
                continue
            timeout = None if due is None else max(0.0, due - time.monotonic())
            for key, _ in selector.select(timeout):
                if key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        self._wake_r.recv(4096)
                    self._reap()
                elif not self._handle_request():
                    self._shutdown()

    def _handle_request(self) -> bool:
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.control, MAX_MESSAGE_BYTES, 2)
        except (ConnectionError, OSError):
            return False
        if not data:
            return False
        kind = frames.HEADER.unpack_from(data)[1]
        body = data[frames.HEADER.size :]
        request = json.loads(body)
        if kind == frames.SPAWN and fds:
            self._spawn(request, fds[0], fds[1] if len(fds) > 1 else None)
        elif kind == frames.TAKEN:
            self._taken(int(request["pid"]))
        elif kind == frames.LEARN:
            self._learn(int(request["pid"]))
        else:
            for fd in fds:
                os.close(fd)
        return True

    def _taken(self, pid: int) -> None:
        """The platform sent an instance SPAWN to spare `pid`: it is an instance now."""
        if pid not in self._offered:
            return  # reaped (and reported) before this came
        self._offered.discard(pid)
        self.children.add(pid)
        if pid == self._spare:
            self._spare = None
            self._spare_due = time.monotonic() + SPARE_DELAY_S

    def _learn(self, pid: int) -> None:
        """Add the pages instance `pid` copied to the hot set."""
        if pid not in self.children or self._lessons >= prefault.MAX_LESSONS:
            return
        pages = prefault.exclusive_pages(pid, prefault.own_writable_ranges())
        if not pages:
            return  # gone before we read
        if prefault.alive(pid):
            self._lessons += 1
        # else killed (a drain) while we read: what was read is true, but may be a part, so it
        # is kept and the lesson does not count
        if not pages <= self._hot:
            self._hot |= pages
            self._hot_runs = prefault.runs_of(self._hot)
            if self._spare is not None:
                # Forked before it knew these: its successor copies them and replaces it at
                # the platform, which then lets it go.
                self._spare = None
                self._spare_due = time.monotonic() + SPARE_DELAY_S
        reply = {"pid": pid, "pages": len(self._hot), "lessons": self._lessons}
        self._send(frames.encode_json(frames.LEARNED, reply))

    def _fork_spare(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            return  # no spare: SPAWNs fork, as without one
        if pid == 0:
            ours.close()
            self._become_spare(theirs)
        theirs.close()
        try:
            socket.send_fds(
                self.control, [frames.encode_json(frames.SPARE, {"pid": pid})], [ours.fileno()]
            )
        except OSError:
            pass  # the platform is gone: _shutdown follows; the spare ends with its socket
        finally:
            ours.close()
        self._offered.add(pid)
        self._spare = pid

    def _become_spare(self, sock: socket.socket) -> None:
        """Runs in the forked spare; never returns into the zygote's loop."""
        code = 1
        try:
            self._leave_zygote(instance=True)
            # What every instance does first, whatever its function, done while nobody waits:
            # it yields to the platform, has the fixed limits and Lambda's log capture.
            limits.use_batch_policy()
            limits.apply_fixed_limits()
            vm_size_kb = limits.read_vm_size_kb()
            capture = bootstrap.install_log_capture()
            prefault.populate(self._hot_runs, sock.fileno())
            data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE_BYTES, 2)
            sock.close()
            if not data or not fds:
                code = 0  # the platform let us go (or is gone)
                return
            request = json.loads(data[frames.HEADER.size :])
            output_fd = fds[1] if len(fds) > 1 else None
            if output_fd is not None:
                os.dup2(output_fd, 1)
                os.dup2(output_fd, 2)
                os.close(output_fd)
            apply_request(request)
            limits.limit_address_space(vm_size_kb, int(request["memory_size_mb"]))
            instance_socket = socket.socket(fileno=fds[0])
            code = bootstrap.serve(instance_socket, request.get("function_arn", ""), capture)
        except BaseException as error:  # boundary: report, then leave the child process
            with contextlib.suppress(Exception):
                os.write(2, f"unkai zygote spare failed: {error!r}\n".encode())
        finally:
            os._exit(code)

    def _leave_zygote(self, *, instance: bool) -> None:
        """A child's first steps: the zygote's signals and descriptors are not its own; an
        instance leads its own process group, so that a kill reaches what the handler
        started, too; and it dies with its parent."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.control.close()
        self._wake_r.close()
        self._wake_w.close()
        if instance:
            os.setsid()
        die_with_parent()

    @staticmethod
    def _run_instance(request: dict[str, Any], fd: int) -> int:
        apply_request(request)
        limits.apply_instance_limits(int(request["memory_size_mb"]))
        limits.use_batch_policy()
        return bootstrap.serve(socket.socket(fileno=fd), request.get("function_arn", ""))

    def _spawn(self, request: dict[str, Any], fd: int, output_fd: int | None) -> None:
        try:
            pid = os.fork()
        except OSError as error:
            os.close(fd)
            if output_fd is not None:
                os.close(output_fd)
            self._send(
                frames.encode_json(frames.SPAWNED, {"id": request["id"], "error": str(error)})
            )
            return
        if pid == 0:
            self._become_child(request, fd, output_fd)
        os.close(fd)
        if output_fd is not None:
            os.close(output_fd)
        self.children.add(pid)
        self._send(frames.encode_json(frames.SPAWNED, {"id": request["id"], "pid": pid}))

    def _become_child(self, request: dict[str, Any], fd: int, output_fd: int | None) -> None:
        """Runs in the forked child; never returns into the zygote's loop.

        `output_fd` (an instance's) becomes its fd 1 and 2: whatever bypasses sys.stdout (a
        subprocess, a C extension, a forked child) is read by the platform into the
        function's log, as Lambda sends the whole sandbox's stdout and stderr to CloudWatch.
        """
        code = 1
        try:
            if output_fd is not None:
                os.dup2(output_fd, 1)
                os.dup2(output_fd, 2)
                os.close(output_fd)
            is_zygote = request.get("role") == "zygote"
            self._leave_zygote(instance=not is_zygote)
            if is_zygote:
                apply_request(request)
                preload(request.get("modules", []))
                ZygoteServer(socket.socket(fileno=fd)).serve()
            else:
                code = self._run_instance(request, fd)
        except BaseException as error:  # boundary: report, then leave the child process
            with contextlib.suppress(Exception):
                os.write(2, f"unkai zygote child failed: {error!r}\n".encode())
        finally:
            os._exit(code)

    def _reap(self) -> None:
        while self.children or self._offered:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                self._offered.clear()
                return
            if pid == 0:
                return
            if pid in self._offered:
                self._offered.discard(pid)
                if pid == self._spare:
                    self._spare = None
                    self._spare_due = time.monotonic() + SPARE_DELAY_S
            elif pid in self.children:
                self.children.discard(pid)
            else:
                continue
            self._send(
                frames.encode_json(frames.EXITED, {"pid": pid, "status": exit_status(status)})
            )

    def _send(self, message: bytes) -> None:
        with contextlib.suppress(OSError):
            self.control.send(message)

    def _shutdown(self) -> None:
        self.children |= self._offered
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # instances lead their own group
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in list(self.children):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        os._exit(0)


def apply_request(request: dict[str, Any]) -> None:
    """Environment, working directory and import path of one function version."""
    os.environ.clear()
    os.environ.update(request["env"])
    task_root = request["task_root"]
    os.chdir(task_root)
    for entry in reversed(request.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)


def preload(modules: list[str]) -> None:
    """Import what the version's handler needs; a module that fails is skipped, not fatal."""
    for name in modules:
        with contextlib.suppress(Exception):
            __import__(name)
    gc.collect()
    gc.freeze()


def main(argv: list[str]) -> int:
    options = dict(zip(argv[0::2], argv[1::2], strict=False))
    if "--fd" not in options:
        sys.stderr.write("usage: python -m unkai.runtime.zygote_main --fd N\n")
        return 2
    die_with_parent()
    control = socket.socket(fileno=int(options["--fd"]))
    for name in adapters.PLATFORM_ADAPTERS:
        with contextlib.suppress(ImportError):  # then an instance that needs it imports it
            adapters.load(name)
    gc.collect()
    gc.freeze()
    ZygoteServer(control).serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
