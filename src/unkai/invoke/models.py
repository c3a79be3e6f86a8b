"""Invocation and its result: what every caller hands to, and gets from, `Invoker.invoke`.

The shapes follow Lambda: a result is either a payload or an error document
`{errorMessage, errorType, stackTrace}`; its timings feed the REPORT line
(https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NamedTuple

from unkai.invoke.billing import billed_duration_ms


class Target(NamedTuple):
    """What to run: a function of a stage, optionally a version number or an alias name
    (`qualifier`).

    A tuple: every request looks its target up (twice on an HTTP route), and a tuple hashes
    and compares in C, where a dataclass's `__hash__` and `__eq__` are Python calls."""

    stage: str
    function: str
    qualifier: str | None = None


class InvocationMode(enum.Enum):
    SYNC = "RequestResponse"
    ASYNC = "Event"
    DRY_RUN = "DryRun"


@dataclass(slots=True)
class Invocation:
    """One request to run a function version once.

    `payload` is the JSON-encoded event exactly as the handler will receive it, unless
    `adapter` names the module that makes the event of it in the instance (and maps the result
    there: `unkai.runtime.adapters`). `deadline` is a `time.monotonic()` value; the instance
    learns the wall-clock equivalent in milliseconds.
    """

    request_id: str
    payload: bytes
    deadline: float
    mode: InvocationMode = InvocationMode.SYNC
    attempt: int = 1
    trace_id: str | None = None
    client_context: str | None = None
    adapter: str = ""


@dataclass(slots=True)
class FunctionError:
    """Lambda's error document; `error_type` such as `ValueError` or `Runtime.ExitError`."""

    error_type: str
    error_message: str
    stack_trace: list[str] = field(default_factory=list)
    #: "Unhandled" for handler and runtime errors (Lambda's X-Amz-Function-Error value).
    kind: str = "Unhandled"

    def to_document(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "errorMessage": self.error_message,
            "errorType": self.error_type,
        }
        if self.stack_trace:
            doc["stackTrace"] = self.stack_trace
        return doc


@dataclass(slots=True)
class InvocationResult:
    """What came back from one invocation, with the figures the REPORT line carries."""

    request_id: str
    payload: bytes | None
    error: FunctionError | None
    duration_ms: float
    max_memory_used_mb: int
    memory_size_mb: int
    init_duration_ms: float | None = None
    executed_version: str = "$LATEST"
    log_text: str = ""
    #: False for an invocation queued on an instance that failed before starting it: it did
    #: not run, and the invoker gives it to another instance (see `Pool.lend`).
    started: bool = True

    @property
    def billed_duration_ms(self) -> int:
        return billed_duration_ms(self.duration_ms)

    @property
    def ok(self) -> bool:
        return self.error is None
