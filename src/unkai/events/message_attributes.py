"""Message attributes of SQS and SNS: validation, size, MD5 digests, and their shapes.

Both services share the attribute model (name -> DataType with String, Number or Binary and an
optional custom suffix). A stored attribute is `(data_type, value)` with `value` the string, or
the base64 text of a binary. The digests are the ones SQS returns and that the SDKs check
(MD5OfMessageBody, and MD5OfMessageAttributes over a length-prefixed binary encoding, see
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html).
"""

from __future__ import annotations

import base64
import binascii
import decimal
import hashlib
import re
import struct
from collections.abc import Mapping
from typing import Any

from unkai.errors import InvalidRequest
from unkai.events import xml_chars

#: name -> (DataType, value); binary values are base64 text.
Attributes = dict[str, tuple[str, str]]

MAX_ATTRIBUTES = 10
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")
_DATA_TYPE = re.compile(r"^(String|Number|Binary)(\.[A-Za-z0-9_.-]{1,250})?$")


def check_text(text: str, what: str) -> None:
    """SQS refuses a body or string value with a character outside XML 1.0's set
    (`events/xml_chars.py`) as InvalidMessageContents."""
    xml_chars.check(text, what, code="InvalidMessageContents")


def parse(raw: Mapping[str, Any] | None, where: str) -> Attributes:
    """Validate SQS/SNS `MessageAttributes` ({name: {DataType, StringValue | BinaryValue}});
    `where` names the message in errors. Binary values may be bytes or base64 text."""
    if not raw:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidRequest(
            f"{where}: MessageAttributes must be an object of name -> {{DataType, StringValue "
            "| BinaryValue}}",
            code="InvalidParameterValue",
        )
    if len(raw) > MAX_ATTRIBUTES:
        raise InvalidRequest(
            f"{where}: {len(raw)} message attributes; at most {MAX_ATTRIBUTES} are allowed",
            code="InvalidParameterValue",
        )
    parsed: Attributes = {}
    for name, value in raw.items():
        _check_name(name, where)
        if not isinstance(value, Mapping):
            raise InvalidRequest(
                f"{where}: message attribute {name!r} must be an object with DataType and "
                "StringValue or BinaryValue",
                code="InvalidParameterValue",
            )
        data_type = value.get("DataType")
        if not isinstance(data_type, str) or not _DATA_TYPE.match(data_type):
            raise InvalidRequest(
                f"{where}: message attribute {name!r} has DataType {data_type!r}; use String, "
                "Number or Binary, optionally with a custom suffix such as 'Number.int'",
                code="InvalidParameterValue",
            )
        parsed[name] = (data_type, _value(name, data_type, value, where))
    return parsed


def size(attributes: Attributes) -> int:
    """Bytes counted toward the message size limit: names, types and values."""
    total = 0
    for name, (data_type, value) in attributes.items():
        raw = _raw(data_type, value)
        total += len(name.encode()) + len(data_type.encode()) + len(raw)
    return total


def md5_of_body(body: str) -> str:
    return hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()


def md5_of_attributes(attributes: Attributes) -> str | None:
    """SQS's MD5OfMessageAttributes; None when there are none."""
    if not attributes:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attributes):
        data_type, value = attributes[name]
        for part in (name.encode(), data_type.encode()):
            digest.update(struct.pack(">I", len(part)) + part)
        raw = _raw(data_type, value)
        digest.update(b"\x02" if data_type.startswith("Binary") else b"\x01")
        digest.update(struct.pack(">I", len(raw)) + raw)
    return digest.hexdigest()


def api_shape(attributes: Attributes) -> dict[str, dict[str, Any]]:
    """The SQS API's shape: {name: {DataType, StringValue | BinaryValue (base64)}}."""
    return {
        name: {"DataType": t, ("BinaryValue" if t.startswith("Binary") else "StringValue"): v}
        for name, (t, v) in attributes.items()
    }


def lambda_shape(attributes: Attributes) -> dict[str, dict[str, Any]]:
    """The shape in a Lambda SQS event record's `messageAttributes`."""
    shaped: dict[str, dict[str, Any]] = {}
    for name, (data_type, value) in attributes.items():
        entry: dict[str, Any] = {"stringListValues": [], "binaryListValues": []}
        entry["binaryValue" if data_type.startswith("Binary") else "stringValue"] = value
        entry["dataType"] = data_type
        shaped[name] = entry
    return shaped


def sns_shape(attributes: Attributes) -> dict[str, dict[str, str]]:
    """The shape in an SNS notification's `MessageAttributes` ({Type, Value})."""
    return {name: {"Type": t, "Value": v} for name, (t, v) in attributes.items()}


def _check_name(name: object, where: str) -> None:
    ok = (
        isinstance(name, str)
        and _NAME.match(name) is not None
        and not name.startswith(".")
        and not name.endswith(".")
        and ".." not in name
        and not name.lower().startswith(("aws.", "amazon."))
    )
    if not ok:
        raise InvalidRequest(
            f"{where}: message attribute name {name!r} is invalid: 1 to 256 letters, digits, "
            "'_', '-' or '.', no leading, trailing or double '.', not starting with "
            "'AWS.' or 'Amazon.'",
            code="InvalidParameterValue",
        )


def _value(name: str, data_type: str, value: Mapping[str, Any], where: str) -> str:
    if data_type.startswith("Binary"):
        binary = value.get("BinaryValue")
        if isinstance(binary, bytes | bytearray):
            return base64.b64encode(binary).decode()
        if isinstance(binary, str):
            try:
                base64.b64decode(binary, validate=True)
            except binascii.Error:
                binary = None
            else:
                return binary
        raise InvalidRequest(
            f"{where}: message attribute {name!r} of type {data_type} needs a BinaryValue "
            "(bytes, or base64 text)",
            code="InvalidParameterValue",
        )
    text = value.get("StringValue")
    if not isinstance(text, str) or text == "":
        raise InvalidRequest(
            f"{where}: message attribute {name!r} of type {data_type} needs a non-empty "
            "StringValue",
            code="InvalidParameterValue",
        )
    check_text(text, f"{where}: message attribute {name!r}")
    if data_type.startswith("Number"):
        _check_number(name, text, where)
    return text


def _check_number(name: str, text: str, where: str) -> None:
    try:
        number = decimal.Decimal(text)
    except decimal.InvalidOperation:
        number = None
    ok = (
        number is not None
        and number.is_finite()
        and len(number.as_tuple().digits) <= 38
        and (number == 0 or decimal.Decimal("1e-128") <= abs(number) <= decimal.Decimal("1e126"))
    )
    if not ok:
        raise InvalidRequest(
            f"{where}: message attribute {name!r} is a Number but {text!r} is not a number "
            "of at most 38 digits between 10^-128 and 10^126",
            code="InvalidParameterValue",
        )


def _raw(data_type: str, value: str) -> bytes:
    return base64.b64decode(value) if data_type.startswith("Binary") else value.encode()
