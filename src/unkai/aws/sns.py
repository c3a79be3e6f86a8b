"""SNS's query protocol (a form-encoded POST with `Action=<Operation>`, answered in XML), so
boto3, the AWS CLI and functions' SDK clients use unkai's topics with `endpoint_url` set.

Thin, as `aws/sqs.py`: decode the form (`aws/sns_wire.py`), call `TopicService`, write the
answer as botocore's model says (https://docs.aws.amazon.com/sns/latest/api/API_Operations.html,
and botocore/data/sns/2010-03-31/service-2.json for the member names). An error is
`aws/errors.query_error`'s `<ErrorResponse>` with SNS's code and the status its model gives
that code; an action unkai does not serve answers 501 naming it.

Parity choices:
- ARNs are checked: another account's topic or subscription is `AuthorizationError` (403),
  another region's or a malformed ARN `InvalidParameter`.
- A `lambda` endpoint is a function ARN (`arn:aws:lambda:<region>:<account>:function:NAME`,
  the default stage's function), a bare name (the same) or unkai's `<stage>/<function>`.
  Listings show it back as the ARN when it is the default stage's.
- Subscriptions need no confirmation (unkai trusts its own endpoints), so Subscribe always
  answers the ARN, as with `ReturnSubscriptionArn`.
- DeleteTopic of a missing topic succeeds: "This action is idempotent, so deleting a topic that
  does not exist does not result in an error" (API_DeleteTopic).
- `MessageGroupId` on a standard topic only feeds SQS fair queues, which unkai has not, so it
  is accepted and unused; `MessageDeduplicationId` is for FIFO topics, which unkai has not
  either, so it is refused.
- List pages hold 100 items (ListTopics: "up to 100"); `NextToken` is the offset of the next
  page, so a topic created meanwhile may shift an item into the page already read.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import orjson

from unkai.aws import sns_wire as wire
from unkai.aws.endpoint import AwsCall
from unkai.aws.errors import AwsError, query_error
from unkai.aws.sns_wire import Params
from unkai.aws.tokens import parse_digits
from unkai.background import Background
from unkai.errors import InvalidRequest, NotFound, UnkaiError
from unkai.events.queues import QueueService
from unkai.events.sns_messages import PublishEntry
from unkai.events.subscriptions import Subscription
from unkai.events.topics import TopicService
from unkai.gateway.errors import status_for
from unkai.gateway.http1 import Headers, HttpConnection, Request

log = logging.getLogger("unkai.aws")
T = TypeVar("T")

PAGE_SIZE = 100
Operation = Callable[["SnsApi", Params], Awaitable[str | None]]

#: Core codes -> SNS's (its model has `ParameterValueInvalid`, not SQS's
#: `InvalidParameterValue`, and no `MissingParameter`).
_CODES = {
    "InvalidParameterValue": "ParameterValueInvalid",
    "MissingParameter": "InvalidParameter",
    "QueueDoesNotExist": "NotFound",
    "ResourceNotFoundException": "NotFound",
}
#: The HTTP status SNS's model gives each code (`httpStatusCode`).
_STATUSES = {
    "InvalidParameter": 400,
    "ParameterValueInvalid": 400,
    "NotFound": 404,
    "AuthorizationError": 403,
    "EmptyBatchRequest": 400,
    "TooManyEntriesInBatchRequest": 400,
    "InvalidBatchEntryId": 400,
    "BatchEntryIdsNotDistinct": 400,
    "BatchRequestTooLong": 400,
    "InternalError": 500,
}


class SnsApi:
    """The `AwsService` of SNS's query protocol."""

    def __init__(self, topics: TopicService, queues: QueueService, *, default_stage: str) -> None:
        self._topics = topics
        self._queues = queues
        self._default_stage = default_stage
        self._tasks = Background()

    def handle_call(self, request: Request, connection: HttpConnection, call: AwsCall) -> None:
        self._tasks.spawn(self._answer(request, connection, call.request_id))

    async def _answer(self, request: Request, connection: HttpConnection, request_id: str) -> None:
        try:
            params = wire.form(request)
        except InvalidRequest as exc:  # not UTF-8, or a character XML 1.0 cannot carry
            connection.respond(*query_error(_error(exc), request_id))
            return
        action = params.get("Action", "")
        operation = _OPERATIONS.get(action)
        if operation is None:
            supported = ", ".join(sorted(_OPERATIONS))
            error = AwsError(
                "InvalidAction",
                f"unkai does not support the SNS action {action!r}; it supports {supported}",
                501,
            )
            connection.respond(*query_error(error, request_id))
            return
        try:
            result = await operation(self, params)
        except UnkaiError as exc:
            connection.respond(*query_error(_error(exc), request_id))
            return
        except Exception:  # boundary: the caller gets SNS's InternalError, the log the cause
            log.exception("SNS %s failed", action)
            error = AwsError("InternalError", f"{action} failed inside unkai", 500, False)
            connection.respond(*query_error(error, request_id))
            return
        headers: Headers = [
            (b"content-type", b"text/xml"),
            (b"x-amzn-requestid", request_id.encode()),
        ]
        connection.respond(200, headers, wire.document(action, result, request_id))

    # -- topics ---------------------------------------------------------------------------

    async def create_topic(self, p: Params) -> str | None:
        """Idempotent for the same name (the core keeps the first call's attributes)."""
        attributes = wire.string_map(p, "Attributes")
        if attributes.get("FifoTopic", "false").lower() == "true":
            raise InvalidRequest(
                "Invalid parameter: Attributes Reason: FifoTopic: FIFO topics are not "
                "supported by unkai yet",
                code="InvalidParameter",
            )
        return wire.text(
            "TopicArn", await self._topics.create(wire.required(p, "Name"), attributes)
        )

    async def delete_topic(self, p: Params) -> str | None:
        name = self._topic(p.get("TopicArn"))
        if name in self._topics.names():
            await self._topics.delete(name)
        return None

    async def get_topic_attributes(self, p: Params) -> str | None:
        name = self._topic(p.get("TopicArn"))
        stored: dict[str, str] = self._topics.get(name).get("attributes", {})
        attributes = {
            "DisplayName": "",
            **stored,
            "TopicArn": self._topics.arn(name),
            "Owner": self._topics.account_id,
            "SubscriptionsConfirmed": str(len(self._topics.subscriptions(name))),
            "SubscriptionsPending": "0",
            "SubscriptionsDeleted": "0",
        }
        return wire.map_xml("Attributes", attributes)

    async def list_topics(self, p: Params) -> str | None:
        page, token = _page(self._topics.names(), p.get("NextToken"))
        topics = (wire.text("TopicArn", self._topics.arn(name)) for name in page)
        return wire.list_xml("Topics", topics) + wire.next_token(token)

    # -- subscriptions --------------------------------------------------------------------

    async def subscribe(self, p: Params) -> str | None:
        name = self._topic(p.get("TopicArn"))
        protocol = wire.required(p, "Protocol")
        endpoint = self._endpoint(protocol, wire.required(p, "Endpoint"))
        sub = await self._topics.subscribe(
            name, protocol, endpoint, wire.string_map(p, "Attributes")
        )
        return wire.text("SubscriptionArn", self._topics.subscription_arn(sub))

    async def unsubscribe(self, p: Params) -> str | None:
        await self._topics.unsubscribe(self._subscription_arn(p))
        return None

    async def set_subscription_attributes(self, p: Params) -> str | None:
        arn = self._subscription_arn(p)
        name = wire.required(p, "AttributeName")
        await self._topics.set_subscription_attribute(arn, name, p.get("AttributeValue", ""))
        return None

    async def get_subscription_attributes(self, p: Params) -> str | None:
        arn = self._subscription_arn(p)
        sub_id = arn.rsplit(":", 1)[-1]
        found = [s for s in self._topics.subscriptions() if s.id == sub_id]
        if not found:
            raise NotFound(f"Subscription does not exist: {arn!r}", code="NotFound")
        return wire.map_xml("Attributes", self._subscription_attributes(found[0]))

    async def list_subscriptions(self, p: Params) -> str | None:
        return self._subscriptions_page(self._topics.subscriptions(), p.get("NextToken"))

    async def list_subscriptions_by_topic(self, p: Params) -> str | None:
        subs = self._topics.subscriptions(self._topic(p.get("TopicArn")))
        return self._subscriptions_page(subs, p.get("NextToken"))

    # -- publish --------------------------------------------------------------------------

    async def publish(self, p: Params) -> str | None:
        if "PhoneNumber" in p:
            raise InvalidRequest(
                "Invalid parameter: PhoneNumber Reason: unkai's topics do not send SMS; "
                "publish to a TopicArn",
                code="InvalidParameter",
            )
        name = self._topic(p.get("TopicArn") or p.get("TargetArn"))
        return wire.text("MessageId", await self._topics.publish(name, _publish_entry(p, "0")))

    async def publish_batch(self, p: Params) -> str | None:
        name = self._topic(p.get("TopicArn"))
        entries = [
            _publish_entry(member, member.get("Id", ""))
            for member in wire.members(p, "PublishBatchRequestEntries")
        ]
        outcomes = await self._topics.publish_batch(name, entries)
        successful, failed = [], []
        for entry, outcome in zip(entries, outcomes, strict=True):
            if isinstance(outcome, UnkaiError):
                code = _CODES.get(outcome.code, outcome.code)
                failed.append(
                    wire.text("Id", entry.id)
                    + wire.text("Code", code)
                    + wire.text("Message", outcome.message)
                    + "<SenderFault>true</SenderFault>"
                )
            else:
                successful.append(wire.text("Id", entry.id) + wire.text("MessageId", outcome))
        return wire.list_xml("Successful", successful) + wire.list_xml("Failed", failed)

    # -- ARNs and shapes ------------------------------------------------------------------

    def _topic(self, arn: str | None) -> str:
        """The topic name an `arn:aws:sns:<region>:<account>:<name>` names."""
        return self._check_arn(arn, "TopicArn", 6)[5]

    def _subscription_arn(self, p: Params) -> str:
        """`arn:aws:sns:<region>:<account>:<topic>:<id>`, checked."""
        arn = p.get("SubscriptionArn")
        self._check_arn(arn, "SubscriptionArn", 7)
        return str(arn)

    def _check_arn(self, arn: str | None, field: str, parts_count: int) -> list[str]:
        parts = (arn or "").split(":")
        if len(parts) != parts_count or parts[0] != "arn" or parts[2] != "sns" or not parts[-1]:
            raise InvalidRequest(
                f"Invalid parameter: {field} Reason: {arn!r} is not an SNS ARN "
                f"(arn:aws:sns:<region>:<account>:<topic>{':<id>' if parts_count == 7 else ''})",
                code="InvalidParameter",
            )
        if parts[4] != self._topics.account_id:
            raise InvalidRequest(
                f"User is not authorized to access {arn}: it belongs to account {parts[4]}, "
                f"unkai's topics to {self._topics.account_id}",
                code="AuthorizationError",
            )
        if parts[3] != self._topics.region:
            raise InvalidRequest(
                f"Invalid parameter: {field} Reason: {arn} is in region {parts[3]}; unkai's "
                f"topics are in {self._topics.region}",
                code="InvalidParameter",
            )
        return parts

    def _endpoint(self, protocol: str, endpoint: str) -> str:
        """A `lambda` endpoint as the core's `<stage>/<function>`; others unchanged."""
        if protocol.lower() != "lambda":
            return endpoint
        if not endpoint.startswith("arn:"):
            return endpoint if "/" in endpoint else f"{self._default_stage}/{endpoint}"
        parts = endpoint.split(":")
        if len(parts) != 7 or parts[2] != "lambda" or parts[5] != "function" or not parts[6]:
            raise InvalidRequest(
                f"Invalid parameter: Endpoint Reason: {endpoint!r} is not an unqualified "
                "Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>); "
                "topics invoke a function's current code",
                code="InvalidParameter",
            )
        return f"{self._default_stage}/{parts[6]}"

    def _shown_endpoint(self, sub: Subscription) -> str:
        """The endpoint as SNS shows it: a queue's or function's ARN."""
        if sub.protocol == "sqs":
            return self._queues.arn(sub.endpoint)
        stage, _, function = sub.endpoint.partition("/")
        if sub.protocol == "lambda" and stage == self._default_stage:
            region, account = self._topics.region, self._topics.account_id
            return f"arn:aws:lambda:{region}:{account}:function:{function}"
        return sub.endpoint

    def _subscription_attributes(self, sub: Subscription) -> dict[str, str]:
        attributes = {
            "SubscriptionArn": self._topics.subscription_arn(sub),
            "TopicArn": self._topics.arn(sub.topic),
            "Owner": self._topics.account_id,
            "Protocol": sub.protocol,
            "Endpoint": self._shown_endpoint(sub),
            "ConfirmationWasAuthenticated": "true",
            "PendingConfirmation": "false",
            "RawMessageDelivery": "true" if sub.raw else "false",
        }
        if sub.filter_policy is not None:
            attributes["FilterPolicy"] = sub.filter_policy
            attributes["FilterPolicyScope"] = sub.filter_scope
        if sub.dead_letter_queue is not None:
            target = self._queues.arn(sub.dead_letter_queue)
            attributes["RedrivePolicy"] = orjson.dumps({"deadLetterTargetArn": target}).decode()
        return attributes

    def _subscriptions_page(self, subs: Sequence[Subscription], token: str | None) -> str:
        page, next_token = _page(subs, token)
        members = (
            wire.text("SubscriptionArn", self._topics.subscription_arn(s))
            + wire.text("Owner", self._topics.account_id)
            + wire.text("Protocol", s.protocol)
            + wire.text("Endpoint", self._shown_endpoint(s))
            + wire.text("TopicArn", self._topics.arn(s.topic))
            for s in page
        )
        return wire.list_xml("Subscriptions", members) + wire.next_token(next_token)


