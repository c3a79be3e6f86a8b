"""CloudWatch Logs reads over the function logs (awsJson1_1, `X-Amz-Target:
Logs_20140328.<Operation>`): DescribeLogGroups, DescribeLogStreams, GetLogEvents and
FilterLogEvents, so boto3, `aws logs get-log-events` / `filter-log-events` and AWS CLI v2's
`aws logs tail` read unkai's logs with `endpoint_url` set. Member names and limits follow
botocore/data/logs/2014-03-28/service-2.json.

Group names are aws/log_groups.py's: `/aws/lambda/<function>` for the default stage's
functions, `/unkai/<stage>/<function>` for the other stages'.
DescribeLogGroups lists the deployed functions' groups. A removed function's records stay
readable by name until the retention purge, but are not listed (the store keeps no list of
groups). `storedBytes` is not reported; `retentionInDays` is when the platform's retention is
a whole number of days.

Events, positions and filter patterns are observe/log_events.py's: each stored line is an
event, `eventId` is its record id and line number, `ingestionTime` its timestamp (the store
keeps no other). A token is a position with a direction: `f/R/L` reads forward from the gap
before line L of record R, `b/R/L` backward. GetLogEvents answers both tokens and, at the end
of a direction, the token it was given; FilterLogEvents answers one in the direction it reads
(`startFromHead`, default true, or its token's) and none at the end. A page may be short or
empty and still carry a token, as the API reference says of AWS. DescribeLogGroups' token is
the last name answered, DescribeLogStreams' the offset of the next page. A log stream's
`creationTime` is its first event's time: streams are not stored apart, so DescribeLogStreams
reads the group's records.
Unsupported filter patterns (JSON, space-delimited, regular expressions) are
InvalidParameterException; writes (CreateLogGroup, PutLogEvents, ...), Insights queries and
StartLiveTail answer 501.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from unkai.aws.endpoint import AwsCall
from unkai.aws.errors import Answer, AwsError, json_error
from unkai.aws.log_groups import Group, LogGroupNames
from unkai.aws.tokens import parse_digits
from unkai.background import Background
from unkai.deploy.registry import Registry
from unkai.errors import InvalidRequest, NotFound, UnkaiError
from unkai.gateway.errors import status_for
from unkai.gateway.http1 import Headers, HttpConnection, Request
from unkai.observe.log_events import (
    Event,
    EventReader,
    FilterPattern,
    Gap,
    Page,
    Selection,
    parse_token,
    stream_summaries,
)
from unkai.observe.logs import LogService

log = logging.getLogger("unkai.aws")

TARGET_PREFIX = "Logs_20140328."
#: GetLogEvents / FilterLogEvents: "up to 10,000 log events" (the default and the maximum).
MAX_EVENTS = 10_000
#: DescribeLogGroups / DescribeLogStreams: "the default is up to 50 items" (and the maximum).
MAX_DESCRIBE = 50

_CONTENT_TYPE = (b"content-type", b"application/x-amz-json-1.1")
#: Every client error but ResourceNotFoundException (the model lists no other).
INVALID = "InvalidParameterException"

Params = dict[str, Any]
Operation = Callable[["LogsApi", Params], Awaitable[dict[str, Any]]]


class LogsApi:
    """The `AwsService` of CloudWatch Logs' reads (X-Amz-Target `Logs_20140328.<Op>`)."""

    def __init__(
        self,
        logs: LogService,
        registry: Registry,
        *,
        default_stage: str,
        account_id: str,
        region: str,
    ) -> None:
        self._logs = logs
        self._registry = registry
        self._names = LogGroupNames(
            default_stage=default_stage, account_id=account_id, region=region
        )
        self._tasks = Background()

    def handle_call(self, request: Request, connection: HttpConnection, call: AwsCall) -> None:
        self._tasks.spawn(self._answer(request, connection, call.request_id))

    async def _answer(self, request: Request, connection: HttpConnection, request_id: str) -> None:
        target = (request.header(b"x-amz-target") or b"").decode("latin-1")
        name = target.removeprefix(TARGET_PREFIX)
        operation = _OPERATIONS.get(name)
        if operation is None:
            error = AwsError(
                "UnknownOperationException",
                f"unkai does not serve the CloudWatch Logs operation {name!r}; it serves "
                f"{', '.join(_OPERATIONS)}",
                501,
            )
            connection.respond(*json_error(error, request_id))
            return
        try:
            result = await operation(self, _params(request.body))
        except UnkaiError as exc:
            connection.respond(*_error(exc, request_id))
            return
        except Exception:  # boundary: the caller gets a 500, the log the cause
            log.exception("CloudWatch Logs %s failed", name)
            error = AwsError("ServiceUnavailableException", f"{name} failed inside unkai", 500)
            connection.respond(*json_error(error, request_id))
            return
        headers: Headers = [_CONTENT_TYPE, (b"x-amzn-requestid", request_id.encode())]
        connection.respond(200, headers, orjson.dumps(result))

    # -- operations -----------------------------------------------------------------------

    async def describe_log_groups(self, p: Params) -> dict[str, Any]:
        groups = _select_groups(await self._groups(), p, self._names)
        limit = _int(p, "limit", 1, MAX_DESCRIBE) or MAX_DESCRIBE
        after = _string(p, "nextToken")
        remaining = [g for g in groups if after is None or g.name > after]
        page = remaining[:limit]
        brief = p.get("logGroupNamePattern") is not None
        result: dict[str, Any] = {"logGroups": [await self._group_shape(g, brief) for g in page]}
        if len(remaining) > limit:
            result["nextToken"] = page[-1].name
        return result

    async def describe_log_streams(self, p: Params) -> dict[str, Any]:
        group = await self._group(p)
        prefix = _string(p, "logStreamNamePrefix")
        by_time = _choice(p, "orderBy", ("LogStreamName", "LastEventTime")) == "LastEventTime"
        if by_time and prefix is not None:
            raise InvalidRequest("Cannot order by LastEventTime with a logStreamNamePrefix.")
        streams = await stream_summaries(self._logs, stage=group.stage, function=group.function)
        streams = [s for s in streams if prefix is None or s.name.startswith(prefix)]
        if by_time:
            streams.sort(key=lambda s: (s.last_event_ms, s.name))
        if p.get("descending") is True:
            streams.reverse()
        start = _offset(p)
        limit = _int(p, "limit", 1, MAX_DESCRIBE) or MAX_DESCRIBE
        arn = self._names.arn(group)
        shapes = [
            {
                "logStreamName": s.name,
                "creationTime": s.first_event_ms,
                "firstEventTimestamp": s.first_event_ms,
                "lastEventTimestamp": s.last_event_ms,
                "lastIngestionTime": s.last_event_ms,
                "arn": f"{arn}:log-stream:{s.name}",
                # "this parameter was deprecated for log streams, and is always reported as
                # zero" (API_LogStream).
                "storedBytes": 0,
            }
            for s in streams[start : start + limit]
        ]
        result: dict[str, Any] = {"logStreams": shapes}
        if start + limit < len(streams):
            result["nextToken"] = str(start + limit)
        return result

    async def get_log_events(self, p: Params) -> dict[str, Any]:
        group = await self._group(p)
        stream = _string(p, "logStreamName")
        if stream is None:
            raise InvalidRequest("logStreamName is required.")
        end_ms = _int(p, "endTime", 0)
        selection = Selection(
            group.stage,
            group.function,
            since_ms=_int(p, "startTime", 0),
            # Exclusive here ("equal to or later than this time are not included").
            until_ms=None if end_ms is None else end_ms - 1,
            streams=(stream,),
        )
        token = p.get("nextToken")
        forward, start = _direction(p, token, from_head=False)
        limit = _int(p, "limit", 1, MAX_EVENTS) or MAX_EVENTS
        page = await EventReader(self._logs, selection).page(start, forward=forward, limit=limit)
        if not page.events and token is None:
            await self._require_stream(group, stream)
        return _get_events_answer(page, forward, token)

    async def filter_log_events(self, p: Params) -> dict[str, Any]:
        group = await self._group(p)
        names = p.get("logStreamNames")
        prefix = _string(p, "logStreamNamePrefix")
        if names is not None and prefix is not None:
            raise InvalidRequest("logStreamNames and logStreamNamePrefix cannot both be specified.")
        if names is not None and (
            not isinstance(names, list) or not all(isinstance(n, str) for n in names)
        ):
            raise InvalidRequest("logStreamNames must be a list of strings.")
        selection = Selection(
            group.stage,
            group.function,
            since_ms=_int(p, "startTime", 0),
            until_ms=_int(p, "endTime", 0),
            streams=tuple(names or ()),
            stream_prefix=prefix,
            pattern=FilterPattern.parse(_string(p, "filterPattern", empty=True) or ""),
        )
        token = p.get("nextToken")
        forward, start = _direction(p, token, from_head=True)
        limit = _int(p, "limit", 1, MAX_EVENTS) or MAX_EVENTS
        page = await EventReader(self._logs, selection).page(start, forward=forward, limit=limit)
        result: dict[str, Any] = {
            "events": [_filtered_event(e) for e in page.events],
            "searchedLogStreams": [],  # "no longer supported. This parameter returns an empty list"
        }
        if not page.done:
            result["nextToken"] = page.stop.token("f" if forward else "b")
        return result

    # -- groups ---------------------------------------------------------------------------

    async def _groups(self) -> list[Group]:
        """The deployed functions' groups, ASCII-sorted by name as AWS lists them."""
        groups = [self._names.group(v.stage, v.name) for v in await self._registry.list_functions()]
        return sorted(groups, key=lambda g: g.name)

    async def _group(self, p: Params) -> Group:
        """The group a call names (logGroupName or logGroupIdentifier, not both).

        Raises ResourceNotFoundException unless its function is deployed or it has records.
        """
        name, identifier = _string(p, "logGroupName"), _string(p, "logGroupIdentifier")
        if (name is None) == (identifier is None):
            raise InvalidRequest(
                "Exactly one of logGroupName and logGroupIdentifier must be specified.",
            )
        shown = name or identifier or ""
        group = self._names.parse(shown)
        if group is not None and await self._group_exists(group):
            return group
        raise NotFound(
            f"The specified log group does not exist: {shown!r} (unkai's log groups are "
            f"{self._names.describe()})"
        )

    async def _group_exists(self, group: Group) -> bool:
        """A deployed function's group, or one that still has records (a removed function)."""
        deployed = await self._registry.list_functions(group.stage)
        if any(v.name == group.function for v in deployed):
            return True
        return bool(await self._logs.query(stage=group.stage, function=group.function, limit=1))

    async def _group_shape(self, group: Group, brief: bool) -> dict[str, Any]:
        oldest = await self._logs.query(stage=group.stage, function=group.function, limit=1)
        if oldest:
            created_ms = oldest[0].timestamp_ms
        else:
            created_ms = (await self._registry.get_version(group.stage, group.function)).created_ms
        shape: dict[str, Any] = {
            "logGroupName": group.name,
            "creationTime": created_ms,
            "arn": f"{self._names.arn(group)}:*",
        }
        if brief:  # "If you specify logGroupNamePattern ... only arn, creationTime, and
            return shape  # logGroupName are included in the response."
        shape.update(
            metricFilterCount=0, logGroupArn=self._names.arn(group), logGroupClass="STANDARD"
        )
        days = self._logs.retention_hours / 24
        if days == int(days):
            shape["retentionInDays"] = int(days)
        return shape

    async def _require_stream(self, group: Group, stream: str) -> None:
        found = await self._logs.query(
            stage=group.stage, function=group.function, streams=(stream,), limit=1
        )
        if not found:
            raise NotFound(f"The specified log stream does not exist: {stream!r}")


