"""The validated manifest: `AppSpec` and the specs it is made of.

`unkai.yml` maps onto these models field for field (camelCase in YAML, as serverless.yml and
SAM use, snake_case in Python). Importers for serverless.yml and SAM templates produce the same
models, so nothing downstream knows which file a spec came from. `config.load` turns pydantic's
errors into `ConfigError`s that name the file, line and field.

Limits follow Lambda (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
memory 128 to 10240 MB, timeout 1 to 900 s, function names of 1 to 64 of [A-Za-z0-9_-].
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from unkai.config.async_config import AsyncConfig
from unkai.config.http_api import (
    DEFAULT_ACCESS_LOG_FORMAT,
    QUOTA_PERIODS,
    CorsConfig,
    IpRules,
    ThrottleConfig,
    UsagePlanConfig,
    identity_source_problem,
    unknown_access_log_variables,
)
from unkai.config.queue_config import new_queue
from unkai.config.schedule_expressions import ScheduleError
from unkai.config.schedule_expressions import validate as validate_schedule
from unkai.errors import InvalidRequest

MEMORY_MIN_MB, MEMORY_MAX_MB = 128, 10240
TIMEOUT_MIN_S, TIMEOUT_MAX_S = 1, 900
DEFAULT_MEMORY_MB = 128  # Lambda's default
DEFAULT_TIMEOUT_S = 3  # Lambda's default
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HANDLER_PATTERN = re.compile(r"^[A-Za-z_][\w]*(/[\w.-]+)*(\.[A-Za-z_]\w*)+$")
PATH_PATTERN = re.compile(r"^(/[A-Za-z0-9._~!$&'()*,;=:@%{}+/-]*|\$default)$")
#: API Gateway's catch-all route key: requests no other route matches.
DEFAULT_ROUTE = "$default"
#: Python runtimes run on the platform's interpreter; `provided*` run the bundle's `bootstrap`
#: through the Runtime API (runtime/custom.py).
RUNTIME_PATTERN = re.compile(r"^(python3\.\d+|provided|provided\.al2|provided\.al2023)$")


def _between(lo: int, hi: int) -> AfterValidator:
    def check(value: int) -> int:
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}, got {value}")
        return value

    return AfterValidator(check)


def _matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"must be {what}, got {value!r}")
        return value

    return AfterValidator(check)


def _env_value(value: Any) -> Any:
    """YAML turns `PORT: 80` into an int; Lambda environment values are strings, so we cast."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _http_method(value: str) -> str:
    """A field validator (not a model one) so the error names `http.method`, not `http`."""
    method = value.upper()
    if method not in HTTP_METHODS:
        raise ValueError(f"must be one of {', '.join(HTTP_METHODS)}, got {value!r}")
    return method


MemoryMb = Annotated[int, Field(strict=True), _between(MEMORY_MIN_MB, MEMORY_MAX_MB)]
TimeoutS = Annotated[int, Field(strict=True), _between(TIMEOUT_MIN_S, TIMEOUT_MAX_S)]
Name = Annotated[str, _matching(NAME_PATTERN, "1 to 64 letters, digits, '-' or '_'")]
Handler = Annotated[str, _matching(HANDLER_PATTERN, "'module.function', e.g. 'handler.main'")]
Runtime = Annotated[
    str,
    _matching(RUNTIME_PATTERN, "a runtime such as 'python3.11' or 'provided.al2023'"),
]
Environment = dict[str, Annotated[str, BeforeValidator(_env_value)]]


class Spec(BaseModel):
    """Base for manifest models: camelCase aliases, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, alias_generator=None
    )


def _payload_version(value: Any) -> Any:
    """YAML reads an unquoted `1.0` as a float; the payload version is a string."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{float(value):.1f}"
    return value


PayloadVersion = Annotated[Literal["1.0", "2.0"], BeforeValidator(_payload_version)]


class ThrottleSpec(Spec):
    """Token bucket: `rate` requests per second, bursts of up to `burst` (API Gateway's)."""

    rate: Annotated[float, Field(gt=0, le=100_000)]
    burst: Annotated[int, Field(strict=True), _between(1, 100_000)]

    def config(self) -> ThrottleConfig:
        return ThrottleConfig(self.rate, self.burst)


