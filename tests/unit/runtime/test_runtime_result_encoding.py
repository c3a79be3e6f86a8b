"""`dump_result` is `json.dumps` for a handler's result: the same text and errors, and every
patch of json a handler makes is honoured (it only calls json's C encoder directly while
nothing of json.dumps was replaced)."""

from __future__ import annotations

import datetime
import enum
import json
from collections.abc import Iterator
from typing import Any

import pytest

from unkai.runtime.bootstrap import dump_result


class Colour(enum.StrEnum):
    RED = "red"


VALUES: list[Any] = [
    {"statusCode": 200, "body": "hello"},
    {"nested": {"list": [1, 2.5, None, True, False, "é\u2028\x00"], "tuple": (1, "a")}},
    'a string with "quotes" and \\ and \n',
    12345678901234567890123,
    [float("nan"), float("inf"), -float("inf"), 1e-300, 0.1],
    {"key": Colour.RED, 1: "int key", None: "null key", 2.5: "float key", False: "bool key"},
    [],
    None,
]


@pytest.mark.parametrize("value", VALUES)
def test_the_text_is_json_dumps_text(value: Any) -> None:
    assert dump_result(value) == json.dumps(value)


def test_errors_are_json_dumps_errors() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    for bad in ({"at": datetime.date(2026, 1, 2)}, {"set": {1}}, cycle, {(1, 2): "tuple key"}):
        with pytest.raises((TypeError, ValueError)) as expected:
            json.dumps(bad)
        with pytest.raises(type(expected.value), match=str(expected.value).replace("(", r"\(")):
            dump_result(bad)


@pytest.fixture
def restore_json() -> Iterator[None]:
    encoder = json._default_encoder  # type: ignore[attr-defined]
    saved = (
        json.dumps,
        dict(json.dumps.__kwdefaults__ or {}),
        json.JSONEncoder.default,
        json.JSONEncoder.item_separator,
        json.JSONEncoder.key_separator,
        dict(vars(encoder)),
    )
    try:
        yield
    finally:
        json.dumps = saved[0]  # type: ignore[assignment]
        json.dumps.__kwdefaults__ = saved[1]
        json.JSONEncoder.default = saved[2]  # type: ignore[method-assign]
        json.JSONEncoder.item_separator, json.JSONEncoder.key_separator = saved[3], saved[4]
        vars(encoder).clear()
        vars(encoder).update(saved[5])


def test_a_handler_s_default_encoder_patch_is_used(restore_json: None) -> None:
    # A handler teaches json its dates (as many do, for datetime or Decimal)
    def default(self: json.JSONEncoder, value: Any) -> Any:
        if isinstance(value, datetime.date):
            return value.isoformat()
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    json.JSONEncoder.default = default  # type: ignore[method-assign]
    result = {"ok": True, "at": datetime.date(2026, 12, 1)}
    assert dump_result(result) == '{"ok": true, "at": "2026-12-01"}' == json.dumps(result)


def test_a_replaced_dumps_or_changed_default_settings_are_used(restore_json: None) -> None:
    json.dumps = lambda value, **kw: "replaced"  # type: ignore[assignment]
    assert dump_result({"a": 1}) == "replaced"


def test_changed_settings_of_the_default_encoder_are_used(restore_json: None) -> None:
    json._default_encoder.ensure_ascii = False  # type: ignore[attr-defined]
    assert dump_result({"a": "é"}) == '{"a": "é"}'


def test_changed_defaults_of_dumps_are_used(restore_json: None) -> None:
    assert json.dumps.__kwdefaults__ is not None
    json.dumps.__kwdefaults__["sort_keys"] = True
    json.dumps.__kwdefaults__["ensure_ascii"] = False
    value = {"b": "é", "a": 1}
    assert dump_result(value) == '{"a": 1, "b": "é"}' == json.dumps(value)


def test_changed_separators_of_the_encoder_class_are_used(restore_json: None) -> None:
    json.JSONEncoder.item_separator, json.JSONEncoder.key_separator = ",", ":"
    value = {"a": [1, 2]}
    assert dump_result(value) == '{"a":[1,2]}' == json.dumps(value)