_OPERATIONS: dict[str, Operation] = {
    "DescribeLogGroups": LogsApi.describe_log_groups,
    "DescribeLogStreams": LogsApi.describe_log_streams,
    "GetLogEvents": LogsApi.get_log_events,
    "FilterLogEvents": LogsApi.filter_log_events,
}
#: The operations served, as docs/aws-compatibility.md lists them (a test checks they agree).
SERVED_OPERATIONS = frozenset(_OPERATIONS)


def _select_groups(groups: list[Group], p: Params, names: LogGroupNames) -> list[Group]:
    """DescribeLogGroups' filters: a prefix, a substring, or a list of names or ARNs."""
    prefix = _string(p, "logGroupNamePrefix")
    pattern = _string(p, "logGroupNamePattern", empty=True)
    identifiers = p.get("logGroupIdentifiers")
    if sum(x is not None for x in (prefix, pattern, identifiers)) > 1:
        raise InvalidRequest(
            "logGroupNamePrefix, logGroupNamePattern and logGroupIdentifiers are mutually "
            "exclusive.",
        )
    classes = ("STANDARD", "INFREQUENT_ACCESS", "DELIVERY", "ESSENTIALS")
    if _choice(p, "logGroupClass", classes) not in (None, "STANDARD"):
        return []  # every unkai group is STANDARD
    if identifiers is not None:
        if not isinstance(identifiers, list) or not all(isinstance(i, str) for i in identifiers):
            raise InvalidRequest("logGroupIdentifiers must be a list of strings.")
        wanted = {names.parse(i) for i in identifiers}
        return [g for g in groups if g in wanted]
    if prefix is not None:
        return [g for g in groups if g.name.startswith(prefix)]
    if pattern is not None:
        return [g for g in groups if pattern in g.name]  # "case-sensitive substring search"
    return groups


