"""`dump_json` (how the runtime encodes a handler's result) gives exactly what `json.dumps`
gives, errors included."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from unkai.runtime.bootstrap import dump_json

VALUES: list[Any] = [
    {"statusCode": 200, "body": "hello"},
    [1, 2.5, None, True, False, "é\u2028\x00"],
    "top-level string",
    42,
    math.inf,
    math.nan,
    {"a": {"b": [1, {"c": "d"}]}, 1: "int key", None: "null key", 2.5: "float key"},
    (1, 2),
    {},
    [],
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_the_same_text_as_json_dumps(value: Any) -> None:
    assert dump_json(value) == json.dumps(value)


def test_the_same_errors_as_json_dumps() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    for bad in (object(), {"k": {1, 2}}, {(1, 2): "tuple key"}, cycle):
        with pytest.raises((TypeError, ValueError)) as ours:
            dump_json(bad)
        with pytest.raises((TypeError, ValueError)) as theirs:
            json.dumps(bad)
        assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))
    # And a failed call leaves nothing behind that a later one would trip over
    assert dump_json([cycle[:0], {"x": 1}]) == json.dumps([[], {"x": 1}])
