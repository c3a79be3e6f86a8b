"""Install a function's requirements once per content hash into `<data_dir>/deps/<sha256>/`.

The hash covers the requirements file's bytes and the interpreter that installs them
(`python3.11` on `linux-x86_64`): the same file on a new Python gets a fresh install. pip runs
as `sys.executable -m pip install --target <tmp> -r <file>` in the app directory (so relative
paths such as `./vendor/pkg` resolve against the app, as serverless-python-requirements does),
through `asyncio.create_subprocess_exec`, so the event loop never blocks; its output directory
is renamed into place only after pip succeeded. An existing deps directory is never
reinstalled.

Known limit: a local path in the file (`./vendor/pkg`) is hashed by name, not by its content;
edit the requirements file (e.g. bump the version pin) to force a reinstall.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sys
import sysconfig
import uuid
from dataclasses import dataclass
from pathlib import Path

from unkai.errors import ConfigError

#: Lines of pip's stderr quoted in the error; the cause is nearly always at the end.
STDERR_TAIL_LINES = 12
DEFAULT_INSTALL_TIMEOUT_S = 600.0


def interpreter_tag() -> str:
    """What the installed files depend on besides the file: Python version and platform."""
    return f"python{sys.version_info[0]}.{sys.version_info[1]}-{sysconfig.get_platform()}"


@dataclass(frozen=True, slots=True)
class Requirements:
    """A requirements file and the content hash naming its deps directory."""

    path: Path
    sha256: str

    @classmethod
    def read(cls, path: Path) -> Requirements:
        """Hash `path` (blocking read). Raises ConfigError when it cannot be read."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read requirements: {exc.strerror}", path=str(path)) from None
        digest = hashlib.sha256(b"unkai-deps-v1\0" + interpreter_tag().encode() + b"\0" + data)
        return cls(path, digest.hexdigest())

    def path_in(self, deps_dir: Path) -> Path:
        return deps_dir / self.sha256


class RequirementsInstaller:
    """Runs pip; one install at a time per hash within this process."""

    def __init__(self, deps_dir: Path, *, timeout_s: float = DEFAULT_INSTALL_TIMEOUT_S) -> None:
        self._deps_dir = deps_dir
        self._timeout_s = timeout_s
        self._locks: dict[str, asyncio.Lock] = {}

    async def install(self, requirements: Requirements, cwd: Path) -> bool:
        """Install into `<deps_dir>/<sha256>/` unless present; True when pip ran.

        Raises ConfigError naming the file with the tail of pip's stderr when pip fails or
        exceeds the timeout; nothing is left behind then.
        """
        lock = self._locks.setdefault(requirements.sha256, asyncio.Lock())
        async with lock:
            target = requirements.path_in(self._deps_dir)
            if target.is_dir():
                return False
            self._deps_dir.mkdir(parents=True, exist_ok=True)
            tmp = self._deps_dir / f".tmp-{requirements.sha256[:16]}-{uuid.uuid4().hex[:8]}"
            try:
                await self._run_pip(requirements.path, tmp, cwd)
                await asyncio.to_thread(_rename_into_place, tmp, target)
            finally:
                if tmp.exists():
                    await asyncio.to_thread(shutil.rmtree, tmp)
            return True

    async def _run_pip(self, requirements: Path, tmp: Path, cwd: Path) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pip",
            "install",
            "--target",
            str(tmp),
            "-r",
            str(requirements),
            "--disable-pip-version-check",
            "--no-input",
            "-q",
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), self._timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise _pip_failed(requirements, f"timed out after {self._timeout_s:g} s", b"") from None
        if process.returncode != 0:
            raise _pip_failed(requirements, f"exit status {process.returncode}", stderr)


def _rename_into_place(tmp: Path, target: Path) -> None:
    try:
        os.rename(tmp, target)
    except OSError:
        if not target.is_dir():
            raise  # otherwise another process installed the same hash first


def _pip_failed(requirements: Path, why: str, stderr: bytes) -> ConfigError:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()[-STDERR_TAIL_LINES:]
    tail = "".join(f"\n  {line}" for line in lines)
    return ConfigError(f"pip install failed ({why}){tail}", path=requirements.name)
