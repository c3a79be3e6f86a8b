"""Reading the control API's JSON bodies, shared by its route modules: one place decides what
a malformed body, an unknown field or a non-string attribute answers."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson
from starlette.requests import Request

from unkai.errors import ConfigError, InvalidRequest


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ConfigError("request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ConfigError("request body must be a JSON object")
    return body


def check_fields(body: dict[str, Any], known: Collection[str], where: str) -> None:
    """Refuse unknown fields: a misspelt `DelaySecond` must not pass silently."""
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise InvalidRequest(
            f"{where}: unknown field {unknown[0]!r}",
            code="InvalidParameterValue",
            hint=f"known fields: {', '.join(sorted(known))}",
        )


def json_object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where} must be a JSON object", code="InvalidParameterValue")
    return value


def attribute_text(value: object, name: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    raise InvalidRequest(
        f"attribute {name}: {value!r} is not a string, integer, boolean or object",
        code="InvalidAttributeValue",
    )
