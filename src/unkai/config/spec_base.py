"""What every manifest model shares: the `Spec` base (camelCase aliases, unknown keys refused,
immutable), Lambda's limits and name patterns, and the validators the models compose.

Limits follow Lambda (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
memory 128 to 10240 MB, timeout 1 to 900 s, function names of 1 to 64 of [A-Za-z0-9_-].
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

MEMORY_MIN_MB, MEMORY_MAX_MB = 128, 10240
TIMEOUT_MIN_S, TIMEOUT_MAX_S = 1, 900
DEFAULT_MEMORY_MB = 128  # Lambda's default
DEFAULT_TIMEOUT_S = 3  # Lambda's default
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HANDLER_PATTERN = re.compile(r"^[A-Za-z_][\w]*(/[\w.-]+)*(\.[A-Za-z_]\w*)+$")
PATH_PATTERN = re.compile(r"^(/[A-Za-z0-9._~!$&'()*,;=:@%{}+/-]*|\$default)$")
#: API Gateway's catch-all route key: requests no other route matches.
DEFAULT_ROUTE = "$default"
#: Python runtimes run on the platform's interpreter; `provided*` run the bundle's `bootstrap`
#: through the Runtime API (runtime/custom.py).
RUNTIME_PATTERN = re.compile(r"^(python3\.\d+|provided|provided\.al2|provided\.al2023)$")


def between(lo: int, hi: int) -> AfterValidator:
    def check(value: int) -> int:
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}, got {value}")
        return value

    return AfterValidator(check)


def matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"must be {what}, got {value!r}")
        return value

    return AfterValidator(check)


def env_value(value: Any) -> Any:
    """YAML turns `PORT: 80` into an int; Lambda environment values are strings, so we cast."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def http_method(value: str) -> str:
    """A field validator (not a model one) so the error names `http.method`, not `http`."""
    method = value.upper()
    if method not in HTTP_METHODS:
        raise ValueError(f"must be one of {', '.join(HTTP_METHODS)}, got {value!r}")
    return method


MemoryMb = Annotated[int, Field(strict=True), between(MEMORY_MIN_MB, MEMORY_MAX_MB)]
TimeoutS = Annotated[int, Field(strict=True), between(TIMEOUT_MIN_S, TIMEOUT_MAX_S)]
Name = Annotated[str, matching(NAME_PATTERN, "1 to 64 letters, digits, '-' or '_'")]
Handler = Annotated[str, matching(HANDLER_PATTERN, "'module.function', e.g. 'handler.main'")]
Runtime = Annotated[
    str,
    matching(RUNTIME_PATTERN, "a runtime such as 'python3.11' or 'provided.al2023'"),
]
Environment = dict[str, Annotated[str, BeforeValidator(env_value)]]


class Spec(BaseModel):
    """Base for manifest models: camelCase aliases, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, alias_generator=None
    )