def _get_events_answer(page: Page, forward: bool, token: Any) -> dict[str, Any]:
    """GetLogEvents' answer: events oldest first, and both tokens ("never null")."""
    events = page.events if forward else page.events[::-1]
    if forward:
        ahead = page.stop
        behind = Gap(events[0].record.id, events[0].line) if events else page.start
    else:
        behind = page.stop
        ahead = events[-1].after(True) if events else page.start
    result: dict[str, Any] = {
        "events": [
            {
                "timestamp": e.record.timestamp_ms,
                "message": e.message,
                "ingestionTime": e.record.timestamp_ms,
            }
            for e in events
        ],
        "nextForwardToken": ahead.token("f"),
        "nextBackwardToken": behind.token("b"),
    }
    # "If you have reached the end of the stream, it returns the same token you passed in."
    if token is not None and not events and page.done:
        result["nextForwardToken" if forward else "nextBackwardToken"] = token
    return result


def _filtered_event(event: Event) -> dict[str, Any]:
    record = event.record
    return {
        "logStreamName": record.stream,
        "timestamp": record.timestamp_ms,
        "message": event.message,
        "ingestionTime": record.timestamp_ms,
        "eventId": f"{record.id:020d}{event.line:010d}",
    }


def _error(exc: UnkaiError, request_id: str) -> Answer:
    """CloudWatch Logs' codes; it answers client errors (ResourceNotFound too) with 400."""
    status = status_for(exc)
    code = {400: INVALID, 404: "ResourceNotFoundException"}.get(status, exc.code)
    error = AwsError(code, exc.message, 400 if status < 500 else status, sender_fault=status < 500)
    return json_error(error, request_id)


