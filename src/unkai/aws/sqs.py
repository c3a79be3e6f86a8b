"""SQS's JSON protocol (`X-Amz-Target: AmazonSQS.<Operation>`, awsJson1_0), so boto3, the AWS
CLI and functions' SDK clients use unkai's queues with `endpoint_url` set; calls without a
target speak the older query protocol, which `sqs_query` translates to and from the same
operations.

Thin: each operation parses its request and calls `QueueService`; errors carry SQS's names in
`__type` and, because SQS is "query compatible", the legacy code in `x-amzn-query-error`,
which is the code boto3 shows (`AWS.SimpleQueueService.NonExistentQueue`)
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-json-faqs.html).
Signatures are verified by `AwsEndpoint` before a call reaches this module.

Every request is answered: the members are read with `queue_requests`' typed readers before
an operation changes anything (a wrong type is SQS's 400), and anything else an operation
raises is logged and answered as SQS's `InternalError` (500), never left to the client's
read timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from unkai.aws import sqs_query
from unkai.aws.endpoint import AwsCall
from unkai.aws.errors import Answer, AwsError, query_error
from unkai.aws.tokens import parse_digits
from unkai.background import Background
from unkai.errors import InvalidRequest, UnkaiError
from unkai.events import queue_requests as members
from unkai.events.queue_requests import EntryError, Params, SendEntry, check_batch, check_range
from unkai.events.queue_shapes import batch_result, message_shape, sent_shape
from unkai.events.queues import QueueService
from unkai.gateway.errors import status_for
from unkai.gateway.http1 import Headers, HttpConnection, Request

log = logging.getLogger("unkai.aws")

_CONTENT_TYPE = (b"content-type", b"application/x-amz-json-1.0")
#: ListQueues' and ListDeadLetterSourceQueues' MaxResults: "Value range is 1 to 1000"
#: (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListQueues.html).
MAX_RESULTS = 1000
#: The codes SQS's query protocol used, which its JSON protocol still reports.
_QUERY_CODES = {
    "QueueDoesNotExist": "AWS.SimpleQueueService.NonExistentQueue",
    "QueueNameExists": "QueueAlreadyExists",
    "PurgeQueueInProgress": "AWS.SimpleQueueService.PurgeQueueInProgress",
    "BatchEntryIdsNotDistinct": "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
    "TooManyEntriesInBatchRequest": "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    "EmptyBatchRequest": "AWS.SimpleQueueService.EmptyBatchRequest",
    "InvalidBatchEntryId": "AWS.SimpleQueueService.InvalidBatchEntryId",
    "BatchRequestTooLong": "AWS.SimpleQueueService.BatchRequestTooLong",
    "MessageNotInflight": "AWS.SimpleQueueService.MessageNotInflight",
    "UnsupportedOperation": "AWS.SimpleQueueService.UnsupportedOperation",
}
Operation = Callable[["SqsApi", Params, str], Awaitable[dict[str, Any]]]


class SqsApi:
    """The `AwsService` of SQS: its JSON protocol (X-Amz-Target `AmazonSQS.<Operation>`) and
    its query protocol (a form with `Action=<Operation>`)."""

    def __init__(self, queues: QueueService) -> None:
        self._queues = queues
        self._tasks = Background()

    def handle_call(self, request: Request, connection: HttpConnection, call: AwsCall) -> None:
        json_call = request.header(b"x-amz-target") is not None
        answer = self._answer if json_call else self._answer_query
        self._tasks.spawn(answer(request, connection, call.request_id))

    async def call(self, action: str, params: Params, host: str) -> dict[str, Any]:
        """Run the operation `action` on params in the JSON protocol's shape and return its
        result dict; raises UnkaiError (UnsupportedOperation for one unkai does not serve)."""
        operation = _OPERATIONS.get(action)
        if operation is None:
            raise InvalidRequest(
                f"{action!r} is not an SQS operation unkai supports",
                code="UnsupportedOperation",
            )
        return await operation(self, params, host)

    async def _answer(self, request: Request, connection: HttpConnection, request_id: str) -> None:
        action = (request.header(b"x-amz-target") or b"").decode("latin-1")
        action = action.removeprefix("AmazonSQS.")
        try:
            answer = await self._json_answer(request, action, request_id)
        except Exception:  # boundary: a bug answers 500 and is logged, never a hung request
            log.exception("SQS %s failed", action)
            answer = _json_error("InternalError", _internal_error(action), request_id)
        connection.respond(*answer)

    async def _json_answer(self, request: Request, action: str, request_id: str) -> Answer:
        try:
            result = await self.call(action, _json_params(request.body), _host(request))
        except UnkaiError as exc:
            return _error(exc, request_id)
        headers: Headers = [_CONTENT_TYPE, (b"x-amzn-requestid", request_id.encode())]
        return 200, headers, orjson.dumps(result)

    async def _answer_query(
        self, request: Request, connection: HttpConnection, request_id: str
    ) -> None:
        try:
            answer = await self._query_answer(request, request_id)
        except Exception:  # boundary: a bug answers 500 and is logged, never a hung request
            log.exception("SQS query request to %s failed", request.path)
            answer = query_error(_internal_error("the request"), request_id)
        connection.respond(*answer)

    async def _query_answer(self, request: Request, request_id: str) -> Answer:
        try:
            action, params = sqs_query.decode_form(request)
            result = await self.call(action, params, _host(request))
        except UnkaiError as exc:
            return query_error(_query_error(exc), request_id)
        headers: Headers = [
            (b"content-type", b"text/xml"),
            (b"x-amzn-requestid", request_id.encode()),
        ]
        return 200, headers, sqs_query.encode_result(action, result, request_id)

    # -- operations -----------------------------------------------------------------------

    def _url(self, host: str, name: str) -> str:
        return f"http://{host}/{self._queues.account_id}/{name}"

    async def create_queue(self, p: Params, host: str) -> dict[str, Any]:
        name = members.required_text(p, "QueueName")
        await self._queues.create(name, members.string_map(p, "Attributes"))
        return {"QueueUrl": self._url(host, name)}

    async def get_queue_url(self, p: Params, host: str) -> dict[str, Any]:
        config = self._queues.get(members.required_text(p, "QueueName"))
        return {"QueueUrl": self._url(host, config.name)}

    async def list_queues(self, p: Params, host: str) -> dict[str, Any]:
        prefix = members.text(p, "QueueNamePrefix") or ""
        page, token = _page(self._queues.names(prefix), p, "ListQueues")
        result: dict[str, Any] = {"QueueUrls": [self._url(host, n) for n in page]}
        if token is not None:
            result["NextToken"] = token
        return result

    async def delete_queue(self, p: Params, host: str) -> dict[str, Any]:
        await self._queues.delete(_queue(p))
        return {}

    async def get_queue_attributes(self, p: Params, host: str) -> dict[str, Any]:
        wanted = members.string_list(p, "AttributeNames") or ["All"]
        return {"Attributes": await self._queues.attributes(_queue(p), wanted)}

    async def set_queue_attributes(self, p: Params, host: str) -> dict[str, Any]:
        attributes = members.string_map(p, "Attributes")
        await self._queues.set_attributes(_queue(p), attributes)
        return {}

    async def send_message(self, p: Params, host: str) -> dict[str, Any]:
        sent = await self._queues.send(_queue(p), _send_entry(p, "0"))
        return sent_shape(sent)

    async def send_message_batch(self, p: Params, host: str) -> dict[str, Any]:
        entries = [_send_entry(e, members.entry_id(e)) for e in members.entries(p)]
        outcomes = await self._queues.send_batch(_queue(p), entries)
        shaped = [o if isinstance(o, EntryError) else sent_shape(o) for o in outcomes]
        return batch_result([e.id for e in entries], shaped)

    async def receive_message(self, p: Params, host: str) -> dict[str, Any]:
        """Every member is read before the receive: once messages are in flight, a bad one
        would hide them for their visibility timeout and count a receive no client saw."""
        name = _queue(p)
        system = [
            *members.string_list(p, "AttributeNames"),
            *members.string_list(p, "MessageSystemAttributeNames"),
        ]
        wanted = members.string_list(p, "MessageAttributeNames")
        count = members.integer(p, "MaxNumberOfMessages")
        fifo = self._queues.get(name).fifo
        messages = await self._queues.receive(
            name,
            max_messages=1 if count is None else count,
            wait_s=members.integer(p, "WaitTimeSeconds"),
            visibility_s=members.integer(p, "VisibilityTimeout"),
        )
        return {"Messages": [message_shape(m, fifo, system, wanted) for m in messages]}

    async def delete_message(self, p: Params, host: str) -> dict[str, Any]:
        receipt = members.required_text(p, "ReceiptHandle")
        await self._queues.delete_message(_queue(p), receipt)
        return {}

    async def delete_message_batch(self, p: Params, host: str) -> dict[str, Any]:
        receipts = _receipts(members.entries(p), "DeleteMessageBatch")
        outcomes = await self._queues.delete_messages(_queue(p), receipts)
        return batch_result([i for i, _ in receipts], [o or {} for o in outcomes])

    async def change_message_visibility(self, p: Params, host: str) -> dict[str, Any]:
        receipt = members.required_text(p, "ReceiptHandle")
        timeout_s = members.required_integer(p, "VisibilityTimeout")
        await self._queues.change_message_visibility(_queue(p), receipt, timeout_s)
        return {}

    async def change_message_visibility_batch(self, p: Params, host: str) -> dict[str, Any]:
        entries = members.entries(p)
        receipts = _receipts(entries, "ChangeMessageVisibilityBatch")
        changes = [
            (entry_id, receipt, _entry_timeout_s(e))
            for (entry_id, receipt), e in zip(receipts, entries, strict=True)
        ]
        outcomes = await self._queues.change_visibility(_queue(p), changes)
        return batch_result([i for i, _ in receipts], [o or {} for o in outcomes])

    async def purge_queue(self, p: Params, host: str) -> dict[str, Any]:
        await self._queues.purge(_queue(p))
        return {}

    async def start_message_move_task(self, p: Params, host: str) -> dict[str, Any]:
        source = members.required_text(p, "SourceArn")
        destination = members.text(p, "DestinationArn") or None
        moved = await self._queues.redrive(source, destination)
        return {"TaskHandle": f"{moved['source']}:{moved['destination']}:{moved['moved']}"}

    async def list_dead_letter_source_queues(self, p: Params, host: str) -> dict[str, Any]:
        name = self._queues.get(_queue(p)).name
        sources = [
            n
            for n in self._queues.names()
            if (c := self._queues.get(n)).redrive is not None
            and c.redrive.dead_letter_queue == name
        ]
        page, token = _page(sources, p, "ListDeadLetterSourceQueues")
        result: dict[str, Any] = {"queueUrls": [self._url(host, n) for n in page]}
        if token is not None:
            result["NextToken"] = token
        return result


_OPERATIONS: dict[str, Operation] = {
    "CreateQueue": SqsApi.create_queue,
    "GetQueueUrl": SqsApi.get_queue_url,
    "ListQueues": SqsApi.list_queues,
    "DeleteQueue": SqsApi.delete_queue,
    "GetQueueAttributes": SqsApi.get_queue_attributes,
    "SetQueueAttributes": SqsApi.set_queue_attributes,
    "SendMessage": SqsApi.send_message,
    "SendMessageBatch": SqsApi.send_message_batch,
    "ReceiveMessage": SqsApi.receive_message,
    "DeleteMessage": SqsApi.delete_message,
    "DeleteMessageBatch": SqsApi.delete_message_batch,
    "ChangeMessageVisibility": SqsApi.change_message_visibility,
    "ChangeMessageVisibilityBatch": SqsApi.change_message_visibility_batch,
    "PurgeQueue": SqsApi.purge_queue,
    "StartMessageMoveTask": SqsApi.start_message_move_task,
    "ListDeadLetterSourceQueues": SqsApi.list_dead_letter_source_queues,
}
#: The operations served, as docs/aws-compatibility.md lists them (a test checks they agree).
SERVED_OPERATIONS = frozenset(_OPERATIONS)


def _host(request: Request) -> str:
    return (request.header(b"host") or b"127.0.0.1").decode("latin-1")


def _json_params(body: bytes | None) -> Params:
    """The JSON protocol's request object; raises MalformedInput for anything else."""
    try:
        params = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"the request body is not JSON: {exc}", code="MalformedInput"
        ) from None
    if not isinstance(params, dict):
        raise InvalidRequest("the request body must be a JSON object", code="MalformedInput")
    return params


