"""Lambda's event source mapping operations (rest-json) for queues:
CreateEventSourceMapping (202), GetEventSourceMapping, ListEventSourceMappings,
UpdateEventSourceMapping (202) and DeleteEventSourceMapping (202)
(https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html).

Thin: parse the members botocore's model declares, call `ApiMappings`
(deploy/api_mappings.py: a mapping is an `- sqs:` event of the function's generated manifest,
so every change is a deploy), shape the answer (lambda_shapes.py). Only SQS queues are served
(`arn:aws:sqs:...`); another source, or a member unkai has no meaning for (FilterCriteria,
StartingPosition, ...), is InvalidParameterValueException naming it, never silently ignored.
The manifest's checks (batch size, window, concurrency, the queue exists) answer with the
member's name: `BatchSize: must be between 1 and 10000, got 20000`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from unkai.aws import lambda_requests as members
from unkai.aws import lambda_shapes as shapes
from unkai.aws.lambda_requests import Call, JsonAnswer, invalid
from unkai.aws.lambda_shapes import Arns
from unkai.config.queue_config import QueueMappingConfig
from unkai.deploy.api_mappings import ApiMappings
from unkai.errors import ConfigError

T = TypeVar("T")
#: ListEventSourceMappings returns at most 100 mappings a page.
MAX_LIST_ITEMS = 100
#: The members a queue mapping has here; Create and Update refuse the others.
SUPPORTED_MEMBERS = frozenset(
    {
        "EventSourceArn",
        "FunctionName",
        "Enabled",
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "FunctionResponseTypes",
        "ScalingConfig",
    }
)
FUNCTION_RESPONSE_TYPES = ("ReportBatchItemFailures",)
QUEUE_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:sqs:[^:]*:[^:]*:([A-Za-z0-9_.-]{1,80})$")
#: The `- sqs:` event's keys, as the API's members (for the deploy's errors).
EVENT_MEMBERS = {
    "queue": "EventSourceArn",
    "batchSize": "BatchSize",
    "maximumBatchingWindow": "MaximumBatchingWindowInSeconds",
    "functionResponseType": "FunctionResponseTypes",
    "maximumConcurrency": "ScalingConfig.MaximumConcurrency",
    "enabled": "Enabled",
}
_EVENT_FIELD = re.compile(r"^events\[\d+\]\.sqs(?:\.(\w+))?$")


class LambdaMappingsApi:
    def __init__(self, mappings: ApiMappings, arns: Arns) -> None:
        self._mappings = mappings
        self._arns = arns
        self.operations: dict[str, Callable[[Call], Awaitable[JsonAnswer]]] = {
            "CreateEventSourceMapping": self.create,
            "GetEventSourceMapping": self.get,
            "ListEventSourceMappings": self.list,
            "UpdateEventSourceMapping": self.update,
            "DeleteEventSourceMapping": self.delete,
        }

    async def create(self, call: Call) -> JsonAnswer:
        body = call.body
        _check_members(body)
        queue = queue_name(members.optional(body, "EventSourceArn", str))
        function = members.function_name(members.required(body, "FunctionName", str))
        config = mapping_config(body, QueueMappingConfig())
        view = await _api_worded(self._mappings.create(call.stage, function, queue, config))
        return 202, shapes.event_source_mapping(view, self._arns)

    async def get(self, call: Call) -> JsonAnswer:
        view = await self._mappings.get(call.stage, _uuid(call))
        return 200, shapes.event_source_mapping(view, self._arns)

    async def list(self, call: Call) -> JsonAnswer:
        """Filtered by EventSourceArn and FunctionName; `MaxItems` (at most 100) a page,
        ordered by function then queue; the marker is the last one's `function/queue`."""
        query = call.query
        source = query.get("EventSourceArn")
        queue = queue_name(source) if source is not None else None
        given = query.get("FunctionName")
        function = members.function_name(given) if given is not None else None
        limit = min(members.query_int(query, "MaxItems") or MAX_LIST_ITEMS, MAX_LIST_ITEMS)
        marker = query.get("Marker")
        views = [
            v
            for v in await self._mappings.list(call.stage, function)
            if (queue is None or v.mapping.queue == queue)
            and (marker is None or v.sort_key > marker)
        ]
        page = views[:limit]
        answer: dict[str, Any] = {
            "EventSourceMappings": [shapes.event_source_mapping(v, self._arns) for v in page]
        }
        if len(views) > limit:
            answer["NextMarker"] = page[-1].sort_key
        return 200, answer

    async def update(self, call: Call) -> JsonAnswer:
        body = call.body
        _check_members(body, exclude="EventSourceArn")
        uuid = _uuid(call)
        given = members.optional(body, "FunctionName", str)
        if given is not None:
            current = await self._mappings.get(call.stage, uuid)
            if members.function_name(given) != current.function:
                raise invalid(
                    f"FunctionName {given!r}: unkai does not move a mapping to another "
                    f"function (it maps {current.function!r}); delete it and create one"
                )
        mapping_config(body, QueueMappingConfig())  # refuses bad members before the deploy

        def change(config: QueueMappingConfig) -> QueueMappingConfig:
            return mapping_config(body, config)

        view = await _api_worded(self._mappings.update(call.stage, uuid, change))
        return 202, shapes.event_source_mapping(view, self._arns)

    async def delete(self, call: Call) -> JsonAnswer:
        view = await self._mappings.delete(call.stage, _uuid(call))
        return 202, shapes.event_source_mapping(view, self._arns, state="Deleting")


