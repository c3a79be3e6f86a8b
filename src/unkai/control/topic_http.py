"""HTTP mapping of topics (SNS's semantics) in the control plane: parse, call ControlService,
answer JSON. Errors are mapped by `control/http.py`'s handlers, as for every control route.

Topics live under `/_unkai/api/topics`; a subscription, which SNS addresses by its own ARN
alone (Unsubscribe, SetSubscriptionAttributes), under `/_unkai/api/subscriptions/{arn}`.
Messages use SNS's names for fields; a body with `PublishBatchRequestEntries` is the batch
form of the same call:

    GET    /topics                          every topic with its counts
    POST   /topics                          {"name"}                            -> 201
    DELETE /topics/{name}                   the topic and its subscriptions
    GET    /topics/{name}/subscriptions     the topic's subscriptions
    POST   /topics/{name}/subscriptions     {"protocol", "endpoint", "attributes"?} -> 201
    POST   /topics/{name}/messages          {"Message", "Subject"?, "MessageAttributes"?,
                                             "MessageStructure"?}
                                            | {"PublishBatchRequestEntries": [{"Id", ...}]}
    GET    /subscriptions                   every subscription of every topic
    PATCH  /subscriptions/{arn}             {"attributes"}
    DELETE /subscriptions/{arn}

The request helpers are `control/http.py`'s, so both halves of the API refuse the same
mistakes with the same words; that module imports this one's routes when it builds the app.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from unkai.control.request_body import attribute_text, check_fields, json_body, json_object
from unkai.control.service import ControlService
from unkai.errors import InvalidRequest
from unkai.events.sns_messages import PublishEntry

_PUBLISH_FIELDS = ("Message", "Subject", "MessageAttributes", "MessageStructure")
_BATCH = "PublishBatchRequestEntries"


def _text(body: dict[str, Any], name: str, where: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{where}: {name} (a string) is required", code="MissingParameter")
    return value


def _optional_text(raw: dict[str, Any], name: str, where: str) -> str | None:
    value = raw.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"{where}: {name} must be a string", code="InvalidParameter")
    return value


def _attributes(body: dict[str, Any], required: bool) -> dict[str, str]:
    """Subscription attributes as SNS's strings; an object (a FilterPolicy) as its JSON."""
    raw = body.get("attributes")
    if raw is None and not required:
        return {}
    attributes = json_object(raw, "attributes")
    return {name: attribute_text(value, name) for name, value in attributes.items()}


def _publish_entry(raw: dict[str, Any], where: str, entry_id: str = "0") -> PublishEntry:
    """One Publish(Batch) entry. The message, subject size and attributes are checked by the
    core, which names the entry; only the shape JSON can get wrong is checked here."""
    attributes = raw.get("MessageAttributes")
    if attributes is not None:
        json_object(attributes, f"{where}: MessageAttributes")
    return PublishEntry(
        # A missing or non-string message is the core's InvalidParameter, naming the entry.
        message=raw.get("Message"),  # type: ignore[arg-type]
        subject=_optional_text(raw, "Subject", where),
        attributes=attributes,
        structure=_optional_text(raw, "MessageStructure", where),
        id=entry_id,
    )


def _batch_entries(body: dict[str, Any]) -> list[PublishEntry]:
    check_fields(body, (_BATCH,), "batch")
    entries = body[_BATCH]
    if not isinstance(entries, list):
        raise InvalidRequest(f"{_BATCH} must be a JSON array", code="InvalidParameter")
    parsed = []
    for index, raw in enumerate(entries):
        where = f"{_BATCH}[{index}]"
        entry = json_object(raw, where)
        check_fields(entry, ("Id", *_PUBLISH_FIELDS), where)
        # A missing or malformed Id is the core's InvalidBatchEntryId.
        parsed.append(_publish_entry(entry, where, entry.get("Id")))  # type: ignore[arg-type]
    return parsed


class TopicHttp:
    """Starlette endpoints for topics and subscriptions."""

    def __init__(self, control: ControlService) -> None:
        self.control = control

    async def topics(self, request: Request) -> Response:
        return JSONResponse({"topics": self.control.topics()})

    async def create_topic(self, request: Request) -> Response:
        body = await json_body(request)
        check_fields(body, ("name",), "create topic")
        name = _text(body, "name", "create topic")
        return JSONResponse(await self.control.create_topic(name), status_code=201)

    async def delete_topic(self, request: Request) -> Response:
        return JSONResponse(await self.control.delete_topic(request.path_params["name"]))

    async def topic_subscriptions(self, request: Request) -> Response:
        listed = self.control.subscriptions(request.path_params["name"])
        return JSONResponse({"subscriptions": listed})

    async def all_subscriptions(self, request: Request) -> Response:
        return JSONResponse({"subscriptions": self.control.subscriptions(None)})

    async def subscribe(self, request: Request) -> Response:
        body = await json_body(request)
        check_fields(body, ("protocol", "endpoint", "attributes"), "subscribe")
        result = await self.control.subscribe(
            request.path_params["name"],
            _text(body, "protocol", "subscribe"),
            _text(body, "endpoint", "subscribe"),
            _attributes(body, required=False),
        )
        return JSONResponse(result, status_code=201)

    async def set_subscription_attributes(self, request: Request) -> Response:
        body = await json_body(request)
        check_fields(body, ("attributes",), "set subscription attributes")
        attributes = _attributes(body, required=True)
        arn = request.path_params["arn"]
        return JSONResponse(await self.control.set_subscription_attributes(arn, attributes))

    async def unsubscribe(self, request: Request) -> Response:
        return JSONResponse(await self.control.unsubscribe(request.path_params["arn"]))

    async def publish(self, request: Request) -> Response:
        body = await json_body(request)
        name = request.path_params["name"]
        if _BATCH in body:
            return JSONResponse(await self.control.publish_batch(name, _batch_entries(body)))
        check_fields(body, _PUBLISH_FIELDS, "publish")
        return JSONResponse(await self.control.publish(name, _publish_entry(body, "publish")))


def topic_routes(control: ControlService) -> list[Route]:
    h = TopicHttp(control)
    base = "/_unkai/api/topics"
    one = base + "/{name}"
    subscription = "/_unkai/api/subscriptions/{arn}"
    return [
        Route(base, h.topics, methods=["GET"]),
        Route(base, h.create_topic, methods=["POST"]),
        Route(one, h.delete_topic, methods=["DELETE"]),
        Route(one + "/subscriptions", h.topic_subscriptions, methods=["GET"]),
        Route(one + "/subscriptions", h.subscribe, methods=["POST"]),
        Route(one + "/messages", h.publish, methods=["POST"]),
        Route("/_unkai/api/subscriptions", h.all_subscriptions, methods=["GET"]),
        Route(subscription, h.set_subscription_attributes, methods=["PATCH"]),
        Route(subscription, h.unsubscribe, methods=["DELETE"]),
    ]