def _code(exc: UnkaiError) -> str:
    """SQS's (JSON protocol's) name for the error."""
    return "QueueDoesNotExist" if exc.code == "ResourceNotFoundException" else exc.code


def _error(exc: UnkaiError, request_id: str) -> Answer:
    return _json_error(_code(exc), _query_error(exc), request_id)


def _json_error(code: str, legacy: AwsError, request_id: str) -> Answer:
    """The JSON protocol's error: `code` in `__type`, and the query protocol's code and fault
    (`legacy`) in `x-amzn-query-error`, which boto3 reports."""
    fault = "Sender" if legacy.sender_fault else "Receiver"
    headers: Headers = [
        _CONTENT_TYPE,
        (b"x-amzn-requestid", request_id.encode()),
        (b"x-amzn-query-error", f"{legacy.code};{fault}".encode()),
    ]
    body = {"__type": f"com.amazonaws.sqs#{code}", "message": legacy.message}
    return legacy.status, headers, orjson.dumps(body)


def _query_error(exc: UnkaiError) -> AwsError:
    """The error with the query protocol's code; a client's fault answers 400, as SQS does."""
    status, code = status_for(exc), _code(exc)
    return AwsError(
        _QUERY_CODES.get(code, code),
        exc.message,
        400 if status < 500 else status,
        sender_fault=status < 500,
    )


