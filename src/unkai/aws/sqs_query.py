"""SQS's query protocol: the form-encoded requests and XML answers that older SDKs (the Java
SDK v1, boto 2, PHP, Ruby v2...), boto3 configured for it, and `curl` speak.

The pipeline is a translation on either side of `SqsApi`, which runs the operation once for
both protocols:
1. `decode_form` turns the form (`Action=SendMessage&QueueUrl=...&MessageAttribute.1.Name=...`)
   into the params dict of SQS's JSON protocol (`{"QueueUrl": ..., "MessageAttributes":
   {name: {"DataType": ..., "StringValue": ...}}}`): flattened lists (`AttributeName.1`) become
   lists, flattened maps (`Attribute.1.Name` / `Attribute.1.Value`) dicts, batch entries
   (`SendMessageBatchRequestEntry.1.Id`) `Entries`, and the numbers ints.
2. `encode_result` writes the JSON result dict as the query answer
   (`<SendMessageResponse><SendMessageResult>...</SendMessageResult><ResponseMetadata>`), with
   the flattened element names of SQS's query model (a `Message` element per message, an
   `Attribute` Name/Value pair per attribute, a `MessageAttribute` Name/Value{DataType,
   StringValue|BinaryValue} per message attribute, `<Action>ResultEntry` and
   `BatchResultErrorEntry` per batch outcome).
Errors are `aws.errors.query_error`'s `<ErrorResponse>`, with the query codes
(`AWS.SimpleQueueService.NonExistentQueue`). The form's decoding (`aws/query_form.py`) and the
text escape (`events/xml_chars.py`) are SNS's too.

Shapes: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-making-api-requests-xml.html,
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-api-responses.html
and the query model botocore shipped for SQS until 2023 (member `locationName`s, `flattened`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from unkai.aws import query_form
from unkai.aws.tokens import parse_digits
from unkai.errors import InvalidRequest
from unkai.events import xml_chars
from unkai.gateway.http1 import Request

#: Flattened lists of strings (`AttributeName.1=All`, or a bare `AttributeName=All`):
#: query name -> the JSON protocol's member. The member names are accepted too: the API
#: reference now writes `MessageSystemAttributeNames.N`, and botocore sends an empty list as
#: `AttributeNames=`.
_STRING_LISTS = {
    "AttributeName": "AttributeNames",
    "AttributeNames": "AttributeNames",
    "MessageAttributeName": "MessageAttributeNames",
    "MessageAttributeNames": "MessageAttributeNames",
    "MessageSystemAttributeName": "MessageSystemAttributeNames",
    "MessageSystemAttributeNames": "MessageSystemAttributeNames",
    "StringListValue": "StringListValues",
    "BinaryListValue": "BinaryListValues",
    "TagKey": "TagKeys",
}
#: Flattened maps (`Attribute.1.Name` + `Attribute.1.Value`): query name -> (member, key name).
_MAPS = {
    "Attribute": ("Attributes", "Name"),
    "MessageAttribute": ("MessageAttributes", "Name"),
    "MessageSystemAttribute": ("MessageSystemAttributes", "Name"),
    "Tag": ("tags", "Key"),
}
#: The batch operations' flattened entries (`SendMessageBatchRequestEntry.1.Id`).
_ENTRIES = frozenset(
    {
        "SendMessageBatchRequestEntry",
        "DeleteMessageBatchRequestEntry",
        "ChangeMessageVisibilityBatchRequestEntry",
    }
)
#: Members that are numbers in the JSON protocol (the query protocol sends all values as text).
_INTEGERS = frozenset(
    {
        "DelaySeconds",
        "MaxNumberOfMessages",
        "MaxNumberOfMessagesPerSecond",
        "MaxResults",
        "VisibilityTimeout",
        "WaitTimeSeconds",
    }
)
_INTEGER = re.compile(r"^-?[0-9]{1,10}$")
#: A queue URL's path (`/<account>/<name>`): older SDKs post to it and omit QueueUrl.
_QUEUE_PATH = re.compile(r"^/[0-9]{12}/[A-Za-z0-9_.-]{1,80}/?$")

#: Result members written as repeated elements: JSON member -> element name.
_FLATTENED = {
    "QueueUrls": "QueueUrl",
    "queueUrls": "QueueUrl",
    "Messages": "Message",
    "Attributes": "Attribute",
    "MessageAttributes": "MessageAttribute",
    "Failed": "BatchResultErrorEntry",
}
#: Operations without an output shape: their answer has no `<Action>Result` element.
_NO_RESULT = frozenset(
    {
        "DeleteQueue",
        "SetQueueAttributes",
        "DeleteMessage",
        "ChangeMessageVisibility",
        "PurgeQueue",
        "AddPermission",
        "RemovePermission",
        "TagQueue",
        "UntagQueue",
    }
)
_XMLNS = "http://queue.amazonaws.com/doc/2012-11-05/"

Node = str | dict[str, "Node"]


def decode_form(request: Request) -> tuple[str, dict[str, Any]]:
    """(Action, params in the JSON protocol's shape) of a query request: the URL's query
    string and a form body. Raises InvalidRequest (MissingAction, MalformedQueryString,
    InvalidParameterValue, MissingParameter) naming the parameter at fault."""
    tree = _tree(query_form.pairs(request, error_code="MalformedQueryString"))
    action = tree.pop("Action", None)
    if not isinstance(action, str) or not action:
        raise InvalidRequest(
            "The request must contain the parameter Action (for example Action=SendMessage).",
            code="MissingAction",
        )
    tree.pop("Version", None)
    params = _structure(tree)
    if "QueueUrl" not in params and _QUEUE_PATH.match(request.path):
        host = (request.header(b"host") or b"127.0.0.1").decode("latin-1")
        params["QueueUrl"] = f"http://{host}{request.path.rstrip('/')}"
    return action, params


def encode_result(action: str, result: Mapping[str, Any], request_id: str) -> bytes:
    """The query protocol's answer to `action`, from the JSON protocol's result dict."""
    out = [f'<?xml version="1.0"?><{action}Response xmlns="{_XMLNS}">']
    if action not in _NO_RESULT:
        out.append(f"<{action}Result>")
        _members(out, result, f"{action}ResultEntry")
        out.append(f"</{action}Result>")
    out.append(
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    )
    return "".join(out).encode()


# -- decoding -------------------------------------------------------------------------------


def _tree(pairs: Iterable[tuple[str, str]]) -> dict[str, Node]:
    """`A.1.B=v` -> {"A": {"1": {"B": "v"}}}."""
    root: dict[str, Node] = {}
    for key, value in pairs:
        *parents, leaf = key.split(".")
        node = root
        for part in parents:
            child = node.setdefault(part, {})
            if isinstance(child, str):
                raise _malformed(key)
            node = child
        if isinstance(node.get(leaf), dict):
            raise _malformed(key)
        node[leaf] = value
    return root


def _malformed(key: str) -> InvalidRequest:
    return InvalidRequest(
        f"The parameter {key} is given both as a value and as a list or map",
        code="MalformedQueryString",
    )


def _structure(node: Mapping[str, Node]) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for name, child in node.items():
        if name in _STRING_LISTS:
            items = [] if child == "" else _items(name, child)
            decoded[_STRING_LISTS[name]] = [_text(name, item) for item in items]
        elif name in _MAPS:
            member, key_name = _MAPS[name]
            decoded[member] = _map(name, key_name, child)
        elif name in _ENTRIES:
            decoded["Entries"] = [_structure(_fields(name, e)) for e in _items(name, child)]
        elif name in _INTEGERS:
            decoded[name] = _integer(name, child)
        else:
            decoded[name] = child if isinstance(child, str) else _structure(child)
    return decoded


def _items(name: str, node: Node) -> list[Node]:
    """A flattened list's members in index order (`Name.1`, `Name.2`...)."""
    if isinstance(node, str):
        return [node]
    positions: list[tuple[int, str]] = []
    for index in node:
        position = parse_digits(index)
        if not position:  # None (not 1 to 18 ASCII digits) or 0
            raise InvalidRequest(
                f"The members of {name} must be numbered {name}.1, {name}.2, ...; got "
                f"{', '.join(f'{name}.{index}' for index in node)}",
                code="MalformedQueryString",
            )
        positions.append((position, index))
    return [node[index] for _, index in sorted(positions)]


def _map(name: str, key_name: str, node: Node) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for position, entry in enumerate(_items(name, node), start=1):
        fields = _fields(f"{name}.{position}", entry)
        key, value = fields.get(key_name), fields.get("Value")
        if not isinstance(key, str) or value is None:
            raise InvalidRequest(
                f"The request must contain the parameters {name}.{position}.{key_name} and "
                f"{name}.{position}.Value.",
                code="MissingParameter",
            )
        decoded[key] = value if isinstance(value, str) else _structure(value)
    return decoded


def _fields(name: str, node: Node) -> dict[str, Node]:
    if isinstance(node, str):
        raise InvalidRequest(
            f"{name} must have members ({name}.Id, {name}.Name...), not a value",
            code="MalformedQueryString",
        )
    return node


def _text(name: str, node: Node) -> str:
    if not isinstance(node, str):
        raise InvalidRequest(f"{name} must be a value, not a map", code="MalformedQueryString")
    return node


def _integer(name: str, node: Node) -> int:
    text = _text(name, node)
    if not _INTEGER.match(text):
        raise InvalidRequest(
            f"Value {text} for parameter {name} is invalid. Reason: it must be an integer.",
            code="InvalidParameterValue",
        )
    return int(text)


# -- encoding -------------------------------------------------------------------------------


def _members(out: list[str], members: Mapping[str, Any], entry_element: str) -> None:
    for name, value in members.items():
        if value is None:
            continue
        element = entry_element if name == "Successful" else _FLATTENED.get(name)
        if element is None:
            _element(out, name, value, entry_element)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                _element(out, element, {"Name": key, "Value": item}, entry_element)
        else:
            for item in value:
                _element(out, element, item, entry_element)


def _element(out: list[str], name: str, value: Any, entry_element: str) -> None:
    out.append(f"<{name}>")
    if isinstance(value, Mapping):
        _members(out, value, entry_element)
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    else:
        out.append(xml_chars.escape(str(value)))
    out.append(f"</{name}>")
