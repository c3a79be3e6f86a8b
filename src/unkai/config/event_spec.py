"""The manifest's event sources other than HTTP (`schedule`, `sqs`, `sns`) and the resources
they use (`resources.queues`, `resources.topics`)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from unkai.config.queue_config import new_queue
from unkai.config.schedule_expressions import ScheduleError
from unkai.config.schedule_expressions import validate as validate_schedule
from unkai.config.spec_base import (
    NAME_PATTERN,
    Spec,
    between,
    matching,
)
from unkai.errors import InvalidRequest


class ScheduleEventSpec(Spec):
    """`events: - schedule: rate(5 minutes)` or `{rate, timezone, input, enabled, name}`: run the
    function on an EventBridge schedule expression (`rate(...)` or six-field `cron(...)`)."""

    rate: str
    timezone: str = "UTC"
    input: dict[str, Any] | None = None
    enabled: bool = True
    name: Annotated[str, matching(NAME_PATTERN, "1 to 64 letters, digits, '-' or '_'")] | None = (
        None
    )

    @model_validator(mode="before")
    @classmethod
    def _from_expression(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"rate": data}
        if isinstance(data, dict) and isinstance(data.get("rate"), list):
            rates = data["rate"]
            if len(rates) != 1:
                raise ValueError("give one expression per schedule event")
            return {**data, "rate": rates[0]}
        return data

    @model_validator(mode="after")
    def _valid(self) -> ScheduleEventSpec:
        try:
            validate_schedule(self.rate, self.timezone)
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None
        return self


class SqsEventSpec(Spec):
    """`events: - sqs: jobs` or `{queue (or arn), batchSize, maximumBatchingWindow,
    functionResponseType, maximumConcurrency, enabled}`: Lambda's SQS event source mapping."""

    queue: Annotated[str, Field(min_length=1)]
    batch_size: Annotated[int, Field(strict=True), between(1, 10000)] = Field(
        default=10, alias="batchSize"
    )
    maximum_batching_window: Annotated[int, Field(strict=True), between(0, 300)] = Field(
        default=0, alias="maximumBatchingWindow"
    )
    function_response_type: Literal["ReportBatchItemFailures"] | None = Field(
        default=None, alias="functionResponseType"
    )
    maximum_concurrency: Annotated[int, Field(strict=True), between(2, 1000)] | None = Field(
        default=None, alias="maximumConcurrency"
    )
    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"queue": data}
        if isinstance(data, dict) and "arn" in data and "queue" not in data:
            rest = {k: v for k, v in data.items() if k != "arn"}
            return {**rest, "queue": data["arn"]}
        if isinstance(data, dict) and isinstance(data.get("functionResponseType"), list):
            types = data["functionResponseType"]
            return {**data, "functionResponseType": types[0] if types else None}
        return data

    @model_validator(mode="after")
    def _window_for_big_batches(self) -> SqsEventSpec:
        if self.batch_size > 10 and self.maximum_batching_window < 1:
            raise ValueError(
                "a batchSize above 10 needs a maximumBatchingWindow of at least 1 second "
                "(as in Lambda)"
            )
        return self

    @property
    def queue_name(self) -> str:
        return _name_of(self.queue)


def _name_of(target: str) -> str:
    """A queue or topic named by its name or ARN."""
    return target.rsplit(":", 1)[-1] if target.startswith("arn:") else target


class SnsEventSpec(Spec):
    """`events: - sns: orders` or `{topic (or arn), filterPolicy, filterPolicyScope,
    deadLetterQueue}`: subscribe the function to a topic (SNS invokes it asynchronously)."""

    topic: Annotated[str, Field(min_length=1)]
    filter_policy: dict[str, Any] | None = Field(default=None, alias="filterPolicy")
    filter_policy_scope: Literal["MessageAttributes", "MessageBody"] = Field(
        default="MessageAttributes", alias="filterPolicyScope"
    )
    dead_letter_queue: str | None = Field(default=None, alias="deadLetterQueue")

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"topic": data}
        if isinstance(data, dict) and "arn" in data and "topic" not in data:
            return {**{k: v for k, v in data.items() if k != "arn"}, "topic": data["arn"]}
        return data

    @property
    def topic_name(self) -> str:
        return _name_of(self.topic)


class DeadLetterQueueSpec(Spec):
    queue: Annotated[str, Field(min_length=1)]
    max_receive_count: Annotated[int, Field(strict=True), between(1, 1000)] = Field(
        alias="maxReceiveCount"
    )


class QueueResourceSpec(Spec):
    """`resources: queues: NAME: {...}`: an SQS queue the app needs (created on deploy,
    updated when the manifest changes; never deleted by a deploy or remove)."""

    fifo: bool | None = None
    content_based_deduplication: bool | None = Field(
        default=None, alias="contentBasedDeduplication"
    )
    delay_seconds: int | None = Field(default=None, alias="delaySeconds")
    visibility_timeout: int | None = Field(default=None, alias="visibilityTimeout")
    message_retention_period: int | None = Field(default=None, alias="messageRetentionPeriod")
    maximum_message_size: int | None = Field(default=None, alias="maximumMessageSize")
    receive_message_wait_time_seconds: int | None = Field(
        default=None, alias="receiveMessageWaitTimeSeconds"
    )
    dead_letter_queue: DeadLetterQueueSpec | None = Field(default=None, alias="deadLetterQueue")

    def attributes(self, name: str) -> dict[str, str]:
        """The queue's SQS attributes (what CreateQueue would be given)."""
        values: dict[str, Any] = {
            "FifoQueue": self.fifo if self.fifo is not None else name.endswith(".fifo") or None,
            "ContentBasedDeduplication": self.content_based_deduplication,
            "DelaySeconds": self.delay_seconds,
            "VisibilityTimeout": self.visibility_timeout,
            "MessageRetentionPeriod": self.message_retention_period,
            "MaximumMessageSize": self.maximum_message_size,
            "ReceiveMessageWaitTimeSeconds": self.receive_message_wait_time_seconds,
        }
        if self.dead_letter_queue is not None:
            values["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": self.dead_letter_queue.queue,
                    "maxReceiveCount": self.dead_letter_queue.max_receive_count,
                }
            )
        return {
            k: (str(v).lower() if isinstance(v, bool) else str(v))
            for k, v in values.items()
            if v is not None
        }


class TopicSubscriptionSpec(Spec):
    """One subscription of a declared topic: to a queue, or an HTTP(S) endpoint."""

    queue: str | None = None
    http: str | None = None
    https: str | None = None
    raw_message_delivery: bool = Field(default=False, alias="rawMessageDelivery")
    filter_policy: dict[str, Any] | None = Field(default=None, alias="filterPolicy")
    filter_policy_scope: Literal["MessageAttributes", "MessageBody"] = Field(
        default="MessageAttributes", alias="filterPolicyScope"
    )
    dead_letter_queue: str | None = Field(default=None, alias="deadLetterQueue")

    @model_validator(mode="after")
    def _one_endpoint(self) -> TopicSubscriptionSpec:
        if sum(x is not None for x in (self.queue, self.http, self.https)) != 1:
            raise ValueError("a subscription needs exactly one of queue, http or https")
        return self

    def protocol_endpoint(self) -> tuple[str, str]:
        if self.queue is not None:
            return "sqs", _name_of(self.queue)
        if self.http is not None:
            return "http", self.http
        return "https", self.https or ""

    def attributes(self) -> dict[str, str]:
        """SNS subscription attributes (what Subscribe would be given)."""
        shown = {
            "RawMessageDelivery": "true" if self.raw_message_delivery else "false",
            "FilterPolicyScope": self.filter_policy_scope,
        }
        if self.filter_policy is not None:
            shown["FilterPolicy"] = json.dumps(self.filter_policy, sort_keys=True)
        if self.dead_letter_queue is not None:
            shown["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": self.dead_letter_queue})
        return shown


class TopicResourceSpec(Spec):
    """`resources: topics: NAME: {subscriptions: [...]}`: an SNS topic the app needs."""

    subscriptions: list[TopicSubscriptionSpec] = Field(default_factory=list)


class ResourcesSpec(Spec):
    """What the app's functions use besides themselves: queues and topics."""

    queues: dict[str, QueueResourceSpec] = Field(default_factory=dict)
    topics: dict[str, TopicResourceSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid_queues(self) -> ResourcesSpec:
        # One parser for queue attributes: the one CreateQueue uses.
        for name, queue in self.queues.items():
            try:
                new_queue(name, queue.attributes(name), 0)
            except InvalidRequest as exc:
                raise ValueError(f"queue {name!r}: {exc.message}") from None
            dlq = queue.dead_letter_queue
            if dlq is not None and dlq.queue.rsplit(":", 1)[-1] not in self.queues:
                raise ValueError(
                    f"queue {name!r}: deadLetterQueue {dlq.queue!r} is not declared in "
                    "resources.queues"
                )
        return self