def _internal_error(action: str) -> AwsError:
    """SQS's InternalError (500, the service's fault), the same code in both protocols
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html)."""
    return AwsError(
        "InternalError", f"{action} failed inside unkai; see the platform log", 500, False
    )


def _page(names: Sequence[str], p: Params, action: str) -> tuple[Sequence[str], str | None]:
    """A listing's page and the NextToken of the next one: from the offset a NextToken unkai
    gave, at most MaxResults (1 to `MAX_RESULTS`) names. As in SQS, only a request with
    MaxResults gets a NextToken. Raises InvalidParameterValue."""
    start = _offset(members.text(p, "NextToken"), action)
    size = members.integer(p, "MaxResults")
    if size is None:
        return names[start:], None
    end = start + check_range(action, "MaxResults", size, 1, MAX_RESULTS)
    return names[start:end], (str(end) if end < len(names) else None)


def _offset(token: str | None, action: str) -> int:
    """The offset a NextToken names (unkai's tokens are offsets); no token, or an empty one,
    starts at the first name."""
    if not token:
        return 0
    offset = parse_digits(token)
    if offset is None:
        raise InvalidRequest(
            f"{action}: Invalid NextToken value {token[:40]!r}: pass back the NextToken of "
            "the previous answer, or none for the first page.",
            code="InvalidParameterValue",
        )
    return offset