def _quota_period(value: str) -> str:
    period = value.upper()
    if period not in QUOTA_PERIODS:
        raise ValueError(f"must be one of {', '.join(QUOTA_PERIODS)}, got {value!r}")
    return period


def _cors_shorthand(value: Any) -> Any:
    """`cors: true` allows every origin, method and header (serverless.yml's shorthand)."""
    if value is True:
        return {"allowOrigins": ["*"], "allowMethods": ["*"], "allowHeaders": ["*"]}
    if value is False:
        return None
    return value


class CorsSpec(Spec):
    """API Gateway HTTP API's CorsConfiguration."""

    allow_origins: list[str] = Field(default_factory=list, alias="allowOrigins")
    allow_methods: list[str] = Field(default_factory=list, alias="allowMethods")
    allow_headers: list[str] = Field(default_factory=list, alias="allowHeaders")
    expose_headers: list[str] = Field(default_factory=list, alias="exposeHeaders")
    allow_credentials: bool = Field(default=False, alias="allowCredentials")
    max_age: Annotated[int, Field(strict=True), _between(0, 86400)] | None = Field(
        default=None, alias="maxAge"
    )

    @model_validator(mode="after")
    def _consistent(self) -> CorsSpec:
        problems = self.config().validate()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def config(self) -> CorsConfig:
        return CorsConfig(
            allow_origins=tuple(self.allow_origins),
            allow_methods=tuple(m.upper() for m in self.allow_methods),
            allow_headers=tuple(self.allow_headers),
            expose_headers=tuple(self.expose_headers),
            allow_credentials=self.allow_credentials,
            max_age=self.max_age,
        )


class QuotaSpec(Spec):
    """Requests allowed per key per period (UTC day, ISO week from Monday, calendar month)."""

    limit: Annotated[int, Field(strict=True), _between(1, 1_000_000_000)]
    period: Annotated[str, AfterValidator(_quota_period)] = "DAY"


class UsagePlanSpec(Spec):
    throttle: ThrottleSpec | None = None
    quota: QuotaSpec | None = None

    def config(self) -> UsagePlanConfig:
        return UsagePlanConfig(
            self.throttle.config() if self.throttle is not None else None,
            self.quota.limit if self.quota is not None else None,
            self.quota.period if self.quota is not None else "DAY",
        )


class AuthorizerSpec(Spec):
    """`provider.httpApi.authorizers.<name>`: a JWT authorizer (`type: jwt`) or a function
    (Lambda REQUEST) authorizer (`type: request`), with API Gateway's settings."""

    type: Literal["jwt", "request"]
    issuer: str | None = None
    audience: list[str] = Field(default_factory=list)
    jwks_url: str | None = Field(default=None, alias="jwksUrl")
    key: str | None = None
    leeway_seconds: Annotated[int, Field(strict=True), _between(0, 300)] = Field(
        default=5, alias="leewaySeconds"
    )
    function_name: Name | None = Field(default=None, alias="functionName")
    identity_source: list[str] = Field(
        default_factory=lambda: ["$request.header.Authorization"], alias="identitySource"
    )
    result_ttl_in_seconds: Annotated[int, Field(strict=True), _between(0, 3600)] = Field(
        default=300, alias="resultTtlInSeconds"
    )
    enable_simple_responses: bool = Field(default=True, alias="enableSimpleResponses")

    @model_validator(mode="after")
    def _complete(self) -> AuthorizerSpec:
        problem = self._jwt_problem() if self.type == "jwt" else self._request_problem()
        if problem:
            raise ValueError(problem)
        return self

    def _jwt_problem(self) -> str:
        if not self.issuer:
            return "a jwt authorizer needs 'issuer'"
        if not self.audience:
            return "a jwt authorizer needs 'audience' (a list of client ids)"
        if (self.jwks_url is None) == (self.key is None):
            return "a jwt authorizer needs exactly one of 'jwksUrl' and 'key'"
        key = (self.key or "").lstrip()
        if self.key is None or key.startswith("-----BEGIN"):
            return ""
        # Not PEM, so it is taken as an HMAC secret: a short one, or a pasted public JWK,
        # would let anyone who knows it sign tokens.
        if key.startswith("{"):
            return "key: give a PEM public key, not a JWK (or use jwksUrl)"
        if len(key) < 32:
            return "key: an HMAC secret needs at least 32 characters; a public key must be PEM"
        return ""

    def _request_problem(self) -> str:
        if self.function_name is None:
            return "a request authorizer needs 'functionName'"
        problems = [p for p in map(identity_source_problem, self.identity_source) if p]
        if problems:
            return "identitySource: " + "; ".join(problems)
        if self.result_ttl_in_seconds > 0 and not self.identity_source:
            return (
                "caching (resultTtlInSeconds > 0) needs an identitySource; add one or set "
                "resultTtlInSeconds: 0"
            )
        return ""

    def settings(self) -> dict[str, Any]:
        """The document the gateway's authorizer class reads (`from_doc`)."""
        if self.type == "jwt":
            doc: dict[str, Any] = {
                "issuer": self.issuer,
                "audience": self.audience,
                "leewaySeconds": self.leeway_seconds,
            }
            if self.jwks_url is not None:
                doc["jwksUri"] = self.jwks_url
            if self.key is not None:
                doc["staticKey"] = self.key
            return doc
        return {
            "function": self.function_name,
            "identitySource": self.identity_source,
            "resultTtlInSeconds": self.result_ttl_in_seconds,
            "enableSimpleResponses": self.enable_simple_responses,
        }


