"""Turn pydantic's `ValidationError` into one `ConfigError` a person can act on.

pydantic says `Input should be a valid integer` at `('functions', 'hello', 'timeout')`; users
read YAML, so we say `unkai.yml:12: functions.hello.timeout: must be an integer, got 'abc'`:
the file, the line of the key (of its parent when the key is missing), the dotted path in the
manifest's own camelCase names, and what was found. Unknown keys get a difflib suggestion.

Every problem is reported, sorted by line and joined by newlines, so that one run shows all
of them; the error's `line` and `field` are those of the first.
"""

from __future__ import annotations

import difflib
import types
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from unkai.config.source import ManifestSource, format_key_path
from unkai.config.spec import AppSpec
from unkai.errors import ConfigError

_EXPECTED_BY_TYPE = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    field: str
    message: str


def config_error(exc: ValidationError, source: ManifestSource) -> ConfigError:
    """One ConfigError listing every problem in `exc`, first by line first."""
    problems = sorted((problem_of(e, source) for e in exc.errors()), key=lambda p: p.line)
    first, rest = problems[0], problems[1:]
    message = first.message
    for p in rest:
        field = f" {p.field}:" if p.field else ""
        message += f"\n{source.display_name}:{p.line}:{field} {p.message}"
    return ConfigError(message, path=source.display_name, line=first.line, field=first.field)


def problem_of(error: ErrorDetails, source: ManifestSource) -> Problem:
    """The line, dotted field and message of one pydantic error."""
    loc = tuple(part for part in error["loc"] if part != "[key]")
    return Problem(source.line_of(loc), format_key_path(loc), _message(error, loc))


def show_value(value: Any) -> str:
    """A value as the user wrote it in YAML: strings quoted, `true`, `null`, `a list`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _message(error: ErrorDetails, loc: tuple[str | int, ...]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return _unknown_field(loc)
    if kind in ("value_error", "assertion_error"):
        return error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    got = show_value(error.get("input"))
    if kind in _EXPECTED_BY_TYPE:
        return f"must be {_EXPECTED_BY_TYPE[kind]}, got {got}"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "one of the allowed values")
        return f"must be {expected}, got {got}"
    msg = error["msg"]
    return f"{msg[:1].lower()}{msg[1:]}, got {got}"


def _unknown_field(loc: tuple[str | int, ...]) -> str:
    model = model_at(loc[:-1])
    if model is None:
        return "unknown field"
    known = [field.alias or name for name, field in model.model_fields.items()]
    by_lower = {name.lower(): name for name in known}
    close = difflib.get_close_matches(str(loc[-1]).lower(), list(by_lower), n=1, cutoff=0.6)
    if close:
        return f"unknown field (did you mean {by_lower[close[0]]!r}?)"
    return f"unknown field (expected one of: {', '.join(known)})"


def model_at(loc: tuple[str | int, ...], root: type[BaseModel] = AppSpec) -> type[BaseModel] | None:
    """The model that validates the mapping at `loc`, found by walking field annotations."""
    current: Any = root
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {(f.alias or name): f for name, f in current.model_fields.items()}
            if part not in fields:
                return None
            current = _unwrap(fields[str(part)].annotation)
        else:  # a dict value or a list item: `part` is a key or an index
            args = get_args(current)
            if get_origin(current) not in (dict, list) or not args:
                return None
            current = _unwrap(args[-1])
    is_model = isinstance(current, type) and issubclass(current, BaseModel)
    return current if is_model else None


def _unwrap(annotation: Any) -> Any:
    """Strip `Annotated[...]` and `X | None` down to X."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation
