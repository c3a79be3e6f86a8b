"""SNS's side of the query protocol's wire format (botocore's `query` serializer and
`QueryParser`): the form a request arrives as, and the XML an answer is written in.

A request is `Action=<Operation>&Version=2010-03-31&...`, form-encoded, with structures
flattened into dotted names: a map is `<Name>.entry.N.key` / `.value` (message attributes:
`.Name` / `.Value.DataType` / `.Value.StringValue` / `.Value.BinaryValue`), a list of
structures `<Name>.member.N.<member>`, N counting from 1. An answer is
`<{Op}Response xmlns=...><{Op}Result>...</{Op}Result><ResponseMetadata><RequestId>`, a list
in it `<member>` elements and a map `<entry><key/><value/></entry>` elements (the model's
defaults: SNS flattens nothing). SQS's query protocol flattens its lists and maps, which is
why `aws/sqs_query.py` has its own; the form's decoding (`aws/query_form.py`) and the text
escape (`events/xml_chars.py`) are shared.

Every parameter is checked at input against XML 1.0's characters: SNS refuses others with
`InvalidParameter` (its answers are XML, and a topic attribute, subject or message stored with
one would make every later answer showing it unparsable).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from unkai.aws import query_form
from unkai.aws.tokens import parse_digits
from unkai.errors import InvalidRequest
from unkai.events import xml_chars
from unkai.gateway.http1 import Request

XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"
Params = Mapping[str, str]


def form(request: Request) -> dict[str, str]:
    """The query string's and the form body's parameters (the body's win). Raises
    InvalidRequest (InvalidParameter) when they are not UTF-8, or when a name or value has a
    character outside XML 1.0's set, naming the parameter (`Message`,
    `Attributes.entry.1.value`...), as SNS does."""
    params = dict(query_form.pairs(request, error_code="InvalidParameter"))
    for name, value in params.items():
        xml_chars.check(name, "Invalid parameter: a parameter's name", code="InvalidParameter")
        xml_chars.check(value, f"Invalid parameter: {name} Reason: it", code="InvalidParameter")
    return params


def required(p: Params, name: str) -> str:
    value = p.get(name)
    if not value:
        raise InvalidRequest(
            f"Invalid parameter: {name} Reason: no value for the required parameter",
            code="InvalidParameter",
        )
    return value


def indexes(p: Params, prefix: str) -> list[str]:
    """The N of each `<prefix>N.`... parameter, in numeric order."""
    found = {key[len(prefix) :].split(".", 1)[0] for key in p if key.startswith(prefix)}
    numbered = [(index, n) for n in found if (index := parse_digits(n)) is not None]
    return [n for _, n in sorted(numbered)]


def members(p: Params, name: str) -> list[dict[str, str]]:
    """A list of structures: each `<name>.member.N.` group, with that prefix removed."""
    found = []
    for index in indexes(p, f"{name}.member."):
        prefix = f"{name}.member.{index}."
        found.append({k[len(prefix) :]: v for k, v in p.items() if k.startswith(prefix)})
    return found


def string_map(p: Params, name: str) -> dict[str, str]:
    """A string map: `<name>.entry.N.key` and `.value`."""
    mapping = {}
    for index in indexes(p, f"{name}.entry."):
        prefix = f"{name}.entry.{index}."
        mapping[required(p, prefix + "key")] = p.get(prefix + "value", "")
    return mapping


def message_attributes(p: Params) -> dict[str, dict[str, str]]:
    """`MessageAttributes.entry.N.Name` and `.Value.<DataType|StringValue|BinaryValue>` as
    the core's {name: {DataType, StringValue | BinaryValue (base64)}}; the core checks them."""
    attributes = {}
    for index in indexes(p, "MessageAttributes.entry."):
        prefix = f"MessageAttributes.entry.{index}."
        value = {
            field: p[prefix + "Value." + field]
            for field in ("DataType", "StringValue", "BinaryValue")
            if prefix + "Value." + field in p
        }
        attributes[required(p, prefix + "Name")] = value
    return attributes


# -- the XML answer ---------------------------------------------------------------------


def text(name: str, value: str) -> str:
    return f"<{name}>{xml_chars.escape(value)}</{name}>"


def list_xml(name: str, items: Iterable[str]) -> str:
    """A list: each item (already XML) in a `<member>`."""
    return f"<{name}>{''.join(f'<member>{item}</member>' for item in items)}</{name}>"


def map_xml(name: str, mapping: Mapping[str, str]) -> str:
    entries = "".join(
        f"<entry>{text('key', k)}{text('value', v)}</entry>" for k, v in mapping.items()
    )
    return f"<{name}>{entries}</{name}>"


def next_token(token: str | None) -> str:
    return text("NextToken", token) if token is not None else ""


def document(action: str, result: str | None, request_id: str) -> bytes:
    wrapped = f"<{action}Result>{result}</{action}Result>" if result is not None else ""
    return (
        f'<{action}Response xmlns="{XMLNS}">{wrapped}'
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    ).encode()