class RouteAuthorizerSpec(Spec):
    """An event's `authorizer: {name, scopes}` (or just the name)."""

    name: Name
    scopes: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data


def _access_log_shorthand(value: Any) -> Any:
    """`accessLogs: true` logs in the default format."""
    if value is True:
        return {}
    if value is False:
        return None
    return value


class AccessLogSpec(Spec):
    """`provider.httpApi.accessLogs`: a line per request in a `$context` format."""

    format: str = DEFAULT_ACCESS_LOG_FORMAT

    @model_validator(mode="after")
    def _known(self) -> AccessLogSpec:
        unknown = unknown_access_log_variables(self.format)
        if unknown:
            names = ", ".join(f"$context.{name}" for name in unknown)
            raise ValueError(f"unknown variables {names} (see docs/routing.md)")
        return self


class HttpApiSpec(Spec):
    """`provider.httpApi`: options for every route of the service (its HTTP API)."""

    payload: PayloadVersion = "2.0"
    cors: Annotated[CorsSpec | None, BeforeValidator(_cors_shorthand)] = None
    throttle: ThrottleSpec | None = None
    stage_throttle: ThrottleSpec | None = Field(default=None, alias="stageThrottle")
    api_key_required: bool = Field(default=False, alias="apiKeyRequired")
    usage_plans: dict[Name, UsagePlanSpec] = Field(default_factory=dict, alias="usagePlans")
    stage_variables: Environment = Field(default_factory=dict, alias="stageVariables")
    ip_allow: list[str] = Field(default_factory=list, alias="ipAllow")
    ip_deny: list[str] = Field(default_factory=list, alias="ipDeny")
    authorizers: dict[Name, AuthorizerSpec] = Field(default_factory=dict)
    access_logs: Annotated[AccessLogSpec | None, BeforeValidator(_access_log_shorthand)] = Field(
        default=None, alias="accessLogs"
    )

    @model_validator(mode="after")
    def _cidrs(self) -> HttpApiSpec:
        problems = self.ip_rules().validate()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def ip_rules(self) -> IpRules:
        return IpRules(tuple(self.ip_allow), tuple(self.ip_deny))


