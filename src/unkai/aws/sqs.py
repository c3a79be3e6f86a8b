"""SQS's JSON protocol (`X-Amz-Target: AmazonSQS.<Operation>`, awsJson1_0), so boto3, the AWS
CLI and functions' SDK clients use unkai's queues with `endpoint_url` set; calls without a
target speak the older query protocol, which `sqs_query` translates to and from the same
operations.

Thin: each operation parses its request and calls `QueueService`; errors carry SQS's names in
`__type` and, because SQS is "query compatible", the legacy code in `x-amzn-query-error`,
which is the code boto3 shows (`AWS.SimpleQueueService.NonExistentQueue`)
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-json-faqs.html).
Signatures are verified by `AwsEndpoint` before a call reaches this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from unkai.aws import sqs_query
from unkai.aws.endpoint import AwsCall
from unkai.aws.errors import AwsError, query_error
from unkai.background import Background
from unkai.errors import InvalidRequest, UnkaiError
from unkai.events.queue_requests import EntryError, SendEntry, check_batch
from unkai.events.queue_shapes import batch_result, message_shape, sent_shape
from unkai.events.queues import QueueService
from unkai.gateway.errors import status_for
from unkai.gateway.http1 import Headers, HttpConnection, Request

_CONTENT_TYPE = (b"content-type", b"application/x-amz-json-1.0")
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
Operation = Callable[["SqsApi", dict[str, Any], str], Awaitable[dict[str, Any]]]


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

    async def call(self, action: str, params: dict[str, Any], host: str) -> dict[str, Any]:
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
        target = (request.header(b"x-amz-target") or b"").decode("latin-1")
        try:
            try:
                params = orjson.loads(request.body or b"{}")
            except orjson.JSONDecodeError as exc:
                raise InvalidRequest(
                    f"the request body is not JSON: {exc}", code="MalformedInput"
                ) from None
            if not isinstance(params, dict):
                raise InvalidRequest(
                    "the request body must be a JSON object", code="MalformedInput"
                )
            result = await self.call(target.removeprefix("AmazonSQS."), params, _host(request))
        except UnkaiError as exc:
            connection.respond(*_error(exc, request_id))
            return
        headers: Headers = [_CONTENT_TYPE, (b"x-amzn-requestid", request_id.encode())]
        connection.respond(200, headers, orjson.dumps(result))

    async def _answer_query(
        self, request: Request, connection: HttpConnection, request_id: str
    ) -> None:
        try:
            action, params = sqs_query.decode_form(request)
            result = await self.call(action, params, _host(request))
        except UnkaiError as exc:
            connection.respond(*query_error(_query_error(exc), request_id))
            return
        headers: Headers = [
            (b"content-type", b"text/xml"),
            (b"x-amzn-requestid", request_id.encode()),
        ]
        connection.respond(200, headers, sqs_query.encode_result(action, result, request_id))

    # -- operations -----------------------------------------------------------------------

    def _url(self, host: str, name: str) -> str:
        return f"http://{host}/{self._queues.account_id}/{name}"

    async def create_queue(self, p: dict[str, Any], host: str) -> dict[str, Any]:
        name = _required(p, "QueueName")
        await self._queues.create(name, _strings(p.get("Attributes"), "Attributes"))
        return {"QueueUrl": self._url(host, name)}

    async def get_queue_url(self, p: dict[str, Any], host: str) -> dict[str, Any]:
        config = self._queues.get(_required(p, "QueueName"))
        return {"QueueUrl": self._url(host, config.name)}

    async def list_queues(self, p: dict[str, Any], host: str) -> dict[str, Any]:
        names = self._queues.names(p.get("QueueNamePrefix") or "")
        start = int(p.get("NextToken") or 0)
        limit = p.get("MaxResults")
        page = names[start : start + limit] if isinstance(limit, int) else names[start:]
        result: dict[str, Any] = {"QueueUrls": [self._url(host, n) for n in page]}
        if isinstance(limit, int) and start + limit < len(names):
            result["NextToken"] = str(start + limit)
        return result

    async def delete_queue(self, p: dict[str, Any], host: str) -> dict[str, Any]:
        await self._queues.delete(_queue(p))
        return {}

    async def get_queue_attributes(self, p: dict[str, Any], host: str) -> dict[str, Any]:
        wanted = p.get("AttributeNames") or ["All"]
        return {"Attributes": await self._queues.attributes(_queue(p), wanted)}

    async def set_queue_attributes(self, p: dict[str, Any], host: str) -> dict[str, Any]:
        await self._queues.set_attributes(_queue(p), _strings(p.get("Attributes"), "Attributes"))
        return {}

    async def send_message(self, p: dict[str, Any], host: str) -> dict[str, Any]:
        sent = await self._queues.send(_queue(p), _send_entry(p, "0"))
        return sent_shape(sent)

    async def send_message_batch(self, p: dict[str, Any], host: str) -> dict[str, Any]:
        entries = [_send_entry(e, str(e.get("Id", ""))) for e in _entries(p)]
        outcomes = await self._queues.send_batch(_queue(p), entries)
        shaped = [o if isinstance(o, EntryError) else sent_shape(o) for o in outcomes]
        return batch_result([e.id for e in entries], shaped)

    async def receive_message(self, p: dict[str, Any], host: str) -> dict[str, Any]:
        name = _queue(p)
        messages = await self._queues.receive(
            name,
            max_messages=p.get("MaxNumberOfMessages", 1),
            wait_s=p.get("WaitTimeSeconds"),
            visibility_s=p.get("VisibilityTimeout"),
        )
        fifo = self._queues.get(name).fifo
        system = [*(p.get("AttributeNames") or []), *(p.get("MessageSystemAttributeNames") or [])]
        wanted = p.get("MessageAttributeNames") or []
        return {"Messages": [message_shape(m, fifo, system, wanted) for m in messages]}

    async def delete_message(self, p: dict[str, Any], host: str) -> dict[str, Any]:
        await self._queues.delete_message(_queue(p), _required(p, "ReceiptHandle"))
        return {}

    async def delete_message_batch(self, p: dict[str, Any], host: str) -> dict[str, Any]:
        entries = _entries(p)
        _check_ids(entries, "DeleteMessageBatch")
        outcomes = await self._queues.delete_messages(
            _queue(p), [(str(e["Id"]), str(e.get("ReceiptHandle", ""))) for e in entries]
        )
        return batch_result([str(e["Id"]) for e in entries], [o or {} for o in outcomes])

    async def change_message_visibility(self, p: dict[str, Any], host: str) -> dict[str, Any]:
        await self._queues.change_message_visibility(
            _queue(p),
            _required(p, "ReceiptHandle"),
            p.get("VisibilityTimeout"),  # type: ignore[arg-type]
        )
        return {}

    async def change_message_visibility_batch(self, p: dict[str, Any], host: str) -> dict[str, Any]:
        entries = _entries(p)
        _check_ids(entries, "ChangeMessageVisibilityBatch")
        outcomes = await self._queues.change_visibility(
            _queue(p),
            [
                (str(e["Id"]), str(e.get("ReceiptHandle", "")), e.get("VisibilityTimeout", -1))
                for e in entries
            ],
        )
        return batch_result([str(e["Id"]) for e in entries], [o or {} for o in outcomes])

    async def purge_queue(self, p: dict[str, Any], host: str) -> dict[str, Any]:
        await self._queues.purge(_queue(p))
        return {}

    async def start_message_move_task(self, p: dict[str, Any], host: str) -> dict[str, Any]:
        source = _required(p, "SourceArn")
        destination = p.get("DestinationArn")
        moved = await self._queues.redrive(source, destination)
        return {"TaskHandle": f"{moved['source']}:{moved['destination']}:{moved['moved']}"}

    async def list_dead_letter_source_queues(self, p: dict[str, Any], host: str) -> dict[str, Any]:
        name = self._queues.get(_queue(p)).name
        sources = [
            n
            for n in self._queues.names()
            if (c := self._queues.get(n)).redrive is not None
            and c.redrive.dead_letter_queue == name
        ]
        return {"queueUrls": [self._url(host, n) for n in sources]}


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


def _code(exc: UnkaiError) -> str:
    """SQS's (JSON protocol's) name for the error."""
    return "QueueDoesNotExist" if exc.code == "ResourceNotFoundException" else exc.code


def _error(exc: UnkaiError, request_id: str) -> tuple[int, Headers, bytes]:
    code, legacy = _code(exc), _query_error(exc)
    fault = "Sender" if legacy.sender_fault else "Receiver"
    headers: Headers = [
        _CONTENT_TYPE,
        (b"x-amzn-requestid", request_id.encode()),
        (b"x-amzn-query-error", f"{legacy.code};{fault}".encode()),
    ]
    body = {"__type": f"com.amazonaws.sqs#{code}", "message": exc.message}
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


def _required(p: dict[str, Any], name: str) -> str:
    value = p.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(
            f"The request must contain the parameter {name}.", code="MissingParameter"
        )
    return value


def _queue(p: dict[str, Any]) -> str:
    """The queue a QueueUrl names (its last path segment)."""
    url = _required(p, "QueueUrl")
    return url.rstrip("/").rsplit("/", 1)[-1]


def _strings(value: Any, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"{name} must be a map of strings", code="InvalidParameterValue")
    return {str(k): str(v) for k, v in value.items()}


def _entries(p: dict[str, Any]) -> list[dict[str, Any]]:
    entries = p.get("Entries")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InvalidRequest(
            "The request must contain the parameter Entries (a list of objects).",
            code="MissingParameter",
        )
    return entries


def _check_ids(entries: list[dict[str, Any]], action: str) -> None:
    check_batch([str(e.get("Id", "")) for e in entries], action)


def _send_entry(p: dict[str, Any], entry_id: str) -> SendEntry:
    return SendEntry(
        p.get("MessageBody"),  # type: ignore[arg-type]
        p.get("MessageAttributes"),
        p.get("DelaySeconds"),
        p.get("MessageGroupId"),
        p.get("MessageDeduplicationId"),
        entry_id,
    )
