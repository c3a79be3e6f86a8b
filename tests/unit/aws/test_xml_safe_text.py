"""The query protocol's shared halves: the one XML text escape of SNS's and SQS's answers (read
back by botocore's own parser and by ElementTree), the XML 1.0 character check, and the form
decoding (UTF-8 for percent-escapes and raw bytes alike)."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import botocore.session
import pytest
from botocore.parsers import QueryParser

from unkai.aws import query_form, sns_wire, sqs_query
from unkai.errors import InvalidRequest
from unkai.events import xml_chars
from unkai.gateway.http1 import Request

#: Outside XML 1.0's set: C0 controls but TAB/LF/CR, lone surrogates, U+FFFE and U+FFFF.
FORBIDDEN = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1f", "\ud800", "\udfff", "\ufffe", "\uffff"]
#: The set's edges and the characters with a meaning in XML.
ALLOWED = "\t\n\r \ud7ff\ue000\ufffd\U00010000\U0010ffff&<>\"'\r\n"


def form_request(body: bytes, *, query: bytes = b"", form: bool = True) -> Request:
    content_type = b"application/x-www-form-urlencoded; charset=utf-8" if form else b"text/plain"
    headers = [(b"content-type", content_type)]
    return Request("POST", b"/", query, headers, body, "1.1", True, None)


def sns_parse(action: str, body: bytes) -> dict[str, Any]:
    model = botocore.session.get_session().get_service_model("sns")
    shape = model.operation_model(action).output_shape
    parsed: dict[str, Any] = QueryParser().parse(
        {"status_code": 200, "headers": {}, "body": body}, shape
    )
    return parsed


@pytest.mark.parametrize("char", FORBIDDEN, ids=[f"U+{ord(c):04X}" for c in FORBIDDEN])
def test_a_forbidden_character_is_written_as_the_replacement_character(char: str) -> None:
    # Given text with a character XML 1.0 cannot carry
    text = f"a{char}b"

    # When it is escaped and read back by an XML parser
    parsed = ElementTree.fromstring(f"<v>{xml_chars.escape(text)}</v>".encode()).text

    # Then the document is well-formed and the character is U+FFFD
    assert parsed == "a\ufffdb"


def test_allowed_characters_and_whitespace_read_back_exactly() -> None:
    # Given the set's edge characters, markup characters, and CR, LF and TAB
    escaped = xml_chars.escape(ALLOWED)

    # When read back by an XML parser (which would turn a raw CR into LF)
    parsed = ElementTree.fromstring(f"<v>{escaped}</v>".encode()).text

    # Then every character is as it was, and CR, TAB and LF are written as references
    assert parsed == ALLOWED
    assert "\r" not in escaped and "\t" not in escaped and "\n" not in escaped


def test_an_sns_answer_with_a_forbidden_character_parses_in_botocore() -> None:
    # Given a topic attribute that still holds a control character (stored before the check)
    attributes = {"DisplayName": "a\x01b\r\n\tc", "Policy": "<&>"}
    result = sns_wire.map_xml("Attributes", attributes)

    # When botocore's query parser reads the GetTopicAttributes answer
    parsed = sns_parse("GetTopicAttributes", sns_wire.document("GetTopicAttributes", result, "r"))

    # Then it parses, with U+FFFD in place of the control character and the rest unchanged
    assert parsed["Attributes"] == {"DisplayName": "a\ufffdb\r\n\tc", "Policy": "<&>"}


def test_an_sqs_query_answer_uses_the_same_escape() -> None:
    # Given a received message whose body holds a control character, CR, LF and TAB
    body = "a\x01b\r\n\tc<&>"
    result = {"Messages": [{"MessageId": "m1", "Body": body}]}

    # When the query answer is written and parsed
    root = ElementTree.fromstring(sqs_query.encode_result("ReceiveMessage", result, "r"))

    # Then the body reads back with U+FFFD in place of the control character
    ns = "{http://queue.amazonaws.com/doc/2012-11-05/}"
    found = root.findtext(f"{ns}ReceiveMessageResult/{ns}Message/{ns}Body")
    assert found == "a\ufffdb\r\n\tc<&>"


def test_check_names_the_character_and_its_position_but_never_writes_it() -> None:
    # When text with a forbidden character is checked
    with pytest.raises(InvalidRequest) as raised:
        xml_chars.check("ok\x01", "Invalid parameter: Message Reason: it", code="InvalidParameter")

    # Then the error carries the code, the parameter, U+0001 and its position, not the character
    assert raised.value.code == "InvalidParameter"
    assert raised.value.message.startswith("Invalid parameter: Message Reason: it contains")
    assert "U+0001 at position 2" in raised.value.message
    assert "\x01" not in raised.value.message


def test_check_accepts_every_allowed_character() -> None:
    xml_chars.check(ALLOWED, "text", code="InvalidParameter")


@pytest.mark.parametrize("body", [b"Name=caf\xc3\xa9", b"Name=caf%C3%A9"], ids=["raw", "escaped"])
def test_a_form_is_utf8_whether_raw_or_percent_escaped(body: bytes) -> None:
    # When a form carries é as raw UTF-8 bytes or as percent-escapes
    pairs = query_form.pairs(form_request(body), error_code="InvalidParameter")

    # Then both decode to the same text
    assert pairs == [("Name", "café")]


@pytest.mark.parametrize(
    ("body", "query"),
    [(b"Name=caf\xe9", b""), (b"Name=caf%E9", b""), (b"", b"Name=%FF")],
    ids=["raw latin-1 body", "escaped latin-1 body", "escaped query string"],
)
def test_a_form_that_is_not_utf8_is_refused_with_the_services_code(
    body: bytes, query: bytes
) -> None:
    # When a form's bytes are not UTF-8
    with pytest.raises(InvalidRequest) as raised:
        query_form.pairs(form_request(body, query=query), error_code="MalformedQueryString")

    # Then it is refused with the code the caller named
    assert raised.value.code == "MalformedQueryString"


def test_a_body_that_is_not_a_form_is_not_read() -> None:
    pairs = query_form.pairs(
        form_request(b"Name=x", query=b"Action=A", form=False), error_code="InvalidParameter"
    )
    assert pairs == [("Action", "A")]


def test_the_sns_form_refuses_a_forbidden_character_naming_the_parameter() -> None:
    # Given a CreateTopic form with a control character in an attribute value
    body = (
        b"Action=CreateTopic&Name=t"
        b"&Attributes.entry.1.key=DisplayName&Attributes.entry.1.value=a%01b"
    )

    # When it is decoded
    with pytest.raises(InvalidRequest) as raised:
        sns_wire.form(form_request(body))

    # Then it is SNS's InvalidParameter, naming the flattened parameter
    assert raised.value.code == "InvalidParameter"
    assert raised.value.message.startswith("Invalid parameter: Attributes.entry.1.value ")


def test_the_sns_form_refuses_a_forbidden_character_in_a_name() -> None:
    with pytest.raises(InvalidRequest) as raised:
        sns_wire.form(form_request(b"Action=Publish&Mess%01age=x"))
    assert raised.value.code == "InvalidParameter"
    assert "\x01" not in raised.value.message
