"""A function's asynchronous invocation settings (Lambda's EventInvokeConfig): per function,
not per version, like reserved concurrency, so changing them publishes no version."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from unkai.errors import InvalidRequest

TargetKind = Literal["function", "queue", "topic"]


def parse_target(target: str, *, bare: TargetKind = "function") -> tuple[TargetKind, str]:
    """(kind, name) of a destination or dead-letter target: a bare name (a function, or a
    queue in a dead-letter setting), or an ARN of a function, queue or topic."""
    if target.startswith("arn:aws:sqs:"):
        return "queue", target.rsplit(":", 1)[-1]
    if target.startswith("arn:aws:sns:"):
        return "topic", target.rsplit(":", 1)[-1]
    if target.startswith("arn:aws:lambda:"):
        _, sep, rest = target.partition(":function:")
        name = rest.split(":", 1)[0]
        if not sep or not name:
            raise InvalidRequest(
                f"{target!r} is not a function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)",
                code="InvalidParameterValueException",
            )
        return "function", name
    if target.startswith("arn:") or not target:
        raise InvalidRequest(
            f"{target!r} is not a destination unkai serves: a function name, or the ARN of a "
            "function, queue (arn:aws:sqs:...) or topic (arn:aws:sns:...)",
            code="InvalidParameterValueException",
        )
    return bare, target


@dataclass(frozen=True, slots=True)
class AsyncConfig:
    maximum_retry_attempts: int = 2
    maximum_event_age_s: int = 21600
    #: A function name, or an ARN of a function, queue or topic.
    on_success: str | None = None
    on_failure: str | None = None
    #: A queue name, or an ARN of a queue or topic: events that ran out of attempts.
    dead_letter: str | None = None

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> AsyncConfig:
        return cls(**doc) if doc else cls()
