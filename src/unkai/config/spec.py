"""The validated manifest: `AppSpec` and the specs it is made of.

`unkai.yml` maps onto these models field for field (camelCase in YAML, as serverless.yml and
SAM use, snake_case in Python). Importers for serverless.yml and SAM templates produce the same
models, so nothing downstream knows which file a spec came from. `config.load` turns pydantic's
errors into `ConfigError`s that name the file, line and field.

The models live by area: `spec_base.py` (the base, limits, validators), `http_spec.py` (HTTP
and WebSocket events, `provider.httpApi`), `event_spec.py` (schedule, queue and topic events,
`resources`); this module puts them together into functions and the app.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from unkai.config.async_config import AsyncConfig
from unkai.config.event_spec import (
    ResourcesSpec,
    ScheduleEventSpec,
    SnsEventSpec,
    SqsEventSpec,
)
from unkai.config.http_spec import (
    HttpApiSpec,
    HttpEventSpec,
    WebsocketEventSpec,
)
from unkai.config.spec_base import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT_S,
    Environment,
    Handler,
    MemoryMb,
    Name,
    Runtime,
    Spec,
    TimeoutS,
    between,
    matching,
)


class EventSourceSpec(Spec):
    """One entry of a function's `events` list; exactly one key is set."""

    http: HttpEventSpec | None = None
    websocket: WebsocketEventSpec | None = None
    schedule: ScheduleEventSpec | None = None
    sqs: SqsEventSpec | None = None
    sns: SnsEventSpec | None = None

    @model_validator(mode="after")
    def _one_source(self) -> EventSourceSpec:
        sources = (self.http, self.websocket, self.schedule, self.sqs, self.sns)
        if sum(x is not None for x in sources) != 1:
            raise ValueError(
                "an event needs exactly one source, e.g. 'http: {method: GET, path: /hello}', "
                "'websocket: $connect', 'schedule: rate(5 minutes)', 'sqs: jobs' or "
                "'sns: orders'"
            )
        return self


#: A destination or dead-letter target: a function of the stage by name, or an ARN of a
#: function, queue or topic.
_TARGET = re.compile(
    r"^([A-Za-z0-9_-]{1,64}|arn:aws:lambda:[^:]*:[^:]*:function:[A-Za-z0-9_-]{1,64}"
    r"|arn:aws:(sqs|sns):[^:]*:[^:]*:[A-Za-z0-9_.-]{1,256})$"
)
Destination = Annotated[
    str,
    matching(
        _TARGET,
        "a function name, or the ARN of a function, queue (arn:aws:sqs:...) or topic "
        "(arn:aws:sns:...)",
    ),
]
DeadLetterTarget = Annotated[
    str,
    matching(
        re.compile(r"^(arn:aws:(sqs|sns):[^:]*:[^:]*:)?[A-Za-z0-9_.-]{1,256}$"),
        "a queue name, or the ARN of a queue (arn:aws:sqs:...) or topic (arn:aws:sns:...)",
    ),
]


class DestinationsSpec(Spec):
    """Where the outcome of an asynchronous invocation goes: a function of the same stage (by
    name or ARN), a queue or a topic (by ARN)."""

    on_success: Destination | None = Field(default=None, alias="onSuccess")
    on_failure: Destination | None = Field(default=None, alias="onFailure")


class FunctionSpec(Spec):
    """One function as written; `None` fields take the provider's value (see `AppSpec`)."""

    handler: Handler
    runtime: Runtime | None = None
    memory_size: MemoryMb | None = Field(default=None, alias="memorySize")
    timeout: TimeoutS | None = None
    environment: Environment = Field(default_factory=dict)
    reserved_concurrency: Annotated[int, Field(strict=True), between(0, 1000)] | None = Field(
        default=None, alias="reservedConcurrency"
    )
    requirements: str | None = None
    description: str = ""
    events: list[EventSourceSpec] = Field(default_factory=list)
    maximum_retry_attempts: Annotated[int, Field(strict=True), between(0, 2)] = Field(
        default=2, alias="maximumRetryAttempts"
    )
    maximum_event_age: Annotated[int, Field(strict=True), between(60, 21600)] = Field(
        default=21600, alias="maximumEventAge"
    )
    destinations: DestinationsSpec = Field(default_factory=DestinationsSpec)
    #: Lambda's DeadLetterConfig: asynchronous events that ran out of attempts.
    dead_letter_queue: DeadLetterTarget | None = Field(default=None, alias="deadLetterQueue")


class ProviderSpec(Spec):
    """Defaults shared by every function of the service (serverless.yml's `provider`)."""

    name: Literal["unkai", "aws"] = "unkai"
    runtime: Runtime = "python3.11"
    memory_size: MemoryMb = Field(default=DEFAULT_MEMORY_MB, alias="memorySize")
    timeout: TimeoutS = DEFAULT_TIMEOUT_S
    environment: Environment = Field(default_factory=dict)
    region: str = "us-east-1"
    stage: Name | None = None
    http_api: HttpApiSpec = Field(default_factory=HttpApiSpec, alias="httpApi")
    websockets_api_route_selection_expression: Annotated[
        str, matching(re.compile(r"^\$request\.body\.[A-Za-z0-9_.]+$"), "'$request.body.<field>'")
    ] = Field(default="$request.body.action", alias="websocketsApiRouteSelectionExpression")


class ResolvedFunction(Spec):
    """A function with every default applied: what deploy turns into a FunctionVersion."""

    name: Name
    handler: Handler
    runtime: Runtime
    memory_size_mb: int
    timeout_s: int
    environment: dict[str, str]
    reserved_concurrency: int | None
    async_config: AsyncConfig
    requirements: str | None
    description: str
    http_events: tuple[HttpEventSpec, ...]
    websocket_events: tuple[WebsocketEventSpec, ...] = ()
    schedule_events: tuple[ScheduleEventSpec, ...] = ()
    sqs_events: tuple[SqsEventSpec, ...] = ()
    sns_events: tuple[SnsEventSpec, ...] = ()


class AppSpec(Spec):
    """The whole manifest: `service`, `provider`, `functions` and `resources`."""

    service: Name
    provider: ProviderSpec = Field(default_factory=ProviderSpec)
    functions: dict[Name, FunctionSpec] = Field(default_factory=dict)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)

    def resolved_functions(self) -> list[ResolvedFunction]:
        """Apply provider defaults; function environment overrides the provider's per key."""
        p = self.provider
        return [
            ResolvedFunction(
                name=name,
                handler=f.handler,
                runtime=f.runtime or p.runtime,
                memory_size_mb=f.memory_size or p.memory_size,
                timeout_s=f.timeout or p.timeout,
                environment={**p.environment, **f.environment},
                reserved_concurrency=f.reserved_concurrency,
                async_config=AsyncConfig(
                    f.maximum_retry_attempts,
                    f.maximum_event_age,
                    f.destinations.on_success,
                    f.destinations.on_failure,
                    f.dead_letter_queue,
                ),
                requirements=f.requirements,
                description=f.description,
                http_events=tuple(e.http for e in f.events if e.http is not None),
                websocket_events=tuple(e.websocket for e in f.events if e.websocket is not None),
                schedule_events=tuple(e.schedule for e in f.events if e.schedule is not None),
                sqs_events=tuple(e.sqs for e in f.events if e.sqs is not None),
                sns_events=tuple(e.sns for e in f.events if e.sns is not None),
            )
            for name, f in self.functions.items()
        ]
