"""A function's asynchronous invocation settings (Lambda's EventInvokeConfig): per function,
not per version, like reserved concurrency, so changing them publishes no version."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class AsyncConfig:
    maximum_retry_attempts: int = 2
    maximum_event_age_s: int = 21600
    on_success: str | None = None
    on_failure: str | None = None

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> AsyncConfig:
        return cls(**doc) if doc else cls()
