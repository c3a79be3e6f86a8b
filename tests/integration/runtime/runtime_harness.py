"""Shared pieces of the runtime integration tests: write a handler, run a real Supervisor.

Not a conftest: this directory has no `__init__.py`, so a uniquely named module avoids any
clash with other test directories' helpers.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from unkai.invoke.models import Invocation, InvocationResult
from unkai.runtime.pool import Pool
from unkai.runtime.spec import InstanceSpec
from unkai.runtime.supervisor import Supervisor

T = TypeVar("T")


class LogCollector:
    """The Supervisor's log sink: keeps every call's keyword arguments, in order."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    def __call__(self, **record: Any) -> None:
        self.records.append(record)
        self.arrived.set()

    @property
    def text(self) -> str:
        return "".join(r["message"] for r in self.records)


def write_handler(root: Path, code: str, module: str = "handler") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(code))
    return root


def make_spec(task_root: Path, **overrides: Any) -> InstanceSpec:
    values: dict[str, Any] = {
        "version_key": f"test/{task_root.name}:1",
        "function_name": "fn",
        "version": "1",
        "handler": "handler.handler",
        "task_root": task_root,
        "deps_dir": None,
        "memory_size_mb": 128,
        "timeout_s": 10,
        "function_arn": "arn:aws:lambda:us-east-1:000000000000:function:fn:1",
        "stage": "test",
    }
    values.update(overrides)
    return InstanceSpec(**values)


def instance_request(spec: InstanceSpec, instance_id: str, task_root: Path) -> dict[str, Any]:
    """A zygote's SPAWN request for one instance of `spec`, as the Supervisor makes one."""
    return {
        "id": instance_id,
        "role": "instance",
        "env": {"_HANDLER": spec.handler, "LAMBDA_TASK_ROOT": str(task_root)},
        "task_root": str(task_root),
        "sys_path": [str(task_root)],
        "memory_size_mb": 128,
    }


def invocation(event: bytes = b"{}", timeout_s: float = 10.0) -> Invocation:
    return Invocation(str(uuid.uuid4()), event, time.monotonic() + timeout_s)


async def call(pool: Pool, event: bytes = b"{}", timeout_s: float = 10.0) -> InvocationResult:
    """Acquire + invoke, as the Invoker does."""
    request = invocation(event, timeout_s)
    async with pool.acquire(request.deadline) as instance:
        return await instance.invoke(request)


def run_supervised(
    body: Callable[[Supervisor, LogCollector], Awaitable[T]],
    *,
    max_instances: int = 8,
    cpus: int = 2,
    keep_alive_s: float = 60.0,
    preload_zygotes: bool = False,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> T:
    """Run `body` against a started Supervisor on a fresh loop; always closes it."""

    async def main() -> T:
        logs = LogCollector()
        supervisor = Supervisor(
            max_instances=max_instances,
            cpus=cpus,
            keep_alive_s=keep_alive_s,
            preload_zygotes=preload_zygotes,
            on_log=logs,
        )
        await supervisor.start()
        try:
            return await body(supervisor, logs)
        finally:
            await supervisor.close()

    if loop_factory is None:
        return asyncio.run(main())
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main())


def process_gone(pid: int) -> bool:
    """True when `pid` no longer exists (or is a zombie nobody will use)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (FileNotFoundError, ProcessLookupError):  # gone between open and read
        return True


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Bounded wait for a condition only observable by looking (process tables, /proc)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True