def queue_name(arn: str | None) -> str:
    """The queue an `arn:aws:sqs:REGION:ACCOUNT:NAME` names (queues are per platform, as in
    a manifest's `- sqs:` event). Raises InvalidRequest for anything else."""
    if arn is None:
        raise invalid(
            "EventSourceArn is required: unkai maps queues to functions "
            "(arn:aws:sqs:REGION:ACCOUNT:NAME)"
        )
    match = QUEUE_ARN.match(arn)
    if match is not None:
        return match.group(1)
    parts = arn.split(":")
    source = parts[2] if arn.startswith("arn:") and len(parts) > 2 else "not an ARN"
    raise invalid(
        f"EventSourceArn {arn!r} ({source}): unkai serves SQS queue event sources only "
        "(arn:aws:sqs:REGION:ACCOUNT:NAME)"
    )


def mapping_config(body: Mapping[str, Any], base: QueueMappingConfig) -> QueueMappingConfig:
    """`base` with the members `body` gives (types checked here, ranges by the deploy)."""
    changes: dict[str, Any] = {}
    for member, field, kind in (
        ("BatchSize", "batch_size", int),
        ("MaximumBatchingWindowInSeconds", "maximum_batching_window_s", int),
        ("Enabled", "enabled", bool),
    ):
        value = members.optional(body, member, kind)
        if value is not None:
            changes[field] = value
    types = members.optional(body, "FunctionResponseTypes", list)
    if types is not None:
        if any(t not in FUNCTION_RESPONSE_TYPES for t in types) or len(types) > 1:
            raise invalid(
                f"FunctionResponseTypes must be [] or {list(FUNCTION_RESPONSE_TYPES)}, got {types}"
            )
        changes["report_batch_item_failures"] = bool(types)
    scaling = members.optional(body, "ScalingConfig", dict)
    if scaling is not None:
        # An empty ScalingConfig removes the limit (botocore's model says so).
        changes["maximum_concurrency"] = members.optional(scaling, "MaximumConcurrency", int)
    return dataclasses.replace(base, **changes)


def _check_members(body: Mapping[str, Any], *, exclude: str | None = None) -> None:
    for member in body:
        if member not in SUPPORTED_MEMBERS or member == exclude:
            raise invalid(
                f"{member} is not supported for queue mappings by unkai; supported: "
                f"{', '.join(sorted(SUPPORTED_MEMBERS - {exclude}))}"
            )


def _uuid(call: Call) -> str:
    if call.mapping is None:
        raise invalid("UUID is required")
    return call.mapping


async def _api_worded(pending: Awaitable[T]) -> T:
    """The deploy's errors about the `- sqs:` event, naming the API's member instead
    (`events[0].sqs.batchSize: ...` -> `BatchSize: ...`)."""
    try:
        return await pending
    except ConfigError as exc:
        match = _EVENT_FIELD.match(exc.field or "")
        if match is None:
            raise
        body = exc.message.removeprefix(f"{exc.field}: ")
        member = EVENT_MEMBERS.get(match.group(1) or "")
        raise ConfigError(body, field=member, hint=exc.hint) from None