_OPERATIONS: dict[str, Operation] = {
    "CreateTopic": SnsApi.create_topic,
    "DeleteTopic": SnsApi.delete_topic,
    "GetTopicAttributes": SnsApi.get_topic_attributes,
    "ListTopics": SnsApi.list_topics,
    "Subscribe": SnsApi.subscribe,
    "Unsubscribe": SnsApi.unsubscribe,
    "SetSubscriptionAttributes": SnsApi.set_subscription_attributes,
    "GetSubscriptionAttributes": SnsApi.get_subscription_attributes,
    "ListSubscriptions": SnsApi.list_subscriptions,
    "ListSubscriptionsByTopic": SnsApi.list_subscriptions_by_topic,
    "Publish": SnsApi.publish,
    "PublishBatch": SnsApi.publish_batch,
}
#: The operations served, as docs/aws-compatibility.md lists them (a test checks they agree).
SERVED_OPERATIONS = frozenset(_OPERATIONS)


def _error(exc: UnkaiError) -> AwsError:
    code = _CODES.get(exc.code, exc.code)
    status = _STATUSES.get(code) or status_for(exc)
    message = f"{exc.message} (hint: {exc.hint})" if exc.hint else exc.message
    return AwsError(code, message, status, sender_fault=status < 500)


def _publish_entry(p: Params, entry_id: str) -> PublishEntry:
    """One Publish(Batch) entry; the core checks the message, subject and attributes."""
    if "MessageDeduplicationId" in p:
        raise InvalidRequest(
            "Invalid parameter: MessageDeduplicationId Reason: it is only for FIFO topics, "
            "which unkai does not support yet",
            code="InvalidParameter",
        )
    return PublishEntry(
        message=p.get("Message", ""),
        subject=p.get("Subject"),
        attributes=wire.message_attributes(p) or None,
        structure=p.get("MessageStructure"),
        id=entry_id,
    )


def _page(items: Sequence[T], token: str | None) -> tuple[Sequence[T], str | None]:
    """A page of `items` from the offset `token` (a token unkai gave); raises InvalidParameter."""
    start = 0 if token is None else parse_digits(token)
    if start is None:
        raise InvalidRequest(
            f"Invalid parameter: NextToken Reason: {token!r} is not a token unkai gave",
            code="InvalidParameter",
        )
    end = start + PAGE_SIZE
    return items[start:end], (str(end) if end < len(items) else None)
