"""Lambda's rest-json requests: the members of a JSON body, checked for their types as
botocore's model declares them; a wrong one is InvalidParameterValueException naming it."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from unkai.aws.tokens import parse_digits
from unkai.errors import InvalidRequest

T = TypeVar("T")
ARCHITECTURES = ("x86_64", "arm64")
#: (status, JSON body or None): what a management operation answers.
JsonAnswer = tuple[int, dict[str, Any] | None]


def invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="InvalidParameterValueException")


@dataclass(frozen=True, slots=True)
class Call:
    """One management call: where it points and what it carries."""

    stage: str
    #: None for the collection (`/functions`): CreateFunction, ListFunctions.
    function: str | None
    qualifier: str | None
    query: Mapping[str, str]
    body: dict[str, Any]
    #: The UUID of an event source mapping (`/event-source-mappings/{UUID}`).
    mapping: str | None = None
    #: The alias of `/functions/{name}/aliases/{Name}`.
    alias: str | None = None

    @property
    def name(self) -> str:
        if self.function is None:
            raise invalid("FunctionName is required")
        return self.function


def function_name(value: str) -> str:
    """A function named by its name or (partial) ARN; a qualifier in it is refused."""
    name = value.split(":function:", 1)[1] if ":function:" in value else value
    if ":" in name:
        raise invalid(f"FunctionName {value!r}: give the function without a version")
    return name


def configuration_changes(body: Mapping[str, Any]) -> dict[str, Any]:
    """UpdateFunctionConfiguration's members, as FunctionSettings fields."""
    members = {
        "Handler": ("handler", str),
        "Runtime": ("runtime", str),
        "MemorySize": ("memory_size_mb", int),
        "Timeout": ("timeout_s", int),
        "Description": ("description", str),
        "Role": ("role", str),
    }
    changes: dict[str, Any] = {
        attribute: required(body, member, kind)
        for member, (attribute, kind) in members.items()
        if body.get(member) is not None
    }
    variables = environment(body)
    if variables is not None:
        changes["environment"] = variables
    return changes


def environment(body: Mapping[str, Any]) -> dict[str, str] | None:
    given = optional(body, "Environment", dict)
    if given is None:
        return None
    variables = given.get("Variables") or {}
    if not isinstance(variables, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
    ):
        raise invalid("Environment.Variables must map names to strings")
    return variables


def dead_letter(body: Mapping[str, Any]) -> str | None:
    config = optional(body, "DeadLetterConfig", dict) or {}
    target = config.get("TargetArn")
    if target is not None and not isinstance(target, str):
        raise invalid("DeadLetterConfig.TargetArn must be a string")
    return target or None


def destination(
    destinations: Mapping[str, Any] | None, key: str, current: str | None
) -> str | None:
    if destinations is None or key not in destinations:
        return current
    entry = destinations[key] or {}
    target = entry.get("Destination") if isinstance(entry, dict) else entry
    if target is not None and not isinstance(target, str):
        raise invalid(f"DestinationConfig.{key}.Destination must be a string")
    return target or None


def architectures(body: Mapping[str, Any]) -> tuple[str, ...] | None:
    given = optional(body, "Architectures", list)
    if given is None:
        return None
    if len(given) != 1 or given[0] not in ARCHITECTURES:
        raise invalid(f"Architectures must be one of {', '.join(ARCHITECTURES)}, got {given}")
    return (given[0],)


def zip_file(code: Mapping[str, Any]) -> bytes:
    """The deployment package, base64 in the JSON body (as boto3 sends a blob)."""
    data = code.get("ZipFile")
    if not isinstance(data, str):
        others = [k for k in ("S3Bucket", "S3Key", "ImageUri") if code.get(k)]
        shown = f" ({', '.join(others)} given)" if others else ""
        raise invalid(
            f"give the code as ZipFile{shown}: unkai has no S3 or image registry to fetch it from"
        )
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        raise invalid("ZipFile must be base64") from None


def required(body: Mapping[str, Any], key: str, kind: type[T]) -> T:
    value = optional(body, key, kind)
    if value is None:
        raise invalid(f"{key} is required")
    return value


def member_or(body: Mapping[str, Any], key: str, kind: type[T], default: T) -> T:
    value = optional(body, key, kind)
    return default if value is None else value


def optional(body: Mapping[str, Any], key: str, kind: type[T]) -> T | None:
    """A member of the body, checked for its JSON type (a bool is not an int here)."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise invalid(f"{key} must be {_TYPE_NAMES.get(kind, kind.__name__)}, got {value!r}")
    return value


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    dict: "an object",
    list: "a list",
}


def query_int(query: Mapping[str, str], key: str) -> int | None:
    """A positive integer from the query string (`MaxItems`), None when absent; raises
    InvalidParameterValueException for anything else."""
    value = query.get(key)
    if value is None:
        return None
    number = parse_digits(value)
    if number is None or number < 1:
        raise invalid(f"{key} must be a positive integer, got {value!r}")
    return number


def parse_body(data: bytes) -> dict[str, Any]:
    """The JSON object of a request (an empty body is `{}`). Raises InvalidRequest."""
    if not data:
        return {}
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"Could not parse request body into json: {exc}",
            code="InvalidRequestContentException",
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest(
            "the request body must be a JSON object", code="InvalidRequestContentException"
        )
    return body