# -- parameters ---------------------------------------------------------------------------


def _params(body: bytes | None) -> Params:
    try:
        params = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not JSON: {exc}") from None
    if not isinstance(params, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return params


def _string(p: Params, name: str, *, empty: bool = False) -> str | None:
    value = p.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or (not value and not empty):
        raise InvalidRequest(f"{name} must be a non-empty string, got {value!r}.")
    return value


def _int(p: Params, name: str, low: int, high: int | None = None) -> int | None:
    value = p.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidRequest(f"{name} must be an integer >= {low}, got {value!r}.")
    if high is not None and value > high:
        raise InvalidRequest(f"{name} must be at most {high}, got {value}.")
    return value


def _bool(p: Params, name: str, default: bool) -> bool:
    value = p.get(name, default)
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name} must be true or false, got {value!r}.")
    return value


def _choice(p: Params, name: str, allowed: tuple[str, ...]) -> str | None:
    value = p.get(name)
    if value is not None and value not in allowed:
        raise InvalidRequest(f"{name} must be one of {', '.join(allowed)}, got {value!r}.")
    return value


def _direction(p: Params, token: Any, *, from_head: bool) -> tuple[bool, Gap | None]:
    """(forward, start): the token's, else `startFromHead` (default `from_head`) from an end."""
    if token is not None:
        return parse_token(token)
    return _bool(p, "startFromHead", from_head), None


def _offset(p: Params) -> int:
    """The offset a `nextToken` unkai gave names (0 without one); raises InvalidRequest."""
    token = p.get("nextToken")
    if token is None:
        return 0
    offset = parse_digits(token)
    if offset is None:
        raise InvalidRequest(f"The specified nextToken is invalid: {token!r}")
    return offset