class HttpEventSpec(Spec):
    """`events: - http: {method, path}`; the string form `GET /hello` is accepted too.
    `payload` and `throttle` override the service's `provider.httpApi` for this route."""

    #: Upper-cased on validation, so `get` and `GET` are one route.
    method: Annotated[str, AfterValidator(_http_method)]
    path: Annotated[str, _matching(PATH_PATTERN, "a path starting with '/' (or '$default')")]
    payload: PayloadVersion | None = None
    throttle: ThrottleSpec | None = None
    api_key_required: bool | None = Field(default=None, alias="apiKeyRequired")
    authorizer: RouteAuthorizerSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            if data.strip() == DEFAULT_ROUTE:
                return {"method": "ANY", "path": DEFAULT_ROUTE}
            parts = data.split()
            if len(parts) != 2:
                raise ValueError(f"must be 'METHOD /path' or '$default', got {data!r}")
            return {"method": parts[0], "path": parts[1]}
        if isinstance(data, dict) and data.get("path") == DEFAULT_ROUTE:
            data = {"method": "ANY", **data}
        return data


WEBSOCKET_ROUTE_PATTERN = re.compile(r"^(\$connect|\$disconnect|\$default|[A-Za-z0-9_.:-]{1,128})$")


class WebsocketEventSpec(Spec):
    """`events: - websocket: {route: $connect}` (or just `- websocket: $connect`): a route of the
    stage's WebSocket API. `routeResponseSelectionExpression: $default` sends the function's
    answer back to the client (a two-way route), as serverless.yml spells it."""

    route: Annotated[
        str,
        _matching(WEBSOCKET_ROUTE_PATTERN, "'$connect', '$disconnect', '$default' or a route key"),
    ]
    route_response_selection_expression: Literal["$default"] | None = Field(
        default=None, alias="routeResponseSelectionExpression"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_route(cls, data: Any) -> Any:
        return {"route": data} if isinstance(data, str) else data


class ScheduleEventSpec(Spec):
    """`events: - schedule: rate(5 minutes)` or `{rate, timezone, input, enabled, name}`: run the
    function on an EventBridge schedule expression (`rate(...)` or six-field `cron(...)`)."""

    rate: str
    timezone: str = "UTC"
    input: dict[str, Any] | None = None
    enabled: bool = True
    name: Annotated[str, _matching(NAME_PATTERN, "1 to 64 letters, digits, '-' or '_'")] | None = (
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
    batch_size: Annotated[int, Field(strict=True), _between(1, 10000)] = Field(
        default=10, alias="batchSize"
    )
    maximum_batching_window: Annotated[int, Field(strict=True), _between(0, 300)] = Field(
        default=0, alias="maximumBatchingWindow"
    )
    function_response_type: Literal["ReportBatchItemFailures"] | None = Field(
        default=None, alias="functionResponseType"
    )
    maximum_concurrency: Annotated[int, Field(strict=True), _between(2, 1000)] | None = Field(
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


class DeadLetterQueueSpec(Spec):
    queue: Annotated[str, Field(min_length=1)]
    max_receive_count: Annotated[int, Field(strict=True), _between(1, 1000)] = Field(
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


#: A destination or dead-letter target: a function of the stage by name, or an ARN of a
#: function, queue or topic.
_TARGET = re.compile(
    r"^([A-Za-z0-9_-]{1,64}|arn:aws:lambda:[^:]*:[^:]*:function:[A-Za-z0-9_-]{1,64}"
    r"|arn:aws:(sqs|sns):[^:]*:[^:]*:[A-Za-z0-9_.-]{1,256})$"
)
Destination = Annotated[
    str,
    _matching(
        _TARGET,
        "a function name, or the ARN of a function, queue (arn:aws:sqs:...) or topic "
        "(arn:aws:sns:...)",
    ),
]
DeadLetterTarget = Annotated[
    str,
    _matching(
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
    reserved_concurrency: Annotated[int, Field(strict=True), _between(0, 1000)] | None = Field(
        default=None, alias="reservedConcurrency"
    )
    requirements: str | None = None
    description: str = ""
    events: list[EventSourceSpec] = Field(default_factory=list)
    maximum_retry_attempts: Annotated[int, Field(strict=True), _between(0, 2)] = Field(
        default=2, alias="maximumRetryAttempts"
    )
    maximum_event_age: Annotated[int, Field(strict=True), _between(60, 21600)] = Field(
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
        str, _matching(re.compile(r"^\$request\.body\.[A-Za-z0-9_.]+$"), "'$request.body.<field>'")
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
