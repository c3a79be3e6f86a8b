"""A topic subscription and its SNS attributes (RawMessageDelivery, FilterPolicy,
FilterPolicyScope, RedrivePolicy), parsed once for the API, the CLI and deploys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from unkai.errors import InvalidRequest

PROTOCOLS = ("sqs", "lambda", "http", "https")


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    topic: str
    protocol: str
    #: Queue name, "<stage>/<function>", or URL.
    endpoint: str
    raw: bool = False
    filter_policy: str | None = None
    filter_scope: str = "MessageAttributes"
    dead_letter_queue: str | None = None
    #: "route" for a function's `- sns:` event (owned by its deploy), else "api".
    origin: str = "api"

    def to_doc(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "topic": self.topic,
            "protocol": self.protocol,
            "endpoint": self.endpoint,
            "raw": self.raw,
            "filter_policy": self.filter_policy,
            "filter_scope": self.filter_scope,
            "dead_letter_queue": self.dead_letter_queue,
            "origin": self.origin,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Subscription:
        return cls(**doc)


def with_attributes(sub: Subscription, attributes: Mapping[str, str]) -> Subscription:
    for name, value in attributes.items():
        if name == "RawMessageDelivery":
            if str(value).lower() not in ("true", "false"):
                raise InvalidRequest(
                    "Invalid parameter: RawMessageDelivery: true or false", code="InvalidParameter"
                )
            sub = replace(sub, raw=str(value).lower() == "true")
        elif name == "FilterPolicy":
            sub = replace(sub, filter_policy=value or None)
        elif name == "FilterPolicyScope":
            if value not in ("MessageAttributes", "MessageBody"):
                raise InvalidRequest(
                    "Invalid parameter: FilterPolicyScope: MessageAttributes or MessageBody",
                    code="InvalidParameter",
                )
            sub = replace(sub, filter_scope=value)
        elif name == "RedrivePolicy":
            try:
                target = orjson.loads(value)["deadLetterTargetArn"] if value else None
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise InvalidRequest(
                    'Invalid parameter: RedrivePolicy: {"deadLetterTargetArn": "<queue arn>"}',
                    code="InvalidParameter",
                ) from None
            sub = replace(sub, dead_letter_queue=str(target).rsplit(":", 1)[-1] if target else None)
        else:
            raise InvalidRequest(
                f"Invalid parameter: AttributeName {name!r}: settable are RawMessageDelivery, "
                "FilterPolicy, FilterPolicyScope, RedrivePolicy",
                code="InvalidParameter",
            )
    return sub
