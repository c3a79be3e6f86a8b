"""The instance's event parser is `json.loads`, faster: the same value or the same error."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unkai.runtime.bootstrap import parse_event

CASES = [
    b'{"a":1}',
    b' {"a":1}',
    b'{"a":1}\n',
    b"[1,2",
    b'{"a":1}x',
    b'"\xed\xa0\x80"',  # an encoded surrogate: json.loads decodes bytes with surrogatepass
    b'\xef\xbb\xbf{"a":1}',  # a UTF-8 byte order mark
    '{"a":"é"}'.encode("utf-16"),
    b"NaN",
    b"1e400",
    b'{"a":1,"a":2}',
    b"123456789012345678901234567890",
    b'"x\\ud800"',
    b"",
    b"nul",
    b"\x00",
]


def _outcome(parse: object, data: bytes) -> tuple[str, str]:
    try:
        return "value", repr(parse(data))  # type: ignore[operator]
    except Exception as error:
        return type(error).__name__, str(error)


@pytest.mark.parametrize("data", CASES)
def test_edge_cases_match_json_loads(data: bytes) -> None:
    assert _outcome(parse_event, data) == _outcome(json.loads, data)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(JSON, st.sampled_from(["", " ", "\n", "x"]))
def test_any_document_matches_json_loads(value: object, suffix: str) -> None:
    data = (json.dumps(value) + suffix).encode()
    assert _outcome(parse_event, data) == _outcome(json.loads, data)
