"""`Zygote`: the platform's handle on one zygote process (see zygote_main.py for the child).

The base zygote is a subprocess of the platform; per-version zygotes are forked by the base
zygote and reached over their own control socket. Both speak the same SEQPACKET messages, so
one class serves both. Replies are read with `loop.add_reader`, no thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from unkai.runtime import frames, prefault

#: Called with (pid, status) for every child the zygote reaps.
ExitCallback = Callable[[int, int], None]
START_TIMEOUT_S = 30.0
MAX_MESSAGE_BYTES = 1024 * 1024
#: A zygote is told of instances' first results until it has counted prefault.MAX_LESSONS
#: lessons, and at most this many times in all (a read of an instance killed meanwhile does
#: not count).
LEARN_SENDS = 16


class ZygoteError(Exception):
    """The zygote could not fork, or is gone."""


class Zygote:
    def __init__(
        self,
        control: socket.socket,
        on_exit: ExitCallback,
        version_key: str | None = None,
        process: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.version_key = version_key
        self.pid = 0
        self._control = control
        self._on_exit = on_exit
        self._process = process
        self._loop = asyncio.get_running_loop()
        self._pending: dict[str, asyncio.Future[int]] = {}
        self._ready: asyncio.Future[int] = self._loop.create_future()
        self._closed = False
        self._lessons_sent = 0
        #: How many pages its spares copy ahead, as its last LEARNED said, and the instances
        #: (pids) it learned them from (prefault.py).
        self.prefault_pages = 0
        self.prefault_lessons = 0
        self.learned_from: list[int] = []
        #: The zygote's spare (pid, its socket) that the next instance SPAWN goes to, and the
        #: spares it sent that were neither taken nor reported exited (zygote_main.py).
        self._spare: tuple[int, socket.socket] | None = None
        self._offered: set[int] = set()
        control.setblocking(False)
        self._loop.add_reader(control.fileno(), self._on_readable)

    @classmethod
    async def start_base(cls, on_exit: ExitCallback) -> Zygote:
        """Start the base zygote: a fresh interpreter that imported only the bootstrap."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = subprocess.Popen(
            [sys.executable, "-I", "-m", "unkai.runtime.zygote_main", "--fd", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            env=_base_environment(),
            close_fds=True,
        )
        theirs.close()
        zygote = cls(ours, on_exit, process=process)
        await zygote.wait_ready()
        return zygote

    async def wait_ready(self) -> None:
        try:
            self.pid = await asyncio.wait_for(asyncio.shield(self._ready), START_TIMEOUT_S)
        except TimeoutError:
            raise ZygoteError(f"zygote did not start within {START_TIMEOUT_S} s") from None

    async def spawn(self, request: dict[str, Any], fd: int, output_fd: int | None = None) -> int:
        """Fork a child that takes over `fd` (and `output_fd` as its stdout and stderr);
        returns its pid. The caller keeps its own fds."""
        if self._closed:
            raise ZygoteError("zygote is closed")
        message = frames.encode_json(frames.SPAWN, request)
        fds = [fd] if output_fd is None else [fd, output_fd]
        if request.get("role") != "zygote":
            pid = self._hand_to_spare(message, fds)
            if pid:
                return pid
        future: asyncio.Future[int] = self._loop.create_future()
        self._pending[request["id"]] = future
        try:
            socket.send_fds(self._control, [message], fds)
        except OSError as error:
            self._pending.pop(request["id"], None)
            raise ZygoteError(f"zygote is gone: {error}") from None
        return await future

    def _hand_to_spare(self, message: bytes, fds: list[int]) -> int:
        """Send an instance SPAWN to the waiting spare; its pid, or 0 when there is none (or
        it died: its EXITED is then ignored, and the zygote forks instead)."""
        spare, self._spare = self._spare, None
        if spare is None:
            return 0
        pid, sock = spare
        try:
            socket.send_fds(sock, [message], fds)
        except OSError:
            return 0
        finally:
            sock.close()
        self._offered.discard(pid)
        with contextlib.suppress(OSError):
            self._control.send(frames.encode_json(frames.TAKEN, {"pid": pid}))
        return pid

    @property
    def spare_pid(self) -> int | None:
        """The spare the next instance SPAWN goes to, if one waits."""
        return None if self._spare is None else self._spare[0]

    @property
    def wants_lessons(self) -> bool:
        return (
            self.prefault_lessons < prefault.MAX_LESSONS
            and self._lessons_sent < LEARN_SENDS
            and not self._closed
        )

    def learn_from(self, pid: int) -> None:
        """Tell the zygote that its child `pid` served its first result: it reads which of
        its pages that start copied, for its spares to copy ahead (zygote_main.py)."""
        if not self.wants_lessons:
            return
        self._lessons_sent += 1
        with contextlib.suppress(OSError):
            self._control.send(frames.encode_json(frames.LEARN, {"pid": pid}))

    async def spawn_zygote(self, request: dict[str, Any], version_key: str) -> Zygote:
        """Fork a per-version zygote that preloads `request['modules']`."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            await self.spawn({**request, "role": "zygote"}, theirs.fileno())
        finally:
            theirs.close()
        child = Zygote(ours, self._on_exit, version_key=version_key)
        await child.wait_ready()
        return child

    def _on_readable(self) -> None:
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(
                    self._control, MAX_MESSAGE_BYTES, 1, socket.MSG_CMSG_CLOEXEC
                )
            except BlockingIOError:
                return
            except OSError:
                data, fds = b"", []
            if not data:
                self._lost()
                return
            self._dispatch(data, fds)

    def _dispatch(self, data: bytes, fds: list[int]) -> None:
        kind = frames.HEADER.unpack_from(data)[1]
        message = json.loads(data[frames.HEADER.size :])
        if kind == frames.SPARE and fds:
            self._replace_spare(int(message["pid"]), socket.socket(fileno=fds.pop()))
        elif kind == frames.SPAWNED:
            self._spawned(message)
        elif kind == frames.EXITED:
            self._exited(int(message["pid"]), int(message["status"]))
        elif kind == frames.LEARNED:
            self.prefault_pages = int(message["pages"])
            self.prefault_lessons = int(message["lessons"])
            self.learned_from.append(int(message["pid"]))
        elif kind == frames.READY and not self._ready.done():
            self._ready.set_result(int(message["pid"]))
        for fd in fds:
            os.close(fd)

    def _spawned(self, message: dict[str, Any]) -> None:
        future = self._pending.pop(message["id"], None)
        if future is not None and not future.done():
            if "pid" in message:
                future.set_result(int(message["pid"]))
            else:
                future.set_exception(ZygoteError(f"fork failed: {message.get('error')}"))

    def _exited(self, pid: int, status: int) -> None:
        if pid not in self._offered:
            self._on_exit(pid, status)
            return
        # a spare never taken: nobody else knew it
        self._offered.discard(pid)
        if self._spare is not None and self._spare[0] == pid:
            self._spare[1].close()
            self._spare = None

    def _replace_spare(self, pid: int, sock: socket.socket) -> None:
        """Hold the zygote's newest spare; the one held before is let go (closing its socket
        ends it; its EXITED is ignored)."""
        if self._spare is not None:
            self._spare[1].close()
        self._spare = (pid, sock)
        self._offered.add(pid)

    def _lost(self) -> None:
        self._detach()
        error = ZygoteError("zygote exited")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        if not self._ready.done():
            self._ready.set_exception(error)

    def _detach(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self._control.fileno())
            self._control.close()
            if self._spare is not None:
                self._spare[1].close()
                self._spare = None

    @property
    def alive(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        """Closing the control socket makes the zygote kill its children and exit."""
        self._detach()
        if self._process is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(self._process.wait), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()
                await asyncio.to_thread(self._process.wait)


def _base_environment() -> dict[str, str]:
    """The base zygote needs no variables of the platform's; children set their own."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
