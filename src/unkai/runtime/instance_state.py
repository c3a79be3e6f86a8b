"""An instance's lifecycle states, the moves allowed between them, and how a process's end
is described in Lambda's words.

STARTING -> BUSY -> READY -> BUSY -> ... -> STOPPED, or FAILED after a timeout, crash, memory
kill or init error (a FAILED instance is never reused; the pool starts another).
"""

from __future__ import annotations

import enum
import signal

SIGNAL_NAMES = {
    signal.SIGSEGV: "segmentation fault",
    signal.SIGKILL: "killed",
    signal.SIGABRT: "aborted",
    signal.SIGBUS: "bus error",
    signal.SIGTERM: "terminated",
    signal.SIGFPE: "floating point exception",
}


class InstanceState(enum.Enum):
    #: Enum's own `__hash__` is Python code, and every invocation makes four transition
    #: lookups; members are singletons compared by identity, so the identity hash agrees.
    __hash__ = object.__hash__

    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    DRAINING = "draining"
    STOPPED = "stopped"
    FAILED = "failed"


ALLOWED: dict[InstanceState, frozenset[InstanceState]] = {
    InstanceState.STARTING: frozenset(
        {InstanceState.BUSY, InstanceState.STOPPED, InstanceState.FAILED}
    ),
    InstanceState.READY: frozenset(
        {InstanceState.BUSY, InstanceState.DRAINING, InstanceState.STOPPED, InstanceState.FAILED}
    ),
    InstanceState.BUSY: frozenset(
        {InstanceState.READY, InstanceState.FAILED, InstanceState.DRAINING}
    ),
    InstanceState.DRAINING: frozenset({InstanceState.STOPPED, InstanceState.FAILED}),
    InstanceState.STOPPED: frozenset(),
    InstanceState.FAILED: frozenset({InstanceState.STOPPED}),
}


class InvalidTransition(Exception):
    def __init__(self, instance_id: str, action: str, state: InstanceState) -> None:
        super().__init__(f"instance {instance_id} cannot {action} while {state.value}")


def describe_exit(status: int | None) -> str:
    if status is None:
        return "Runtime exited without providing a reason"
    if status < 0:
        name = SIGNAL_NAMES.get(signal.Signals(-status), f"signal {-status}")
        return f"Runtime exited with error: signal: {name}"
    return f"Runtime exited with error: exit status {status}"


def timed_out_message(request_id: str, timeout_s: float) -> str:
    """The errorMessage of a `Sandbox.Timedout` invocation."""
    return f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds"


def exited_message(request_id: str, status: int | None) -> str:
    """The errorMessage of a `Runtime.ExitError` invocation (the process ended mid-call)."""
    return f"RequestId: {request_id} Error: {describe_exit(status)}"


def out_of_memory_message(request_id: str, status: int | None, memory_size_mb: int) -> str:
    """The errorMessage of a `Runtime.OutOfMemory` invocation (killed over its memory size)."""
    return (
        f"RequestId: {request_id} Error: {describe_exit(status)} "
        f"(memory limit {memory_size_mb} MB exceeded)"
    )
