"""A function's `- sns:` subscription as deployed (stored with the routes, method `SNS`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SubscriptionConfig:
    #: The filter policy as canonical JSON text, or None (every message).
    filter_policy: str | None = None
    filter_scope: str = "MessageAttributes"
    #: A queue for messages that could not be delivered.
    dead_letter_queue: str | None = None

    def to_doc(self) -> dict[str, Any]:
        return {
            "filter_policy": self.filter_policy,
            "filter_scope": self.filter_scope,
            "dead_letter_queue": self.dead_letter_queue,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> SubscriptionConfig:
        return cls(**doc)