def _queue(p: Params) -> str:
    """The queue a QueueUrl names (its last path segment)."""
    url = members.required_text(p, "QueueUrl")
    return url.rstrip("/").rsplit("/", 1)[-1]


def _receipts(entries: Sequence[Params], action: str) -> list[tuple[str, str]]:
    """(Id, ReceiptHandle) of each entry, the batch rules checked; a missing receipt handle
    fails its entry alone (an invalid one, as SQS does)."""
    receipts = [(members.entry_id(e), members.text(e, "ReceiptHandle") or "") for e in entries]
    check_batch([entry_id for entry_id, _ in receipts], action)
    return receipts


def _entry_timeout_s(entry: Params) -> int:
    """A ChangeMessageVisibilityBatch entry's VisibilityTimeout; a missing one is -1, out of
    range, so that it fails its entry alone."""
    timeout_s = members.integer(entry, "VisibilityTimeout")
    return -1 if timeout_s is None else timeout_s


def _send_entry(p: Params, entry_id: str) -> SendEntry:
    """The entry as the client wrote it: `check_send` checks each member's type, so that a bad
    one fails only its entry of a batch."""
    return SendEntry(
        p.get("MessageBody"),  # type: ignore[arg-type]
        p.get("MessageAttributes"),
        p.get("DelaySeconds"),
        p.get("MessageGroupId"),
        p.get("MessageDeduplicationId"),
        entry_id,
    )
